/**
 * Extension routes: a plugin's route descriptors under `/v2/_oci/`, served like the spec's
 * routes. A test extension (a usage report and an admin action) shows that its handlers get
 * typed, validated input, that access control applies (auth off, htpasswd, token, and the
 * admin kind), that its errors answer the spec's body, that it appears in the generated
 * OpenAPI document and that the URL builder builds its URLs.
 */

import t, { type Test } from 'tap'
import { Type } from '@sinclair/typebox'
import Fastify from 'fastify'
import { calculateJwkThumbprint, exportJWK } from 'jose'
import registry, { extensionRoute, type RegistryPluginOptions } from '../../plugins/registry.js'
import { defineRoute, routes, schemas, withCode } from '../../lib/routes.js'
import { RegistryError } from '../../lib/errors.js'
import { buildOpenApi, renderApiMarkdown } from '../../lib/docs.js'
import { UrlBuilder } from '../../lib/urls.js'
import { htpasswdFile, keyPair, signToken } from '../auth/fixtures.js'
import { errorCode, urls } from '../helpers.js'

const usageRoute = defineRoute({
  name: 'test-usage',
  path: '/v2/_oci/test/usage/{name}',
  description: 'Storage used by a repository.',
  params: Type.Object({ name: withCode(schemas.name, 'NAME_INVALID') }),
  methods: {
    GET: {
      description: 'The bytes a repository uses.',
      access: 'pull',
      query: Type.Object({ unit: Type.Optional(withCode(Type.Union([Type.Literal('bytes'), Type.Literal('kib')]), 'SIZE_INVALID')) }),
      responses: [{ status: 200, description: 'The usage.', body: Type.Object({ name: Type.String(), unit: Type.String() }), contentType: 'application/json' }],
      errors: ['NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'UNAUTHORIZED', 'DENIED']
    }
  }
})

const collectRoute = defineRoute({
  name: 'test-collect',
  path: '/v2/_oci/test/collect',
  description: 'An administrative action.',
  params: Type.Object({}),
  methods: {
    POST: {
      description: 'Starts a collection.',
      access: 'admin',
      responses: [{ status: 202, description: 'Started.' }],
      errors: ['UNAUTHORIZED', 'DENIED']
    }
  }
})

const usage = extensionRoute(usageRoute, {
  GET: async (request, reply) => {
    // Typed from the descriptor: a union of the literals, and the validated name.
    const unit: 'bytes' | 'kib' = request.query.unit ?? 'bytes'
    const name: string = request.params.name
    // @ts-expect-error: the descriptor declares no such query parameter
    t.equal(request.query.other, undefined)
    if (name === 'missing/repo') throw new RegistryError('NAME_UNKNOWN', { name })
    return await reply.send({ name, unit, route: request.ociContext.route?.name, self: request.ociContext.urls.build(usageRoute, { name }) })
  }
})

const collect = extensionRoute(collectRoute, {
  POST: async (request, reply) => await reply.code(202).send({ user: request.ociContext.user ?? null })
})

async function build (t: Test, options: Omit<RegistryPluginOptions, 'storage' | 'extensions'> = {}): Promise<{ app: ReturnType<typeof Fastify>, labels: string[] }> {
  const app = Fastify({ logger: false })
  const labels: string[] = []
  // A host hook sees the route's name (Fastify itself only sees `/v2/*`): the label of metrics.
  app.addHook('onResponse', async (request) => {
    labels.push(request.ociContext?.route?.name ?? '-')
  })
  await app.register(registry, { ...options, storage: { driver: 'inmemory' }, extensions: [usage, collect] })
  await app.ready()
  t.teardown(async () => { await app.close() })
  return { app, labels }
}

t.test('an extension route: typed and validated input, errors in the spec body, the route name for hooks', async (t) => {
  const { app, labels } = await build(t)
  const ok = await app.inject({ method: 'GET', url: '/v2/_oci/test/usage/library/ubuntu?unit=kib' })
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { name: 'library/ubuntu', unit: 'kib', route: 'test-usage', self: 'http://localhost:80/v2/_oci/test/usage/library/ubuntu' })
  t.equal(ok.headers['docker-distribution-api-version'], 'registry/2.0')

  const badQuery = await app.inject({ method: 'GET', url: '/v2/_oci/test/usage/library/ubuntu?unit=parsecs' })
  t.equal(badQuery.statusCode, 400)
  t.equal(errorCode(badQuery.body), 'SIZE_INVALID', 'the schema\'s error code')

  const badName = await app.inject({ method: 'GET', url: '/v2/_oci/test/usage/Library' })
  t.equal(badName.statusCode, 400)
  t.equal(errorCode(badName.body), 'NAME_INVALID')

  const thrown = await app.inject({ method: 'GET', url: '/v2/_oci/test/usage/missing/repo' })
  t.equal(thrown.statusCode, 404)
  t.match(thrown.json(), { errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry', detail: { name: 'missing/repo' } }] })

  const wrongMethod = await app.inject({ method: 'DELETE', url: '/v2/_oci/test/usage/a' })
  t.equal(wrongMethod.statusCode, 405)
  t.equal(wrongMethod.headers.allow, 'GET')
  t.equal(errorCode(wrongMethod.body), 'UNSUPPORTED')

  const unknown = await app.inject({ method: 'GET', url: '/v2/_oci/test/nothing' })
  t.equal(unknown.statusCode, 404)
  t.equal(errorCode(unknown.body), 'UNSUPPORTED')

  // The spec's routes still route, names of any depth included.
  t.equal((await app.inject({ method: 'GET', url: urls.tags('a/_oci/b') })).statusCode, 400, '`_oci` is no name component')
  t.equal((await app.inject({ method: 'GET', url: urls.manifest('x/blobs/uploads', 'latest') })).statusCode, 404)
  // A name outside the grammar is refused before its route is known.
  t.same(labels.slice(0, 4), ['test-usage', 'test-usage', '-', 'test-usage'])
  t.equal(labels.at(-1), 'manifest')
})

t.test('admin routes are denied when auth is off', async (t) => {
  const { app } = await build(t)
  const denied = await app.inject({ method: 'POST', url: '/v2/_oci/test/collect' })
  t.equal(denied.statusCode, 403)
  t.match(denied.json(), { errors: [{ code: 'DENIED', detail: [{ Type: 'registry', Name: 'admin', Action: '*' }] }] })
})

t.test('htpasswd: 401 without credentials, 403 for a user not listed as admin, success for an admin', async (t) => {
  const path = await htpasswdFile(t, { alice: 'wonderland', bob: 'builder' })
  const { app } = await build(t, { auth: { mode: 'htpasswd', path, admins: ['alice'] } })
  const basic = (user: string, password: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` })

  const anonymous = await app.inject({ method: 'POST', url: '/v2/_oci/test/collect' })
  t.equal(anonymous.statusCode, 401)
  t.equal(anonymous.headers['www-authenticate'], 'Basic realm="registry"')
  t.equal(errorCode(anonymous.body), 'UNAUTHORIZED')

  const bob = await app.inject({ method: 'POST', url: '/v2/_oci/test/collect', headers: basic('bob', 'builder') })
  t.equal(bob.statusCode, 403)
  t.equal(errorCode(bob.body), 'DENIED')
  t.equal((await app.inject({ method: 'GET', url: '/v2/_oci/test/usage/a/b', headers: basic('bob', 'builder') })).statusCode, 200, 'bob may use the pull route')

  const alice = await app.inject({ method: 'POST', url: '/v2/_oci/test/collect', headers: basic('alice', 'wonderland') })
  t.equal(alice.statusCode, 202)
  t.same(alice.json(), { user: 'alice' })
})

t.test('token: the admin scope is asked for, and needed', async (t) => {
  const key = keyPair('ec')
  const service = 'registry.test'
  const issuer = 'issuer.test'
  const { app } = await build(t, { auth: { mode: 'token', realm: 'https://auth.test/token', service, issuer, publicKeys: [key.publicPem] } })
  const kid = await calculateJwkThumbprint(await exportJWK(key.publicKey))
  const token = async (access: unknown): Promise<Record<string, string>> => ({ authorization: `Bearer ${await signToken(key, { iss: issuer, aud: service, sub: 'carol', access }, { kid })}` })

  const anonymous = await app.inject({ method: 'POST', url: '/v2/_oci/test/collect' })
  t.equal(anonymous.statusCode, 401)
  t.equal(anonymous.headers['www-authenticate'], `Bearer realm="https://auth.test/token",service="${service}",scope="registry:admin:*"`)

  const pullOnly = await app.inject({ method: 'POST', url: '/v2/_oci/test/collect', headers: await token([{ type: 'repository', name: 'a', actions: ['pull'] }]) })
  t.equal(pullOnly.statusCode, 401)
  t.match(pullOnly.headers['www-authenticate'], /error="insufficient_scope"/)

  const admin = await app.inject({ method: 'POST', url: '/v2/_oci/test/collect', headers: await token([{ type: 'registry', name: 'admin', actions: ['*'] }]) })
  t.equal(admin.statusCode, 202)
  t.same(admin.json(), { user: 'carol' })

  const usagePull = await app.inject({ method: 'GET', url: '/v2/_oci/test/usage/a', headers: await token([{ type: 'repository', name: 'a', actions: ['pull'] }]) })
  t.equal(usagePull.statusCode, 200, 'a repository route of an extension asks for the repository scope')
  const usageOther = await app.inject({ method: 'GET', url: '/v2/_oci/test/usage/b', headers: await token([{ type: 'repository', name: 'a', actions: ['pull'] }]) })
  t.equal(usageOther.statusCode, 401)
})

t.test('extension routes in the generated documents and the URL builder', async (t) => {
  const document = buildOpenApi([...routes, usageRoute, collectRoute])
  const paths = document.paths as Record<string, Record<string, { operationId: string, 'x-access': string }>>
  t.equal(paths['/v2/_oci/test/usage/{name}']?.get?.operationId, 'getTestUsage')
  t.equal(paths['/v2/_oci/test/collect']?.post?.['x-access'], 'admin')
  t.ok(paths['/v2/{name}/manifests/{reference}'], 'the spec\'s routes too')
  t.match(renderApiMarkdown([...routes, usageRoute]), /## `\/v2\/_oci\/test\/usage\/\{name\}`/)

  t.equal(urls.build(usageRoute, { name: 'library/ubuntu' }, { unit: 'kib' }), '/v2/_oci/test/usage/library/ubuntu?unit=kib')
  t.equal(new UrlBuilder({ base: 'https://r.example' }).build(collectRoute), 'https://r.example/v2/_oci/test/collect')
})

t.test('extension routes are refused outside /v2/_oci/, under a taken name, or without a handler per method', async (t) => {
  const attempt = async (extension: ReturnType<typeof extensionRoute>): Promise<void> => {
    const app = Fastify({ logger: false })
    t.teardown(async () => { await app.close() })
    await app.register(registry, { storage: { driver: 'inmemory' }, extensions: [extension] })
    await app.ready()
  }
  await t.rejects(attempt(extensionRoute({ ...collectRoute, name: 'elsewhere', path: '/v2/{name}/gc' }, collect.handlers as never)), /not under \/v2\/_oci\//)
  await t.rejects(attempt(extensionRoute({ ...collectRoute, name: 'manifest' }, collect.handlers as never)), /already defined/)
  await t.rejects(attempt(extensionRoute(collectRoute, {} as never)), /handlers for no method/)
})
