/**
 * A generated corpus of malformed and hostile requests, derived from the route descriptors:
 * every route's path template, every method it declares (and methods it does not), the
 * TypeBox schemas of its query and headers, and the media types of its body. A route added to
 * `routes` is covered without a change here.
 *
 * Values that must name something the registry holds (the fixture's repository, blob, manifest,
 * tag and open upload) are placeholders resolved when the request is sent, since successful
 * requests change the fixture as the run goes.
 */

import fc from 'fast-check'
import type { TSchema } from '@sinclair/typebox'
import { routes, schemas, type HttpMethod, type MethodDescriptor, type RouteDescriptor } from '../../lib/routes.js'

/** Placeholders for what the fixture holds, replaced when the request is sent. */
export const FIXTURE = {
  name: '@NAME@',
  blob: '@BLOB@',
  manifest: '@MANIFEST@',
  tag: '@TAG@',
  upload: '@UPLOAD@'
} as const

export interface GeneratedRequest {
  /** The route descriptor the request was generated from (its path may route elsewhere). */
  route: string
  method: string
  /** Path and query, URL text as sent (placeholders unresolved). */
  url: string
  headers: Record<string, string>
  body?: Buffer
}

/** Names JavaScript objects carry built in: a lookup in a plain object finds them. */
export const BUILT_IN_NAMES = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', '__defineGetter__', 'toJSON']

/** URL text for one path segment or query value: encodings, traversal, grammar edges. */
const HOSTILE_TEXT = [
  ...BUILT_IN_NAMES,
  '', '.', '..', '%2e%2e', '%2E%2E%2F', '%2F', '%2f..%2f', '%00', '%0a', '%0d%0a', '%ff', '%fe%ff', '%', '%z', '%zz', '%E0%A4%A',
  '%C3%BC', '%E2%80%AE', '%20', '+', ';', ',', '*', '~', '!', '$', "'", '(', ')', '\\', '%5C', '%7B%7D', '{name}', '$where',
  '==========', 'a=b', '=', '-', '_', '__', 'a..b', 'a--b', 'A', 'UPPER', '0', '-1', '1e400', '0x10', 'NaN', 'Infinity', 'null',
  'undefined', 'true', '[]', '{}', 'sha256:', 'sha256', ':', 'sha256:' + 'g'.repeat(64), 'sha256:' + 'a'.repeat(63), 'sha256:' + 'a'.repeat(65),
  'sha256:' + 'A'.repeat(64), 'sha512:' + 'a'.repeat(64), 'sha512:' + 'b'.repeat(128), 'md5:' + 'c'.repeat(32), 'SHA256:' + 'a'.repeat(64),
  'sha256%3A' + 'a'.repeat(64), 'x'.repeat(129), 'x'.repeat(256), 'x'.repeat(4096), 'a/'.repeat(200) + 'a'
]

/** Header values for any header: grammar edges, numbers out of range, built-in names. */
const HOSTILE_HEADER_TEXT = [
  ...BUILT_IN_NAMES, '', ' ', '0', '-1', '1e400', '99999999999999999999999', 'NaN', 'a"b', '<x>', 'a, b', 'x'.repeat(8192)
]

/** Range and Content-Range values: both grammars, reversed, open, multiple, overflowing. */
const HOSTILE_RANGES = [
  'bytes=0-', 'bytes=0-0', 'bytes=-0', 'bytes=-1', 'bytes=1-0', 'bytes=5-1', 'bytes=0-99999999999999999999', 'bytes=99999999999999999999-',
  'bytes=1-2,3-4', 'bytes=', 'bytes', 'items=0-1', 'bytes=0x1-2', 'bytes= 0-1', 'bytes=-', 'bytes=--1', '0-', '-1', '0-0', '1-0',
  '0-99999999999999999999', '9007199254740993-9007199254740999', '0-1/2', 'bytes 0-1/2', 'bytes=0-1', 'bytes=9007199254740992-'
]

const MEDIA_TYPES = [
  'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws', 'application/vnd.docker.distribution.manifest.v1+json',
  'application/json', 'application/octet-stream', 'text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded',
  'application/vnd.oci.image.manifest.v1+json; charset=utf-16', 'APPLICATION/VND.OCI.IMAGE.MANIFEST.V1+JSON', '*/*', 'a/b', '/'
]

