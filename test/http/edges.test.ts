/**
 * The HTTP edges an adversarial run found: references that cannot exist, malformed upload
 * ids, a bad Host header, methods no route has, bad percent-encoding, and a refused oversized
 * manifest that was answered only after a 10 s wait. Each answer has the spec's error body.
 */

import t, { type Test } from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { calculateJwkThumbprint, exportJWK } from 'jose'
import Fastify, { type FastifyInstance } from 'fastify'
import registry from '../../plugins/registry.js'
import { registryFrameworkErrors, DRAIN_LIMIT } from '../../plugins/errors.js'
import { build, pushBlob, urls } from '../helpers.js'
import { keyPair, signToken } from '../auth/fixtures.js'
import { digestOf } from '../../lib/digest.js'

function specBody (t: Test, body: string, code: string): void {
  const parsed = JSON.parse(body) as { errors?: Array<{ code: string, message: string }> }
  t.equal(parsed.errors?.[0]?.code, code, `code ${code}`)
  t.type(parsed.errors?.[0]?.message, 'string', 'with a message')
}

t.test('a reference outside the tag and digest grammar is unknown for reads, invalid for a push', async (t) => {
  const app = await build(t, 'inmemory')
  const url = urls.manifest('conformance/test', '.INVALID_MANIFEST_NAME')
  for (const method of ['GET', 'HEAD', 'DELETE'] as const) {
    const response = await app.inject({ method, url })
    t.equal(response.statusCode, 404, `${method} answers 404`)
    if (method !== 'HEAD') specBody(t, response.body, 'MANIFEST_UNKNOWN')
  }
  const put = await app.inject({ method: 'PUT', url, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, payload: '{}' })
  t.equal(put.statusCode, 400)
  specBody(t, put.body, 'TAG_INVALID')
  const badDigest = await app.inject({ method: 'GET', url: urls.manifest('conformance/test', 'sha256:abc') })
  t.equal(badDigest.statusCode, 400, 'a digest of the grammar with a wrong length stays DIGEST_INVALID')
  specBody(t, badDigest.body, 'DIGEST_INVALID')
})

t.test('a malformed upload id is an unknown upload, on every method, on storage with path rules', async (t) => {
  const app = await build(t, 'filesystem')
  const digest = digestOf('x')
  for (const uuid of ['==========', 'a=b', 'a.b', 'x'.repeat(129)]) {
    for (const [method, query] of [['GET', undefined], ['PATCH', undefined], ['PUT', { digest }], ['DELETE', undefined]] as const) {
      const response = await app.inject({ method, url: urls.blobUploadChunk('fuzz/base', uuid, query), headers: { 'content-type': 'application/octet-stream' }, payload: method === 'GET' || method === 'DELETE' ? undefined : 'x' })
      t.equal(response.statusCode, 404, `${method} ${uuid.slice(0, 12)}`)
      specBody(t, response.body, 'BLOB_UPLOAD_UNKNOWN')
    }
  }
})

t.test('a bad Host is refused with 400; URLs, links and challenges never carry one', async (t) => {
  const key = keyPair('ec')
  const kid = await calculateJwkThumbprint(await exportJWK(key.publicKey))
  const token = await signToken(key, { iss: 'issuer', aud: 'registry', sub: 'u', access: [{ type: 'repository', name: 'bob/secret', actions: ['pull', 'push'] }] }, { kid })
  const app = await build(t, 'inmemory', { auth: { mode: 'token', realm: '/token', service: 'registry', issuer: 'issuer', publicKeys: [key.publicPem] } })
  const quoted = await app.inject({ method: 'GET', url: urls.tags('bob/secret'), headers: { host: 'a"b' } })
  t.equal(quoted.statusCode, 400, 'a quote in Host, no credentials: not a 500')
  specBody(t, quoted.body, 'UNSUPPORTED')
  t.equal(quoted.headers['www-authenticate'], undefined, 'no challenge built from it')

  const auth = { authorization: `Bearer ${token}` }
  for (const tag of ['a', 'b']) {
    await pushBlob(app, 'bob/secret', Buffer.from('{}')).catch(() => {})
    const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf('{}'), size: 2 }, layers: [] })
    await app.inject({ method: 'POST', url: urls.blobUpload('bob/secret', { digest: digestOf('{}') }), headers: { ...auth, 'content-type': 'application/octet-stream' }, payload: '{}' })
    const put = await app.inject({ method: 'PUT', url: urls.manifest('bob/secret', tag), headers: { ...auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, payload: manifest })
    t.equal(put.statusCode, 201)
  }
  const linked = await app.inject({ method: 'GET', url: urls.tags('bob/secret', { n: 1 }), headers: { ...auth, host: 'a>;rel="x",<b' } })
  t.equal(linked.statusCode, 400, 'not reflected into Link')
  t.equal(linked.headers.link, undefined)
  specBody(t, linked.body, 'UNSUPPORTED')
  const good = await app.inject({ method: 'GET', url: urls.tags('bob/secret', { n: 1 }), headers: { ...auth, host: 'registry.example:5000' } })
  t.equal(good.statusCode, 200)
  t.equal(good.headers.link, '<http://registry.example:5000/v2/bob/secret/tags/list?n=1&last=a>; rel="next"')
  const ipv6 = await app.inject({ method: 'GET', url: urls.tags('bob/secret', { n: 1 }), headers: { ...auth, host: '[::1]:5000' } })
  t.equal(ipv6.statusCode, 200, 'an IP literal is a valid host')
})

