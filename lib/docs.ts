/**
 * Generators of the API reference (Markdown) and the OpenAPI 3.1 document, from the route
 * descriptors and the error registry. Pure and deterministic: a test compares the committed
 * files with their output, so the documentation cannot drift from the code.
 */

import type { TSchema } from '@sinclair/typebox'
import { errorDescriptor, errorDescriptors, type ErrorDescriptor } from './errors.js'
import { routes, schemas, type HttpMethod, type MethodDescriptor, type RouteDescriptor } from './routes.js'

/** Order of methods within a route, in both documents. */
const METHOD_ORDER: readonly HttpMethod[] = ['GET', 'HEAD', 'POST', 'PATCH', 'PUT', 'DELETE']

const MULTI_SEGMENT_NOTE = 'It spans one or more path segments (`library/ubuntu`, `a/b/c`): its slashes are part of the path and must not be percent-encoded.'

interface PathParameter {
  description: string
  schema: TSchema
}

function pathVariables (path: string): string[] {
  return [...path.matchAll(/\{([^}]+)\}/g)].map((match) => match[1] as string)
}

/** A path template variable, described by the route's params schema. */
function pathParameter (variable: string, route: RouteDescriptor): PathParameter {
  const schema = route.params.properties[variable]
  if (schema === undefined) throw new Error(`route ${route.name}: path variable {${variable}} has no schema in params`)
  const described = schema.description ?? ''
  const note = variable === 'name' ? MULTI_SEGMENT_NOTE : 'One segment.'
  return { description: described === '' ? note : `${described} ${note}`, schema }
}

/** Each path variable with its first route's description, in order of appearance. */
function firstParameters (routeList: readonly RouteDescriptor[]): Map<string, PathParameter> {
  const found = new Map<string, PathParameter>()
  for (const route of routeList) {
    for (const variable of pathVariables(route.path)) {
      if (!found.has(variable)) found.set(variable, pathParameter(variable, route))
    }
  }
  return found
}

function methodsOf (route: RouteDescriptor): Array<[HttpMethod, MethodDescriptor]> {
  return METHOD_ORDER
    .filter((method) => route.methods[method] !== undefined)
    .map((method) => [method, route.methods[method] as MethodDescriptor])
}

function errorsOf (method: MethodDescriptor): ErrorDescriptor[] {
  return [...new Set(method.errors)].map((code) => {
    const descriptor = errorDescriptor(code)
    if (descriptor === undefined) throw new Error(`error code ${code} is not registered`)
    return descriptor
  })
}

/** The parts of a JSON Schema the generators read. */
export interface SchemaNode {
  type?: string
  const?: unknown
  anyOf?: SchemaNode[]
  items?: SchemaNode
  properties?: Record<string, SchemaNode>
  patternProperties?: Record<string, SchemaNode>
  required?: string[]
  description?: string
  pattern?: string
  maxLength?: number
  minLength?: number
  errorCode?: string
}

const node = (schema: TSchema): SchemaNode => schema as unknown as SchemaNode

/** A TypeScript-like one-line shape of a schema, for people. */
export function schemaShape (schema: SchemaNode): string {
  if (schema.anyOf !== undefined) return schema.anyOf.map(schemaShape).join(' | ')
  if (schema.const !== undefined) return JSON.stringify(schema.const)
  if (schema.type === 'array' && schema.items !== undefined) {
    const item = schemaShape(schema.items)
    return schema.items.anyOf === undefined ? `${item}[]` : `(${item})[]`
  }
  if (schema.type === 'object') {
    if (schema.properties !== undefined && Object.keys(schema.properties).length > 0) {
      const required = new Set(schema.required ?? [])
      const fields = Object.entries(schema.properties)
        .map(([key, value]) => `${key}${required.has(key) ? '' : '?'}: ${schemaShape(value)}`)
      return `{ ${fields.join(', ')} }`
    }
    const values = Object.values(schema.patternProperties ?? {})
    if (values.length > 0) return `{ [key: string]: ${schemaShape(values[0] as SchemaNode)} }`
    return '{}'
  }
  return schema.type ?? 'unknown'
}

// ---------------------------------------------------------------------------------------------
// Markdown

function cell (text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

function code (text: string): string {
  // A code span must be delimited by more backticks than it contains in a row.
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((match) => match[0].length))
  const fence = '`'.repeat(longest + 1)
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : ''
  return `${fence}${pad}${text}${pad}${fence}`
}