const OTHER_METHODS = ['OPTIONS', 'TRACE', 'PROPFIND', 'QUERY', 'SEARCH', 'MKCOL', 'LOCK', 'COPY', 'MOVE']

/** A schema's `pattern` as a RegExp, when it has one. */
function patternOf (schema: TSchema | undefined): RegExp | undefined {
  const pattern = (schema as { pattern?: unknown } | undefined)?.pattern
  return typeof pattern === 'string' ? new RegExp(pattern) : undefined
}

/** Strings the schema accepts (from its pattern), trimmed to its maxLength. */
const validTexts = new Map<TSchema | undefined, fc.Arbitrary<string>>()

function validText (schema: TSchema | undefined): fc.Arbitrary<string> {
  const known = validTexts.get(schema)
  if (known !== undefined) return known
  const pattern = patternOf(schema)
  const max = (schema as { maxLength?: unknown } | undefined)?.maxLength
  const text = pattern === undefined ? fc.string({ maxLength: 40 }) : fc.stringMatching(pattern, { size: 'small' })
  const arbitrary = typeof max === 'number' ? text.filter((value) => value.length <= max) : text
  validTexts.set(schema, arbitrary)
  return arbitrary
}

/** Printable ASCII without space, `#` or `?`: what a URL may carry raw. */
const rawUrlText = fc.string({ unit: fc.constantFrom(...'abcxyzAZ019-._~:@!$&\'()*+,;=%/'.split('')), maxLength: 30 })

function hostileText (): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...HOSTILE_TEXT) },
    { weight: 1, arbitrary: rawUrlText },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }).map(encodeURIComponent) }
  )
}

/** URL text for a path variable, from its schema in `schemas` (by the template's variable name). */
function pathVariable (variable: string): fc.Arbitrary<string> {
  const fixture = (FIXTURE as Record<string, string>)[variable === 'digest' ? 'blob' : variable === 'uuid' ? 'upload' : variable]
  const schemaByVariable: Record<string, TSchema | undefined> = { ...schemas }
  const own = schemaByVariable[variable]
  const valid = variable === 'reference'
    ? fc.oneof(validText(schemas.tag), validText(schemas.digest), fc.constantFrom(FIXTURE.tag, FIXTURE.manifest))
    : variable === 'name'
      ? validText(own).map((name) => name.split('/').map(encodeURIComponent).join('/'))
      : validText(own).map(encodeURIComponent)
  const arbitraries = [
    { weight: 3, arbitrary: valid },
    { weight: 4, arbitrary: hostileText() }
  ]
  if (fixture !== undefined) arbitraries.push({ weight: 3, arbitrary: fc.constant(fixture) })
  if (variable === 'name') {
    // Several hostile components joined, and the fixture's name with one hostile part.
    arbitraries.push({ weight: 2, arbitrary: fc.array(hostileText(), { minLength: 2, maxLength: 4 }).map((parts) => parts.join('/')) })
    arbitraries.push({ weight: 2, arbitrary: hostileText().map((part) => `${FIXTURE.name}/${part}`) })
  }
  if (variable === 'uuid') arbitraries.push({ weight: 2, arbitrary: hostileText().map((part) => `${FIXTURE.upload}${part}`) })
  return fc.oneof(...arbitraries)
}

function objectProperties (schema: TSchema | undefined): Array<[string, TSchema]> {
  const properties = (schema as { properties?: Record<string, TSchema> } | undefined)?.properties
  return properties === undefined ? [] : Object.entries(properties)
}

/** Query text from the method's query schema, plus built-in names, repeats and broken encodings. */
function queryString (method: MethodDescriptor | undefined): fc.Arbitrary<string> {
  const fixtureValues = fc.constantFrom(FIXTURE.blob, FIXTURE.manifest, FIXTURE.name, FIXTURE.tag)
  const declared = objectProperties(method?.query).map(([key, schema]) =>
    fc.option(fc.oneof(
      validText(schema).map((value) => [`${key}=${encodeURIComponent(value)}`]),
      fixtureValues.map((value) => [`${key}=${value}`]),
      hostileText().map((value) => [`${key}=${value}`]),
      fc.array(fc.oneof(validText(schema).map(encodeURIComponent), hostileText()), { minLength: 2, maxLength: 4 })
        .map((values) => values.map((value) => `${key}=${value}`)),
      fc.constant([key]),
      fc.constant([`${key}[]=1`, `${key}[__proto__]=1`])
    ), { freq: 2 })
  )
  const extra = fc.array(fc.oneof(
    fc.constantFrom(...BUILT_IN_NAMES).map((name) => `${name}=1`),
    fc.constantFrom('__proto__[x]=1', 'constructor[prototype][x]=1', '%', '%zz=1', 'a=%', '=', '&', '&&=&', 'n=%ff', 'n=1&n=2', 'last=%00')
  ), { maxLength: 3 })
  return fc.tuple(fc.tuple(...declared), extra).map(([parts, more]) => {
    const all = [...parts.flatMap((part) => part ?? []), ...more]
    return all.length === 0 ? '' : `?${all.join('&')}`
  })
}

