/**
 * Route descriptors: one per endpoint of the OCI Distribution Spec, with the path template,
 * the TypeBox schemas of query, headers and bodies, the error codes each method may answer
 * and the access it needs. The plugin dispatches from this table, the URL builder fills its
 * templates, the API reference and OpenAPI document are generated from it.
 */

import { Type, type TObject, type TSchema, type Static } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import type { ErrorCode } from './errors.js'
import { RegistryError } from './errors.js'
import { DIGEST_PATTERN, ALGORITHM_PATTERN } from './digest.js'
import { NAME_PATTERN, TAG_PATTERN, UPLOAD_ID_PATTERN, assertName } from './reference.js'

export type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'
/**
 * What a method needs from the caller: an action on the repository in its path (`pull`,
 * `push`, `delete`), the catalog, the registry's administration (`admin`: the
 * `registry:admin:*` scope of a token, or a user listed as an admin), or only what the mode
 * asks of everyone (`none`).
 */
export type Access = 'pull' | 'push' | 'delete' | 'catalog' | 'admin' | 'none'

/** The prefix of extension routes: plugins add their own routes below it, never elsewhere. */
export const EXTENSION_PREFIX = '/v2/_oci/'

/**
 * Marks the error code a failed check of a path variable, query or header property answers
 * with (a keyword TypeBox carries through; the dispatcher reads it).
 */
export function withCode<T extends TSchema> (schema: T, errorCode: ErrorCode): T {
  return { ...schema, errorCode }
}

const Digest = (description: string) => withCode(Type.String({ pattern: `^${DIGEST_PATTERN}$`, description }), 'DIGEST_INVALID')
const PageSize = withCode(Type.String({ pattern: '^[0-9]{1,9}$', description: 'Maximum number of results to return.' }), 'PAGINATION_NUMBER_INVALID')
const PageLast = Type.String({ description: 'Return results lexically after this value.' })
const Paging = Type.Object({ n: Type.Optional(PageSize), last: Type.Optional(PageLast) })

export const schemas = {
  name: Type.String({ pattern: `^${NAME_PATTERN}$`, maxLength: 255, description: 'Repository name, may contain `/`.' }),
  tag: Type.String({ pattern: `^${TAG_PATTERN}$` }),
  digest: Type.String({ pattern: `^${DIGEST_PATTERN}$`, description: 'A digest, `algorithm:encoded`.' }),
  reference: Type.String({ description: 'A tag or a digest.' }),
  uuid: Type.String({ pattern: `^${UPLOAD_ID_PATTERN}$`, description: 'Upload session id.' }),
  tagsQuery: Paging,
  catalogQuery: Paging,
  blobHeaders: Type.Object({
    range: Type.Optional(Type.String({ description: 'A single byte range, `bytes=a-b`, `bytes=a-` or `bytes=-n`.' }))
  }),
  uploadStartQuery: Type.Object({
    digest: Type.Optional(Digest('Digest of the body: a one-request monolithic upload.')),
    mount: Type.Optional(Digest('Digest of a blob to mount from another repository.')),
    from: Type.Optional(withCode(Type.String({ pattern: `^${NAME_PATTERN}$`, description: 'Repository to mount from.' }), 'NAME_INVALID')),
    'digest-algorithm': Type.Optional(withCode(Type.String({ pattern: `^${ALGORITHM_PATTERN}$`, description: 'Digest algorithm of the upload (sha256 or sha512).' }), 'DIGEST_INVALID'))
  }),
  uploadChunkHeaders: Type.Object({
    'content-range': Type.Optional(withCode(Type.String({ pattern: '^(bytes=)?[0-9]+-[0-9]+$', description: 'Byte range of this chunk, `<start>-<end>` inclusive.' }), 'RANGE_INVALID')),
    'content-length': Type.Optional(Type.String({ pattern: '^[0-9]+$' }))
  }),
  uploadCompleteQuery: Type.Object({
    digest: Digest('Digest of the whole blob.'),
    size: Type.Optional(withCode(Type.String({ pattern: '^[0-9]{1,16}$', description: 'Expected size of the whole blob.' }), 'SIZE_INVALID'))
  }),
  manifestPutQuery: Type.Object({
    tag: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())], { description: 'Tags to point at a manifest pushed by digest.' }))
  }),
  referrersQuery: Type.Object({
    artifactType: Type.Optional(Type.String({ description: 'Only referrers with this artifact type.' })),
    n: Type.Optional(PageSize),
    last: Type.Optional(PageLast)
  }),
  tagsList: Type.Object({ name: Type.String(), tags: Type.Array(Type.String()) }),
  catalog: Type.Object({ repositories: Type.Array(Type.String()) }),
  descriptor: Type.Object({
    mediaType: Type.String(),
    digest: Type.String(),
    size: Type.Integer(),
    artifactType: Type.Optional(Type.String()),
    annotations: Type.Optional(Type.Record(Type.String(), Type.String()))
  }),
  errorBody: Type.Object({
    errors: Type.Array(Type.Object({ code: Type.String(), message: Type.String(), detail: Type.Optional(Type.Unknown()) }))
  }),
  empty: Type.Object({})
}