t.test('every method on every /v2/ path answers the spec body: 405 with Allow, or 404', async (t) => {
  const app = await build(t, 'inmemory')
  for (const method of ['OPTIONS', 'TRACE', 'QUERY', 'POST', 'PUT'] as const) {
    // QUERY is newer than the injector's method type; the server routes it all the same.
    const base = await app.inject({ method: method as 'OPTIONS', url: '/v2/' })
    t.equal(base.statusCode, 405, `${method} /v2/`)
    t.equal(base.headers.allow, 'GET')
    specBody(t, base.body, 'UNSUPPORTED')
  }
  const manifest = await app.inject({ method: 'OPTIONS', url: urls.manifest('a/b', 'latest') })
  t.equal(manifest.statusCode, 405)
  t.equal(manifest.headers.allow, 'GET, HEAD, PUT, DELETE')
  const unknown = await app.inject({ method: 'OPTIONS', url: '/v2/a/b/nothing' })
  t.equal(unknown.statusCode, 404)
  specBody(t, unknown.body, 'UNSUPPORTED')
  const query = await app.inject({ method: 'QUERY' as 'OPTIONS', url: urls.tags('a/b') })
  t.equal(query.statusCode, 405, 'QUERY without a content type: 405, not Fastify\'s error')
  specBody(t, query.body, 'UNSUPPORTED')
})

t.test('methods Fastify does not route (WebDAV) get the spec body too: 405 with Allow, or 404', async (t) => {
  const app = await build(t, 'inmemory')
  // Node parses these methods, Fastify has no route for them: they used to get the host's 404 body.
  for (const method of ['PROPFIND', 'MKCOL', 'LOCK', 'COPY', 'MOVE', 'PURGE'] as const) {
    const base = await app.inject({ method: method as 'OPTIONS', url: '/v2/' })
    t.equal(base.statusCode, 405, `${method} /v2/`)
    t.equal(base.headers.allow, 'GET')
    t.equal(base.headers['docker-distribution-api-version'], 'registry/2.0')
    specBody(t, base.body, 'UNSUPPORTED')
  }
  const manifest = await app.inject({ method: 'PROPPATCH' as 'OPTIONS', url: urls.manifest('a/b', 'latest'), headers: { 'content-type': 'application/xml' }, payload: '<propertyupdate/>' })
  t.equal(manifest.statusCode, 405, 'with a body too')
  t.equal(manifest.headers.allow, 'GET, HEAD, PUT, DELETE')
  specBody(t, manifest.body, 'UNSUPPORTED')
  const bare = await app.inject({ method: 'MKCOL' as 'OPTIONS', url: '/v2' })
  t.equal(bare.statusCode, 405, '/v2 without its slash')
  const unknown = await app.inject({ method: 'PROPFIND' as 'OPTIONS', url: '/v2/a/b/nothing' })
  t.equal(unknown.statusCode, 404)
  specBody(t, unknown.body, 'UNSUPPORTED')
})