/** Headers from the method's header schema, plus Host, Content-Type, Accept and the like. */
function headerSet (method: MethodDescriptor | undefined): fc.Arbitrary<Record<string, string>> {
  const declared = objectProperties(method?.headers).map(([key, schema]) =>
    fc.option(fc.oneof(
      validText(schema),
      key.includes('range') ? fc.constantFrom(...HOSTILE_RANGES) : fc.constantFrom(...HOSTILE_HEADER_TEXT),
      fc.constantFrom(...HOSTILE_HEADER_TEXT)
    ).map((value) => [key, value] as const), { freq: 2 })
  )
  const common = fc.record({
    'content-type': fc.constantFrom(...MEDIA_TYPES, ...BUILT_IN_NAMES),
    accept: fc.constantFrom(...MEDIA_TYPES, ...BUILT_IN_NAMES, 'application/vnd.oci.image.manifest.v1+json;q=abc, */*'),
    range: fc.constantFrom(...HOSTILE_RANGES),
    'if-none-match': fc.constantFrom('*', '"x"', `"${FIXTURE.manifest}"`, 'W/"x"', '__proto__'),
    'x-forwarded-proto': fc.constantFrom('https', 'gopher', '__proto__'),
    'x-forwarded-host': fc.constantFrom('example.com', 'a"b', 'a>;rel="x",<b'),
    host: fc.constantFrom('localhost', 'localhost:5000', '[::1]:5000', 'a"b', 'a>;rel="x",<b', 'a b', '[::1', 'a:99999', 'a/b', 'a@b', 'a\\b', '__proto__'),
    constructor: fc.constant('1'),
    authorization: fc.constantFrom('Basic', 'Basic %%%', 'Bearer', 'Bearer a.b.c', '__proto__')
  }, { requiredKeys: [] })
  return fc.tuple(fc.tuple(...declared), common).map(([pairs, rest]) => {
    const headers: Record<string, string> = Object.create(null) as Record<string, string>
    for (const [key, value] of Object.entries(rest)) headers[key] = value
    for (const pair of pairs) if (pair !== null) headers[pair[0]] = pair[1]
    return { ...headers }
  })
}

/** A value nested `depth` times in arrays or objects. */
function nested (depth: number, inObjects: boolean): string {
  return inObjects ? '{"a":'.repeat(depth) + '1' + '}'.repeat(depth) : '['.repeat(depth) + ']'.repeat(depth)
}

const descriptorValue = fc.oneof(
  fc.record({
    mediaType: fc.constantFrom(...MEDIA_TYPES, ...BUILT_IN_NAMES),
    digest: fc.constantFrom(FIXTURE.blob, FIXTURE.manifest, 'sha256:' + 'a'.repeat(64), '__proto__', 'sha256:x'),
    size: fc.oneof(fc.integer({ min: -2, max: 100 }), fc.constantFrom(1e300, 2 ** 53 + 2, 0.5, '1', null)),
    annotations: fc.constantFrom(undefined, { __proto__: 'x' }, JSON.parse('{"__proto__":{"polluted":"yes"}}'), { a: 1 }, [])
  }, { requiredKeys: ['digest'] }),
  fc.jsonValue({ maxDepth: 2 })
)