export const referrersIndexSchema = Type.Object({
  schemaVersion: Type.Literal(2),
  mediaType: Type.Literal('application/vnd.oci.image.index.v1+json'),
  manifests: Type.Array(schemas.descriptor)
})

/** Path variables, each with the error its malformed value answers. */
const Name = withCode(schemas.name, 'NAME_INVALID')
const params = {
  none: Type.Object({}),
  name: Type.Object({ name: Name }),
  /**
   * A reference to read or delete: a tag or digest of the grammar, else it names nothing that
   * can exist, which is unknown (404), as the OCI conformance suite expects.
   */
  readReference: Type.Object({
    name: Name,
    reference: withCode(Type.String({ pattern: `^(?:${TAG_PATTERN}|${DIGEST_PATTERN})$`, description: 'A tag or a digest.' }), 'MANIFEST_UNKNOWN')
  }),
  /** A reference to write: the handler tells a bad tag (TAG_INVALID) from a bad digest. */
  writeReference: Type.Object({ name: Name, reference: schemas.reference }),
  digest: Type.Object({ name: Name, digest: withCode(schemas.digest, 'DIGEST_INVALID') }),
  upload: Type.Object({ name: Name, uuid: withCode(schemas.uuid, 'BLOB_UPLOAD_UNKNOWN') })
}

export interface ResponseDescriptor {
  readonly status: number
  readonly description: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: TSchema
  readonly contentType?: string
}

export interface MethodDescriptor {
  readonly description: string
  readonly access: Access
  /** The path variables' schema for this method, when it differs from the route's. */
  readonly params?: TObject
  readonly query?: TObject
  readonly headers?: TObject
  readonly body?: { readonly description: string, readonly contentTypes: readonly string[], readonly stream: boolean }
  readonly responses: readonly ResponseDescriptor[]
  readonly errors: readonly ErrorCode[]
}

export interface RouteDescriptor {
  /** A stable name: the operation in docs, the label of logs and metrics. */
  readonly name: string
  /** Path template: `{name}` spans several segments, the other variables one. */
  readonly path: string
  readonly description: string
  /** The schema of the template's variables (their description documents them). */
  readonly params: TObject
  readonly methods: Readonly<Partial<Record<HttpMethod, MethodDescriptor>>>
}

/** A route descriptor, typed as written: handlers derive their request types from it. */
export function defineRoute<const Route extends RouteDescriptor> (route: Route): Route {
  return route
}

const nameErrors: ErrorCode[] = ['NAME_INVALID', 'NAME_UNKNOWN', 'UNAUTHORIZED', 'DENIED', 'TOOMANYREQUESTS']
const uploadHeaders = {
  Location: 'URL of the upload, for the next request.',
  Range: 'Bytes received so far, `0-<last offset>`.',
  'Docker-Upload-UUID': 'Id of the upload.'
}