t.test('under a prefix, next to a host\'s own not-found handler, unrouted methods reach each its own', async (t) => {
  const app = Fastify({ logger: false })
  app.setNotFoundHandler(async (_request, reply) => await reply.code(404).send({ host: 'not found' }))
  await app.register(registry, { storage: { driver: 'inmemory' }, prefix: '/registry' } as Parameters<typeof registry>[1])
  await app.ready()
  t.teardown(async () => { await app.close() })
  const inside = await app.inject({ method: 'PROPFIND' as 'OPTIONS', url: '/registry/v2/' })
  t.equal(inside.statusCode, 405)
  specBody(t, inside.body, 'UNSUPPORTED')
  for (const url of ['/v2/', '/registry/other', '/elsewhere']) {
    const outside = await app.inject({ method: 'PROPFIND' as 'OPTIONS', url })
    t.equal(outside.statusCode, 404, `PROPFIND ${url}`)
    t.same(JSON.parse(outside.body), { host: 'not found' }, `PROPFIND ${url}: the host's handler answers`)
  }
})

t.test('a host app keeps its own answers outside /v2/; bad percent-encoding under /v2/ gets the spec body', async (t) => {
  const app = Fastify({ logger: false, frameworkErrors: registryFrameworkErrors() })
  app.get('/health', async () => ({ ok: true }))
  await app.register(registry, { storage: { driver: 'inmemory' } })
  await app.ready()
  t.teardown(async () => { await app.close() })
  const badUrl = await app.inject({ method: 'GET', url: '/v2/x/manifests/tag%ff' })
  t.equal(badUrl.statusCode, 400)
  specBody(t, badUrl.body, 'UNSUPPORTED')
  const hostBadUrl = await app.inject({ method: 'GET', url: '/other/%ff' })
  t.equal(hostBadUrl.statusCode, 400)
  t.equal(JSON.parse(hostBadUrl.body).code, 'FST_ERR_BAD_URL', 'the host\'s paths keep Fastify\'s answer')
  const hostOptions = await app.inject({ method: 'OPTIONS', url: '/health' })
  t.equal(hostOptions.statusCode, 404)
  t.match(JSON.parse(hostOptions.body), { message: 'Route OPTIONS:/health not found' }, 'no handler leaks into the host')
  const hostPropfind = await app.inject({ method: 'PROPFIND' as 'OPTIONS', url: '/health' })
  t.match(JSON.parse(hostPropfind.body), { message: 'Route PROPFIND:/health not found' }, 'nor for a method Fastify does not route')
  t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200)
})

async function listening (t: Test): Promise<number> {
  const app: FastifyInstance = await build(t, 'inmemory')
  await app.listen({ host: '127.0.0.1', port: 0 })
  return (app.server.address() as net.AddressInfo).port
}

/** Reads from a socket until `text` has arrived (or it closes); resolves with all read. */
async function readUntil (socket: net.Socket, text: string): Promise<string> {
  let received = ''
  while (!received.includes(text)) {
    const chunk = await Promise.race([once(socket, 'data').then(([data]) => String(data)), once(socket, 'close').then(() => undefined)])
    if (chunk === undefined) break
    received += chunk
  }
  return received
}

t.test('a refused oversized manifest is answered at once; the rest of its body is read after, and the connection serves on', async (t) => {
  const port = await listening(t)
  const socket = net.connect(port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  await once(socket, 'connect')
  const declared = 4 * 1024 * 1024 + 1
  t.ok(declared <= DRAIN_LIMIT)
  const started = Date.now()
  socket.write(`PUT /v2/big/manifest/manifests/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: ${declared}\r\n\r\nx`)
  // Nothing more is sent until the answer is read: the old server waited 10 s for the body.
  const answer = await readUntil(socket, '}]}')
  t.ok(Date.now() - started < 5000, `answered in ${Date.now() - started} ms, without waiting for the body`)
  t.match(answer, /^HTTP\/1\.1 413 /)
  t.match(answer, /"code":"MANIFEST_INVALID"/)
  t.notMatch(answer, /connection: close/i)
  // The client sends the rest, as it would; the connection then serves the next request.
  socket.write(Buffer.alloc(declared - 1, 'x'))
  socket.write('GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
  const next = await readUntil(socket, '{}')
  t.match(next, /^HTTP\/1\.1 200 /)
})
