import t from 'tap'
import { readFile } from 'node:fs/promises'
import { errorDescriptors } from '../lib/errors.js'
import { routes } from '../lib/routes.js'
import { buildOpenApi, renderApiMarkdown, renderOpenApi, schemaShape } from '../lib/docs.js'

const docs = new URL('../docs/', import.meta.url)
const regenerate = 'out of date: run `npm run docs` and commit the result'

t.test('docs/api.md is what the generator writes now', async (t) => {
  t.equal(await readFile(new URL('api.md', docs), 'utf8'), renderApiMarkdown(), `docs/api.md is ${regenerate}`)
})

t.test('docs/openapi.json is what the generator writes now', async (t) => {
  t.equal(await readFile(new URL('openapi.json', docs), 'utf8'), renderOpenApi(), `docs/openapi.json is ${regenerate}`)
})

t.test('the generators are deterministic', async (t) => {
  t.equal(renderApiMarkdown(), renderApiMarkdown())
  t.equal(renderOpenApi(), renderOpenApi())
})

t.test('the API reference covers every route, method and error code', async (t) => {
  const markdown = renderApiMarkdown()
  for (const route of routes) {
    t.match(markdown, `## \`${route.path}\``, `section for ${route.path}`)
    for (const method of Object.keys(route.methods)) {
      t.match(markdown, `### ${method} \`${route.path}\``, `${method} ${route.path}`)
    }
  }
  for (const error of errorDescriptors()) {
    t.match(markdown, `<a id="error-${error.code.toLowerCase()}"></a>\`${error.code}\` | ${error.httpStatus} | ${error.message} |`, `${error.code} in the error table`)
  }
  const anchors = new Set([...markdown.matchAll(/<a id="([^"]+)"><\/a>/g)].map((match) => match[1]))
  for (const [, target] of markdown.matchAll(/\]\(#([^)]+)\)/g)) {
    t.ok(anchors.has(target), `link #${target} has a target`)
  }
})

t.test('the OpenAPI document covers every route, method and error code', async (t) => {
  const document = buildOpenApi() as {
    openapi: string
    paths: Record<string, Record<string, { operationId?: string, responses?: Record<string, { 'x-error-codes'?: string[] }> }>>
    components: { parameters: Record<string, { in: string, 'x-multi-segment'?: boolean }> }
    'x-error-codes': Array<{ code: string, status: number }>
  }
  t.equal(document.openapi, '3.1.0')
  t.same(Object.keys(document.paths), routes.map((route) => route.path))
  const operationIds = new Set<string>()
  for (const route of routes) {
    for (const [method, descriptor] of Object.entries(route.methods)) {
      const operation = document.paths[route.path]?.[method.toLowerCase()]
      t.ok(operation, `${method} ${route.path}`)
      t.notOk(operationIds.has(operation?.operationId as string), 'operation ids are unique')
      operationIds.add(operation?.operationId as string)
      const codes = Object.values(operation?.responses ?? {}).flatMap((response) => response['x-error-codes'] ?? [])
      t.same(codes.sort(), [...new Set(descriptor.errors)].sort(), `errors of ${method} ${route.path}`)
    }
  }
  t.equal(document.components.parameters.name?.['x-multi-segment'], true, '{name} is documented as multi-segment')
  t.same(document['x-error-codes'].map((error) => error.code), errorDescriptors().map((error) => error.code))
  t.notMatch(renderOpenApi(), /"errorCode"/, 'the internal keyword is renamed to an extension')
})

t.test('schemaShape', async (t) => {
  t.equal(schemaShape({ type: 'object', properties: { a: { type: 'string' }, b: { type: 'array', items: { type: 'integer' } } }, required: ['a'] }), '{ a: string, b?: integer[] }')
  t.equal(schemaShape({ anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] }), 'string | string[]')
  t.equal(schemaShape({ type: 'array', items: { anyOf: [{ const: 'a' }, { const: 2 }] } }), '("a" | 2)[]')
  t.equal(schemaShape({ type: 'object', patternProperties: { '^(.*)$': { type: 'string' } } }), '{ [key: string]: string }')
  t.equal(schemaShape({ type: 'object', properties: {} }), '{}')
  t.equal(schemaShape({}), 'unknown')
})