const base = defineRoute({
  name: 'base',
  path: '/v2/',
  description: 'API version check.',
  params: params.none,
  methods: {
    GET: {
      description: 'Answers 200 when the registry implements the V2 API (and the client may use it).',
      access: 'none',
      responses: [{ status: 200, description: 'The API is supported.', headers: { 'Docker-Distribution-API-Version': 'registry/2.0' }, body: schemas.empty, contentType: 'application/json' }],
      errors: ['UNAUTHORIZED', 'TOOMANYREQUESTS']
    }
  }
})

const catalog = defineRoute({
  name: 'catalog',
  path: '/v2/_catalog',
  description: 'Repositories of the registry.',
  params: params.none,
  methods: {
    GET: {
      description: 'Lists repositories in lexical order, paged with `n` and `last`.',
      access: 'catalog',
      query: schemas.catalogQuery,
      responses: [{ status: 200, description: 'A page of repositories.', headers: { Link: 'Next page, `<url>; rel="next"`, when more remain.' }, body: schemas.catalog, contentType: 'application/json' }],
      errors: ['PAGINATION_NUMBER_INVALID', 'UNAUTHORIZED', 'DENIED', 'UNSUPPORTED']
    }
  }
})

const tags = defineRoute({
  name: 'tags',
  path: '/v2/{name}/tags/list',
  description: 'Tags of a repository.',
  params: params.name,
  methods: {
    GET: {
      description: 'Lists the tags of a repository in lexical order, paged with `n` and `last`.',
      access: 'pull',
      query: schemas.tagsQuery,
      responses: [{ status: 200, description: 'A page of tags.', headers: { Link: 'Next page, `<url>; rel="next"`, when more remain.' }, body: schemas.tagsList, contentType: 'application/json' }],
      errors: [...nameErrors, 'PAGINATION_NUMBER_INVALID']
    }
  }
})

