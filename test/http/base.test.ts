import t from 'tap'
import Fastify from 'fastify'
import registry from '../../plugins/registry.js'
import { build, storageKinds, errorCode } from '../helpers.js'

for (const kind of storageKinds) {
  t.test(`${kind}: GET /v2/ answers 200 {} with the API version header`, async (t) => {
    const app = await build(t, kind)
    for (const url of ['/v2/', '/v2']) {
      const response = await app.inject({ method: 'GET', url })
      t.equal(response.statusCode, 200, url)
      t.equal(response.headers['docker-distribution-api-version'], 'registry/2.0')
      t.same(response.json(), {})
    }
  })

  t.test(`${kind}: unknown paths and methods inside /v2/ get spec error bodies`, async (t) => {
    const app = await build(t, kind)
    const unknown = await app.inject({ method: 'GET', url: '/v2/a/unknown/thing' })
    t.equal(unknown.statusCode, 404)
    t.equal(errorCode(unknown.body), 'UNSUPPORTED')
    const notAllowed = await app.inject({ method: 'PATCH', url: '/v2/' })
    t.equal(notAllowed.statusCode, 405)
    t.equal(errorCode(notAllowed.body), 'UNSUPPORTED')
    t.equal(notAllowed.headers.allow, 'GET')
    const invalid = await app.inject({ method: 'GET', url: '/v2/UPPER/tags/list' })
    t.equal(invalid.statusCode, 400)
    t.equal(errorCode(invalid.body), 'NAME_INVALID')
    t.equal(invalid.headers['content-type'], 'application/json; charset=utf-8')
  })
}

t.test('the plugin leaves its host untouched', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_request, body, done) => { done(null, `host saw: ${body as string}`) })
  app.setErrorHandler(async (error, _request, reply) => await reply.code(418).send({ host: true, message: (error as Error).message }))
  app.get('/health', async () => ({ ok: true }))
  app.post('/echo', async (request) => ({ body: request.body }))
  app.get('/boom', async () => { throw new Error('host error') })
  await app.register(registry, { storage: { driver: 'inmemory' } })

  t.same((await app.inject({ method: 'GET', url: '/health' })).json(), { ok: true })
  t.same((await app.inject({ method: 'POST', url: '/echo', payload: { a: 1 } })).json(), { body: { a: 1 } }, 'host JSON parser intact')
  t.same((await app.inject({ method: 'POST', url: '/echo', payload: 'hi', headers: { 'content-type': 'text/plain' } })).json(), { body: 'host saw: hi' }, 'host parser intact')
  const boom = await app.inject({ method: 'GET', url: '/boom' })
  t.equal(boom.statusCode, 418, 'host error handler intact')
  const notFound = await app.inject({ method: 'GET', url: '/nope' })
  t.equal(notFound.statusCode, 404)
  t.notOk(notFound.body.includes('"errors"'), 'host 404s are Fastify\'s, not the registry\'s')
  t.ok(app.hasDecorator('ociRegistry'), 'a decorator on the host: the services, for events and policy hooks')
  t.same(Object.keys(app.ociRegistryOperations), ['usage'], 'and one for operations: the usage tracker, and by default nothing else')
  t.notOk(app.hasRequestDecorator('registry'), 'no request decorator leaks')
  t.equal((await app.inject({ method: 'GET', url: '/v2/' })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/v2/a/blobs/sha256:' + 'a'.repeat(64) })).statusCode, 404)
})

t.test('the plugin serves under a prefix', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(registry, { prefix: '/registry', storage: { driver: 'inmemory' } } as never)
  t.equal((await app.inject({ method: 'GET', url: '/registry/v2/' })).statusCode, 200)
  const upload = await app.inject({ method: 'POST', url: '/registry/v2/a/b/blobs/uploads/', headers: { host: 'r.example' } })
  t.equal(upload.statusCode, 202)
  t.match(upload.headers.location, /^http:\/\/r\.example\/registry\/v2\/a\/b\/blobs\/uploads\/[0-9a-f-]+$/)
})

t.test('bad options fail registration with a clear message', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(registry, { storage: { driver: 'floppy' } } as never).ready() }, /invalid fastify-oci-registry options/)
  const other = Fastify()
  t.teardown(() => other.close())
  await t.rejects(async () => { await other.register(registry, { delete: 'yes' } as never).ready() }, /\/delete/)
})

t.test('Location headers: from the request host, a public URL, relative, or trusted forwarded headers', async (t) => {
  const location = async (options: Record<string, unknown>, headers: Record<string, string>): Promise<string> => {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(registry, { storage: { driver: 'inmemory' }, ...options })
    const response = await app.inject({ method: 'POST', url: '/v2/a/blobs/uploads/', headers })
    return (response.headers.location as string).replace(/[0-9a-f-]{36}$/, '<uuid>')
  }
  const forwarded = { host: 'internal:5000', 'x-forwarded-host': 'registry.example.com', 'x-forwarded-proto': 'https' }
  t.equal(await location({}, { host: 'localhost:5000' }), 'http://localhost:5000/v2/a/blobs/uploads/<uuid>')
  t.equal(await location({}, forwarded), 'http://internal:5000/v2/a/blobs/uploads/<uuid>', 'forwarded headers ignored unless trusted')
  t.equal(await location({ trustForwardedHeaders: true }, forwarded), 'https://registry.example.com/v2/a/blobs/uploads/<uuid>')
  t.equal(await location({ publicUrl: 'https://public.example.com' }, forwarded), 'https://public.example.com/v2/a/blobs/uploads/<uuid>')
  t.equal(await location({ relativeUrls: true }, { host: 'localhost:5000' }), '/v2/a/blobs/uploads/<uuid>')
})

t.test('Fastify\'s own client errors map to spec codes; anything unexpected is UNKNOWN without internals', async (t) => {
  const { toRegistryError } = await import('../../plugins/errors.js')
  const tooLarge = toRegistryError(Object.assign(new Error('body too large'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 }))
  t.same([tooLarge.code, tooLarge.statusCode], ['SIZE_INVALID', 413])
  const mediaType = toRegistryError(Object.assign(new Error('unsupported'), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 }))
  t.same([mediaType.code, mediaType.statusCode], ['UNSUPPORTED', 415])
  const validation = toRegistryError(Object.assign(new Error('querystring/n must be integer'), { validation: [{}], statusCode: 400 }))
  t.same([validation.code, validation.statusCode], ['UNSUPPORTED', 400])
  const bug = toRegistryError(new Error('ENOENT: /secret/server/path'))
  t.same([bug.code, bug.statusCode], ['UNKNOWN', 500])
  t.equal(bug.detail, undefined, 'no message, stack or path in the detail')

  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(async (scope) => {
    await scope.register(registry, { storage: { driver: 'inmemory' } })
  })
  const response = await app.inject({ method: 'GET', url: '/v2/a/blobs/sha256:' + 'a'.repeat(64), headers: { range: 'bytes=0-1' } })
  t.equal(response.statusCode, 404)
  t.equal(errorCode(response.body), 'BLOB_UNKNOWN')
})