/** Manifest-shaped JSON with odd media types, wrong types, built-in keys, big arrays, deep nesting. */
const manifestText = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      schemaVersion: fc.constantFrom(2, 1, 3, '2', null, -1, 2.5, Number.POSITIVE_INFINITY),
      mediaType: fc.constantFrom(...MEDIA_TYPES, ...BUILT_IN_NAMES, '', 1, null, ['a'] as unknown as string),
      config: descriptorValue,
      layers: fc.oneof(fc.array(descriptorValue, { maxLength: 3 }), fc.constantFrom('x', null, {}, 1)),
      manifests: fc.oneof(fc.array(descriptorValue, { maxLength: 3 }), fc.constantFrom('x', null, {}, 1)),
      subject: descriptorValue,
      artifactType: fc.constantFrom(...BUILT_IN_NAMES, 'application/x', 1),
      annotations: fc.constantFrom({ __proto__: 'x' }, JSON.parse('{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}}}'), 'x', [1])
    }, { requiredKeys: [] }).map((value) => JSON.stringify(value))
  },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '', ' ', 'null', '[]', '{', '{"schemaVersion":2,', '\uFEFF{"schemaVersion":2}', '{"schemaVersion":2}\u0000', '{"__proto__":{"schemaVersion":2}}',
    `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","x":${nested(20000, false)}}`,
    `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":${nested(5000, true)}}`,
    `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":${JSON.stringify(Array.from({ length: 2000 }, (_, i) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${i.toString(16).padStart(64, '0')}`, size: 1 })))}}`,
    `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a/b","digest":"${FIXTURE.blob}","size":1},"layers":${JSON.stringify(Array.from({ length: 2000 }, (_, i) => ({ mediaType: 'a/b', digest: `sha256:${i.toString(16).padStart(64, 'f')}`, size: 1 })))}}`,
    '{"schemaVersion":2,"schemaVersion":1}', '"\\ud800"', '{"a":"\\u0000"}', '1'.repeat(400), '-0', '1e999'
    )
  }
).map((text) => Buffer.from(text))

const blobBytes = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
  fc.constantFrom(Buffer.alloc(0), Buffer.alloc(70_000, 7))
)

function bodyFor (method: MethodDescriptor | undefined): fc.Arbitrary<Buffer | undefined> {
  const manifests = method?.body?.contentTypes.some((type) => type.includes('manifest')) === true
  const body = manifests ? fc.oneof(manifestText, blobBytes) : fc.oneof(blobBytes, manifestText)
  return method?.body === undefined ? fc.option(body, { freq: 4, nil: undefined }) : fc.option(body, { freq: 8, nil: undefined })
}

/** The URL text of a route's path template with generated variables. */
function pathOf (route: RouteDescriptor): fc.Arbitrary<string> {
  const parts = route.path.split(/(\{[a-z]+\})/).filter((part) => part !== '')
  return fc.tuple(...parts.map((part) => {
    const variable = /^\{([a-z]+)\}$/.exec(part)?.[1]
    return variable === undefined ? fc.constant(part) : pathVariable(variable)
  })).map((values) => values.join(''))
}

/** Requests for one route and method, with the method's schemas (none for an undeclared method). */
function requestsWith (route: RouteDescriptor, method: string): fc.Arbitrary<GeneratedRequest> {
  const descriptor = route.methods[method as HttpMethod]
  return fc.record({
    path: pathOf(route),
    query: queryString(descriptor),
    headers: headerSet(descriptor),
    body: bodyFor(descriptor)
  }).map(({ path, query, headers, body }): GeneratedRequest => ({
    route: route.name,
    method,
    url: path + query,
    headers,
    ...(body === undefined ? {} : { body })
  }))
}

/** Requests for one route: mostly its declared methods, sometimes others. */
function requestsFor (route: RouteDescriptor): fc.Arbitrary<GeneratedRequest> {
  const declared = Object.keys(route.methods)
  const undeclared = ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'].filter((method) => !declared.includes(method))
  const arbitraries = [
    { weight: 8, arbitrary: fc.oneof(...declared.map((method) => requestsWith(route, method))) },
    { weight: 1, arbitrary: fc.oneof(...OTHER_METHODS.map((method) => requestsWith(route, method))) }
  ]
  if (undeclared.length > 0) arbitraries.push({ weight: 1, arbitrary: fc.oneof(...undeclared.map((method) => requestsWith(route, method))) })
  return fc.oneof(...arbitraries)
}

/** Requests over every route descriptor, each route equally likely. */
export const hostileRequest: fc.Arbitrary<GeneratedRequest> = fc.oneof(...routes.map(requestsFor))