const manifest = defineRoute({
  name: 'manifest',
  path: '/v2/{name}/manifests/{reference}',
  description: 'Manifests by tag or digest.',
  params: params.readReference,
  methods: {
    GET: {
      description: 'Fetches a manifest; content negotiation through `Accept`. A reference outside the tag and digest grammar names nothing: 404.',
      access: 'pull',
      responses: [
        { status: 200, description: 'The manifest, as stored.', headers: { 'Docker-Content-Digest': 'Digest of the manifest.', 'Content-Type': 'Media type of the manifest.', ETag: 'The digest, quoted.' } },
        { status: 304, description: 'Not modified (`If-None-Match`).' }
      ],
      errors: [...nameErrors, 'MANIFEST_UNKNOWN', 'DIGEST_INVALID']
    },
    HEAD: {
      description: 'Checks that a manifest exists; the headers of GET without the body.',
      access: 'pull',
      responses: [{ status: 200, description: 'The manifest exists.', headers: { 'Docker-Content-Digest': 'Digest of the manifest.', 'Content-Length': 'Its size.' } }],
      errors: [...nameErrors, 'MANIFEST_UNKNOWN', 'DIGEST_INVALID']
    },
    PUT: {
      description: 'Stores a manifest under a tag or its digest; `?tag=` sets several tags at once.',
      access: 'push',
      params: params.writeReference,
      query: schemas.manifestPutQuery,
      body: { description: 'The manifest.', contentTypes: ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.docker.distribution.manifest.v1+prettyjws'], stream: false },
      responses: [{ status: 201, description: 'Stored.', headers: { Location: 'URL of the manifest by digest.', 'Docker-Content-Digest': 'Its digest.', 'OCI-Subject': 'Digest of the subject, when the manifest has one.', 'OCI-Tag': 'Each tag set.' } }],
      errors: [...nameErrors, 'MANIFEST_INVALID', 'MANIFEST_BLOB_UNKNOWN', 'MANIFEST_UNKNOWN', 'MANIFEST_UNVERIFIED', 'TAG_INVALID', 'DIGEST_INVALID', 'SIZE_INVALID']
    },
    DELETE: {
      description: 'Deletes a manifest by digest (and every tag on it), or one tag.',
      access: 'delete',
      responses: [{ status: 202, description: 'Deleted.' }],
      errors: [...nameErrors, 'MANIFEST_UNKNOWN', 'DIGEST_INVALID', 'UNSUPPORTED']
    }
  }
})

const blob = defineRoute({
  name: 'blob',
  path: '/v2/{name}/blobs/{digest}',
  description: 'Blobs (layers and configs) by digest.',
  params: params.digest,
  methods: {
    GET: {
      description: 'Streams a blob; a single `Range` answers 206.',
      access: 'pull',
      headers: schemas.blobHeaders,
      responses: [
        { status: 200, description: 'The blob.', headers: { 'Docker-Content-Digest': 'Its digest.', 'Content-Length': 'Its size.', 'Accept-Ranges': 'bytes', ETag: 'The digest, quoted.' }, contentType: 'application/octet-stream' },
        { status: 206, description: 'The requested range.', headers: { 'Content-Range': '`bytes a-b/size`' } },
        { status: 307, description: 'Redirect to the storage backend.', headers: { Location: 'Where to fetch the blob.' } }
      ],
      errors: [...nameErrors, 'BLOB_UNKNOWN', 'DIGEST_INVALID', 'RANGE_INVALID']
    },
    HEAD: {
      description: 'Checks that a blob exists; the headers of GET without the body.',
      access: 'pull',
      headers: schemas.blobHeaders,
      responses: [{ status: 200, description: 'The blob exists.', headers: { 'Docker-Content-Digest': 'Its digest.', 'Content-Length': 'Its size.' } }],
      errors: [...nameErrors, 'BLOB_UNKNOWN', 'DIGEST_INVALID']
    },
    DELETE: {
      description: 'Removes the blob from the repository (its link).',
      access: 'delete',
      responses: [{ status: 202, description: 'Deleted.', headers: { 'Docker-Content-Digest': 'The digest.' } }],
      errors: [...nameErrors, 'BLOB_UNKNOWN', 'DIGEST_INVALID', 'UNSUPPORTED']
    }
  }
})

const blobUpload = defineRoute({
  name: 'blob-upload',
  path: '/v2/{name}/blobs/uploads/',
  description: 'Starts blob uploads.',
  params: params.name,
  methods: {
    POST: {
      description: 'Starts an upload; with `digest` and a body, uploads in one request; with `mount` (and `from`), links an existing blob.',
      access: 'push',
      query: schemas.uploadStartQuery,
      body: { description: 'The blob, for a monolithic upload with `digest`.', contentTypes: ['application/octet-stream'], stream: true },
      responses: [
        { status: 201, description: 'Blob created (monolithic) or mounted.', headers: { Location: 'URL of the blob.', 'Docker-Content-Digest': 'Its digest.' } },
        { status: 202, description: 'Upload started.', headers: { ...uploadHeaders, 'OCI-Chunk-Min-Length': 'Smallest chunk the storage accepts, when it has one.' } }
      ],
      errors: [...nameErrors, 'DIGEST_INVALID', 'SIZE_INVALID', 'BLOB_UPLOAD_INVALID', 'UNSUPPORTED']
    }
  }
})

const blobUploadChunk = defineRoute({
  name: 'blob-upload-chunk',
  path: '/v2/{name}/blobs/uploads/{uuid}',
  description: 'An upload in progress.',
  params: params.upload,
  methods: {
    GET: {
      description: 'Status of the upload.',
      access: 'pull',
      responses: [{ status: 204, description: 'The upload exists.', headers: uploadHeaders }],
      errors: [...nameErrors, 'BLOB_UPLOAD_UNKNOWN']
    },
    PATCH: {
      description: 'Appends a chunk (with `Content-Range`) or streams the rest of the blob.',
      access: 'push',
      headers: schemas.uploadChunkHeaders,
      body: { description: 'Bytes of the blob.', contentTypes: ['application/octet-stream'], stream: true },
      responses: [{ status: 202, description: 'Chunk accepted.', headers: uploadHeaders }],
      errors: [...nameErrors, 'BLOB_UPLOAD_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'RANGE_INVALID']
    },
    PUT: {
      description: 'Completes the upload, optionally with a last chunk; verifies digest and size.',
      access: 'push',
      query: schemas.uploadCompleteQuery,
      headers: schemas.uploadChunkHeaders,
      body: { description: 'The last bytes of the blob, if any.', contentTypes: ['application/octet-stream'], stream: true },
      responses: [{ status: 201, description: 'Blob created.', headers: { Location: 'URL of the blob.', 'Docker-Content-Digest': 'Its digest.' } }],
      errors: [...nameErrors, 'BLOB_UPLOAD_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'DIGEST_INVALID', 'SIZE_INVALID', 'RANGE_INVALID']
    },
    DELETE: {
      description: 'Cancels the upload and frees its storage.',
      access: 'push',
      responses: [{ status: 204, description: 'Cancelled.' }],
      errors: [...nameErrors, 'BLOB_UPLOAD_UNKNOWN']
    }
  }
})

const referrers = defineRoute({
  name: 'referrers',
  path: '/v2/{name}/referrers/{digest}',
  description: 'Manifests whose subject is a digest.',
  params: params.digest,
  methods: {
    GET: {
      description: 'An image index of the referrers of a digest, optionally filtered by `artifactType`.',
      access: 'pull',
      query: schemas.referrersQuery,
      responses: [{ status: 200, description: 'The referrers (an empty index for an unknown subject).', headers: { 'OCI-Filters-Applied': '`artifactType` when filtered.', Link: 'Next page, when more remain.' }, body: referrersIndexSchema, contentType: 'application/vnd.oci.image.index.v1+json' }],
      errors: [...nameErrors, 'DIGEST_INVALID']
    }
  }
})

/** The spec's routes by name, typed as written. */
export const routesByName = {
  base,
  catalog,
  tags,
  manifest,
  blob,
  'blob-upload': blobUpload,
  'blob-upload-chunk': blobUploadChunk,
  referrers
} as const

export type SpecRoutes = typeof routesByName
export type RouteName = keyof SpecRoutes

/** The spec's routes, in the order of the API reference. */
export const routes: readonly RouteDescriptor[] = Object.values(routesByName)

export type RouteVars = Partial<Record<string, string>> & {
  name?: string
  reference?: string
  digest?: string
  uuid?: string
}

export interface RouteMatch {
  route: RouteDescriptor
  vars: RouteVars
}

interface Matcher {
  route: RouteDescriptor
  regex: RegExp
  vars: string[]
  /** Fixed path segments: a route with more is tried first. */
  fixed: number
}

function escapeRegex (text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/**
 * The matcher of a path template, on the path after `/v2/`. `{name}` is any run of segments
 * (its grammar is checked after matching, so that a bad name answers NAME_INVALID rather than
 * 404); other variables are one segment. The fixed suffix is anchored at the end, so names
 * whose components are `blobs`, `manifests`, `uploads`, `tags` or `referrers` route correctly.
 * A template ending in `/` matches with or without it.
 */
function compileMatcher (route: RouteDescriptor): Matcher {
  if (!route.path.startsWith('/v2/')) throw new TypeError(`route ${route.name}: path ${route.path} is not under /v2/`)
  let template = route.path.slice('/v2/'.length)
  const optionalSlash = template.endsWith('/')
  if (optionalSlash) template = template.slice(0, -1)
  const vars: string[] = []
  const source = template.split(/(\{\w+\})/).map((part) => {
    const variable = /^\{(\w+)\}$/.exec(part)?.[1]
    if (variable === undefined) return escapeRegex(part)
    vars.push(variable)
    return variable === 'name' ? '(.+)' : '([^/]+)'
  }).join('')
  const fixed = template.split('/').filter((segment) => segment !== '' && !/^\{\w+\}$/.test(segment)).length
  return { route, regex: new RegExp(`^${source}${optionalSlash ? '/?' : ''}$`), vars, fixed }
}

function decodeSegment (segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

/**
 * A table of route descriptors and the matchers generated from their templates: the spec's
 * routes, plus extension routes under `/v2/_oci/`.
 */
export class RouteTable {
  private readonly matchers: Matcher[] = []
  private readonly byName = new Map<string, RouteDescriptor>()

  constructor (routes: readonly RouteDescriptor[] = []) {
    for (const route of routes) this.add(route)
  }

  /** Adds a route; an extension route must live under `/v2/_oci/` and have a name of its own. */
  add (route: RouteDescriptor, options: { extension?: boolean } = {}): void {
    if (this.byName.has(route.name)) throw new TypeError(`route ${route.name} is already defined`)
    if (options.extension === true && !route.path.startsWith(EXTENSION_PREFIX)) {
      throw new TypeError(`extension route ${route.name}: path ${route.path} is not under ${EXTENSION_PREFIX}`)
    }
    const matcher = compileMatcher(route)
    const undescribed = matcher.vars.filter((variable) => route.params.properties[variable] === undefined)
    if (undescribed.length > 0) throw new TypeError(`route ${route.name}: path variables ${undescribed.join(', ')} have no schema in params`)
    this.byName.set(route.name, route)
    // Stable: among routes with as many fixed segments, the first added is tried first.
    const at = this.matchers.findIndex((other) => other.fixed < matcher.fixed)
    this.matchers.splice(at === -1 ? this.matchers.length : at, 0, matcher)
  }

  get routes (): RouteDescriptor[] {
    return [...this.byName.values()]
  }

  get (name: string): RouteDescriptor | undefined {
    return this.byName.get(name)
  }

  /**
   * Resolves the path after `/v2/` (no query string) to a route and its variables, or
   * undefined when no route has that shape. A name that has a route's shape but not the
   * grammar throws NAME_INVALID. Names are never percent-decoded (an encoded `/` is refused as
   * it is); other variables are, since clients may encode the digest's `:`.
   */
  match (path: string): RouteMatch | undefined {
    for (const matcher of this.matchers) {
      const found = matcher.regex.exec(path)
      if (found === null) continue
      const vars: RouteVars = {}
      matcher.vars.forEach((key, i) => {
        const value = found[i + 1] as string
        vars[key] = key === 'name' ? assertName(value) : decodeSegment(value)
      })
      return { route: matcher.route, vars }
    }
    return undefined
  }
}

const specTable = new RouteTable(routes)

/** Resolves a path after `/v2/` against the spec's routes (see `RouteTable.match`). */
export function matchRoute (path: string): RouteMatch | undefined {
  return specTable.match(path)
}

const checks = new WeakMap<TSchema, TypeCheck<TSchema>>()

/**
 * Validates path variables, a query or a header object against a descriptor's schema. A
 * failing property answers with the error code its schema carries (`errorCode`), or
 * `fallback` when it carries none.
 */
export function validateInput<T extends TSchema> (schema: T, value: unknown, fallback: ErrorCode): Static<T> {
  let check = checks.get(schema)
  if (check === undefined) {
    check = TypeCompiler.Compile(schema)
    checks.set(schema, check)
  }
  if (check.Check(value)) return value as Static<T>
  const first = check.Errors(value).First()
  const code = ((first?.schema as { errorCode?: ErrorCode } | undefined)?.errorCode) ?? fallback
  throw new RegistryError(code, { field: first?.path.replace(/^\//, ''), value: first?.value, reason: first?.message })
}

/** The schema of a method's path variables: its own, or its route's. */
export function paramsSchema (route: RouteDescriptor, method: MethodDescriptor): TObject {
  return method.params ?? route.params
}