function routeAnchor (route: RouteDescriptor): string {
  return `route-${route.name}`
}

function methodAnchor (route: RouteDescriptor, method: HttpMethod): string {
  return `${method.toLowerCase()}-${route.name}`
}

function errorAnchor (errorCode: string): string {
  return `error-${errorCode.toLowerCase()}`
}

function constraints (schema: SchemaNode): string {
  const patterns = (schema.anyOf ?? [schema]).map((member) => member.pattern).filter((pattern) => pattern !== undefined)
  const parts = patterns.length > 0 ? [patterns.map((pattern) => code(pattern)).join(' or ')] : []
  if (schema.maxLength !== undefined) parts.push(`at most ${schema.maxLength} characters`)
  return parts.join('; ')
}

function parameterTable (schema: TSchema): string[] {
  const object = node(schema)
  const required = new Set(object.required ?? [])
  const lines = [
    '| Name | Type | Required | Description | Constraint | Error when invalid |',
    '| --- | --- | --- | --- | --- | --- |'
  ]
  for (const [key, value] of Object.entries(object.properties ?? {})) {
    const errorCode = value.errorCode
    lines.push(`| ${[
      code(key),
      code(schemaShape(value)),
      required.has(key) ? 'yes' : 'no',
      value.description ?? '',
      constraints(value),
      errorCode === undefined ? '' : `[${code(errorCode)}](#${errorAnchor(errorCode)})`
    ].map(cell).join(' | ')} |`)
  }
  return lines
}

function headerTitle (name: string): string {
  return name.split('-').map((part) => part.charAt(0).toUpperCase() + part.slice(1)).join('-')
}

function headerSchema (schema: TSchema): TSchema {
  // Header schemas use the lower-case names Node gives; documents show the usual spelling.
  const object = node(schema)
  const properties = Object.fromEntries(Object.entries(object.properties ?? {}).map(([key, value]) => [headerTitle(key), value]))
  return { ...object, properties, required: (object.required ?? []).map(headerTitle) } as unknown as TSchema
}

function renderMethod (route: RouteDescriptor, method: HttpMethod, descriptor: MethodDescriptor): string[] {
  const lines: string[] = [
    `<a id="${methodAnchor(route, method)}"></a>`,
    '',
    `### ${method} ${code(route.path)}`,
    '',
    descriptor.description,
    '',
    `Access: ${code(descriptor.access)}.`,
    ''
  ]
  if (descriptor.params !== undefined) {
    lines.push('Path parameters of this method:', '', ...parameterTable(descriptor.params), '')
  }
  if (descriptor.query !== undefined) {
    lines.push('Query parameters:', '', ...parameterTable(descriptor.query), '')
  }
  if (descriptor.headers !== undefined) {
    lines.push('Request headers:', '', ...parameterTable(headerSchema(descriptor.headers)), '')
  }
  if (descriptor.body !== undefined) {
    const body = descriptor.body
    lines.push(
      `Request body: ${body.description} ${body.stream ? 'Streamed to storage.' : 'Read whole before it is processed.'}`,
      `Content types: ${body.contentTypes.map(code).join(', ')}.`,
      ''
    )
  }
  lines.push('Responses:', '', '| Status | Description | Headers | Body |', '| --- | --- | --- | --- |')
  for (const response of descriptor.responses) {
    const headers = Object.entries(response.headers ?? {}).map(([name, text]) => `${code(name)}: ${text}`).join('<br>')
    const body = [
      response.contentType === undefined ? '' : code(response.contentType),
      response.body === undefined ? '' : code(schemaShape(node(response.body)))
    ].filter((part) => part !== '').join(' ')
    lines.push(`| ${[String(response.status), response.description, headers, body].map(cell).join(' | ')} |`)
  }
  lines.push('')
  const errors = errorsOf(descriptor)
  if (errors.length > 0) {
    lines.push(`Errors: ${errors.map((error) => `[${code(error.code)}](#${errorAnchor(error.code)}) (${error.httpStatus})`).join(', ')}.`, '')
  }
  return lines
}

/** The API reference, `docs/api.md`: the spec's routes, or the routes given (with extension routes). */
export function renderApiMarkdown (routeList: readonly RouteDescriptor[] = routes): string {
  const lines: string[] = [
    '# API reference',
    '',
    '<!-- Generated from lib/routes.ts and lib/errors.ts by `npm run docs`; do not edit by hand. -->',
    '',
    'The HTTP API of the registry: the [OCI Distribution Spec v1.1](https://github.com/opencontainers/distribution-spec/blob/main/spec.md),',
    'compatible with the Docker Registry HTTP API V2. The same routes are described in [`openapi.json`](openapi.json).',
    '',
    'In path templates, `{name}` is a repository name and may span several path segments (`library/ubuntu`);',
    'the other variables are one segment each. "Access" is what a client must be granted on the repository',
    '(`pull`, `push`, `delete`), `catalog` for the registry-wide catalog, `admin` for administration, or `none`.',
    'Errors are answered with the body `{"errors": [{"code", "message", "detail"}]}`; the codes are listed under [Errors](#errors).',
    '',
    '## Routes',
    '',
    '| Path | Methods | Description |',
    '| --- | --- | --- |'
  ]
  for (const route of routeList) {
    const methods = methodsOf(route).map(([method]) => `[${method}](#${methodAnchor(route, method)})`).join(', ')
    lines.push(`| ${[`[${code(route.path)}](#${routeAnchor(route)})`, methods, route.description].map(cell).join(' | ')} |`)
  }
  lines.push('', '## Path parameters', '', '| Name | Description | Constraint |', '| --- | --- | --- |')
  for (const [variable, parameter] of firstParameters(routeList)) {
    lines.push(`| ${[code(`{${variable}}`), parameter.description, constraints(node(parameter.schema))].map(cell).join(' | ')} |`)
  }
  lines.push('')
  for (const route of routeList) {
    lines.push(`<a id="${routeAnchor(route)}"></a>`, '', `## ${code(route.path)}`, '', route.description, '')
    for (const [method, descriptor] of methodsOf(route)) lines.push(...renderMethod(route, method, descriptor))
  }
  lines.push(
    '<a id="errors"></a>',
    '',
    '## Errors',
    '',
    'Every error code the registry answers with. The status is the one served when the code is the first error of a response.',
    '',
    '| Code | Status | Message | Description |',
    '| --- | --- | --- | --- |'
  )
  for (const error of errorDescriptors()) {
    lines.push(`| ${[`<a id="${errorAnchor(error.code)}"></a>${code(error.code)}`, String(error.httpStatus), error.message, error.description].map(cell).join(' | ')} |`)
  }
  lines.push('')
  return lines.join('\n')
}

// ---------------------------------------------------------------------------------------------
// OpenAPI

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/** A schema as plain JSON: TypeBox's symbol keys dropped, our `errorCode` keyword as an extension. */
function jsonSchema (schema: TSchema | SchemaNode): Json {
  const walk = (value: unknown): Json => {
    if (Array.isArray(value)) return value.map(walk)
    if (typeof value === 'object' && value !== null) {
      const out: Record<string, Json> = {}
      for (const [key, child] of Object.entries(value)) {
        out[key === 'errorCode' ? 'x-error-code' : key] = walk(child)
      }
      return out
    }
    return value as Json
  }
  return walk(schema)
}

function operationId (route: RouteDescriptor, method: HttpMethod): string {
  const words = [method.toLowerCase(), ...route.name.split('-')]
  return words.map((word, i) => i === 0 ? word : word.charAt(0).toUpperCase() + word.slice(1)).join('')
}

function parameters (schema: TSchema | undefined, location: 'query' | 'header'): Json[] {
  if (schema === undefined) return []
  const object = node(location === 'header' ? headerSchema(schema) : schema)
  const required = new Set(object.required ?? [])
  return Object.entries(object.properties ?? {}).map(([key, value]) => {
    const { description, ...rest } = value
    const parameter: Record<string, Json> = { name: key, in: location, required: required.has(key) }
    if (description !== undefined) parameter.description = description
    parameter.schema = jsonSchema(rest)
    if (location === 'query' && value.anyOf?.some((member) => member.type === 'array') === true) {
      // `?tag=a&tag=b`: repeated parameters, not a comma-separated list.
      parameter.style = 'form'
      parameter.explode = true
    }
    return parameter
  })
}

function operation (route: RouteDescriptor, method: HttpMethod, descriptor: MethodDescriptor): Json {
  const out: Record<string, Json> = {
    operationId: operationId(route, method),
    summary: route.description,
    description: descriptor.description,
    tags: [route.name],
    'x-access': descriptor.access
  }
  const params = [...parameters(descriptor.query, 'query'), ...parameters(descriptor.headers, 'header')]
  if (params.length > 0) out.parameters = params
  if (descriptor.body !== undefined) {
    out.requestBody = {
      description: descriptor.body.description,
      content: Object.fromEntries(descriptor.body.contentTypes.map((type) => [type, {}])),
      'x-stream': descriptor.body.stream
    }
  }
  const responses: Record<string, Json> = {}
  for (const response of descriptor.responses) {
    const entry: Record<string, Json> = { description: response.description }
    // OpenAPI ignores a Content-Type response header; the content map carries it instead.
    const headers = Object.entries(response.headers ?? {}).filter(([name]) => name.toLowerCase() !== 'content-type')
    if (headers.length > 0) {
      entry.headers = Object.fromEntries(headers.map(([name, text]) => [name, { description: text, schema: { type: 'string' } }]))
    }
    if (response.contentType !== undefined) {
      entry.content = { [response.contentType]: response.body === undefined ? {} : { schema: jsonSchema(response.body) } }
    }
    responses[String(response.status)] = entry
  }
  const byStatus = new Map<number, ErrorDescriptor[]>()
  for (const error of errorsOf(descriptor)) {
    byStatus.set(error.httpStatus, [...(byStatus.get(error.httpStatus) ?? []), error])
  }
  for (const [status, errors] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[String(status)] = {
      description: errors.map((error) => `${error.code}: ${error.message}.`).join(' '),
      content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorBody' } } },
      'x-error-codes': errors.map((error) => error.code)
    }
  }
  out.responses = responses
  return out
}

function pathParameterJson (variable: string, parameter: PathParameter): Json {
  const { description: _description, ...schema } = node(parameter.schema)
  return {
    name: variable,
    in: 'path',
    required: true,
    description: parameter.description,
    schema: jsonSchema(schema),
    ...(variable === 'name' ? { 'x-multi-segment': true } : {})
  }
}

/** The OpenAPI 3.1 document, as an object: the spec's routes, or the routes given (with extension routes). */
export function buildOpenApi (routeList: readonly RouteDescriptor[] = routes): Record<string, Json> {
  const paths: Record<string, Json> = {}
  const shared = firstParameters(routeList)
  for (const route of routeList) {
    const item: Record<string, Json> = { summary: route.description }
    const variables = pathVariables(route.path)
    if (variables.length > 0) {
      item.parameters = variables.map((variable) => {
        const parameter = pathParameter(variable, route)
        // A variable shared with an earlier route refers to one component; a redefined one is inline.
        return shared.get(variable)?.schema === parameter.schema ? { $ref: `#/components/parameters/${variable}` } : pathParameterJson(variable, parameter)
      })
    }
    for (const [method, descriptor] of methodsOf(route)) item[method.toLowerCase()] = operation(route, method, descriptor)
    paths[route.path] = item
  }
  const componentParameters: Record<string, Json> = {}
  for (const [variable, parameter] of shared) componentParameters[variable] = pathParameterJson(variable, parameter)
  return {
    openapi: '3.1.0',
    info: {
      title: 'OCI Distribution API (fastify-oci-registry)',
      version: '1.1.0',
      description: 'The registry API of the OCI Distribution Spec v1.1, compatible with the Docker Registry HTTP API V2. ' +
        'Generated from lib/routes.ts and lib/errors.ts by `npm run docs`. ' +
        'The `{name}` path parameter spans one or more segments (see `x-multi-segment`), which OpenAPI templates cannot express.',
      license: { name: 'MIT', identifier: 'MIT' }
    },
    tags: routeList.map((route) => ({ name: route.name, description: route.description })),
    paths,
    components: {
      parameters: componentParameters,
      schemas: {
        ErrorBody: jsonSchema(schemas.errorBody)
      }
    },
    'x-error-codes': errorDescriptors().map((error) => ({
      code: error.code,
      status: error.httpStatus,
      message: error.message,
      description: error.description
    }))
  }
}

/** `docs/openapi.json`: the document, indented, with a final newline. */
export function renderOpenApi (routeList: readonly RouteDescriptor[] = routes): string {
  return `${JSON.stringify(buildOpenApi(routeList), null, 2)}\n`
}
