import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { Readable } from 'node:stream'
import { randomBytes } from 'node:crypto'
import { RegistryClient, formatExchange, nextLink, parseChallenge, type Exchange } from '../../lib/client/index.js'
import { RegistryError } from '../../lib/errors.js'
import { digestOf } from '../../lib/digest.js'
import registry from '../../plugins/registry.js'
import { storageKinds, tempDir } from '../helpers.js'

async function serve (t: Test, kind: typeof storageKinds[number]): Promise<string> {
  const app = Fastify({ logger: false })
  await app.register(registry, { delete: true, storage: kind === 'inmemory' ? { driver: 'inmemory' } : { driver: 'filesystem', root: await tempDir(t) } })
  t.teardown(async () => { await app.close() })
  return await app.listen({ host: '127.0.0.1', port: 0 })
}

for (const kind of storageKinds) {
  t.test(`the client against the registry (${kind})`, async (t) => {
    const url = await serve(t, kind)
    const exchanges: Exchange[] = []
    const client = new RegistryClient({ url, onExchange: (exchange) => exchanges.push(exchange) })
    await client.ping()

    const blobs = [randomBytes(1000), randomBytes(3000), randomBytes(10), randomBytes(5000)]
    const methods = ['monolithic', 'post-put', 'stream', 'chunked'] as const
    for (const [i, method] of methods.entries()) {
      const content = blobs[i] as Buffer
      const digest = await client.pushBlob('client/a', content, { method, chunkSize: 1024 })
      t.equal(digest, digestOf(content), `${method} upload`)
      t.same(await client.headBlob('client/a', digest), { digest, size: content.length })
      t.ok((await client.getBlob('client/a', digest)).equals(content))
    }
    t.ok(exchanges.filter((exchange) => exchange.request.method === 'PATCH' && exchange.request.headers['content-range'] !== undefined).length >= 5, 'chunked upload sent ranges')

    const sha512 = await client.pushBlob('client/a', blobs[0] as Buffer, { algorithm: 'sha512' })
    t.equal(sha512, digestOf(blobs[0] as Buffer, 'sha512'))
    t.ok((await client.getBlob('client/a', sha512)).equals(blobs[0] as Buffer))

    const streamed = await client.pushBlobStream('client/a', Readable.from([Buffer.from('one '), Buffer.from('two')]))
    t.same(streamed, { digest: digestOf('one two'), size: 7 })
    const chunks: Buffer[] = []
    for await (const chunk of await client.openBlob('client/a', streamed.digest)) chunks.push(chunk as Buffer)
    t.equal(Buffer.concat(chunks).toString(), 'one two')

    t.equal(await client.headBlob('client/a', digestOf('missing')), undefined)
    await t.rejects(client.getBlob('client/a', digestOf('missing')), { name: 'RegistryError', code: 'BLOB_UNKNOWN', statusCode: 404 })

    t.equal(await client.mountBlob('client/b', streamed.digest, 'client/a'), true, 'mounted')
    t.equal(await client.mountBlob('client/c', digestOf('missing'), 'client/a'), false, 'not mounted')

    const config = await client.pushBlob('client/a', Buffer.from('{}'))
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: streamed.digest, size: 7 }]
    }))
    const put = await client.putManifest('client/a', 'v1', manifest)
    t.equal(put.digest, digestOf(manifest))
    t.equal(put.location, `${url}/v2/client/a/manifests/${digestOf(manifest)}`)
    const tagged = await client.putManifest('client/a', digestOf(manifest), manifest, undefined, { tags: ['v2', 'v3'] })
    t.same(tagged.tags, ['v2', 'v3'])
    const got = await client.getManifest('client/a', 'v1')
    t.same(got, { digest: digestOf(manifest), mediaType: 'application/vnd.oci.image.manifest.v1+json', content: manifest })
    t.same(await client.headManifest('client/a', 'v1'), { digest: digestOf(manifest), size: manifest.length, mediaType: 'application/vnd.oci.image.manifest.v1+json' })
    t.equal(await client.headManifest('client/a', 'nope'), undefined)

    const artifact = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/example',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: config, size: 2 },
      layers: [],
      subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf(manifest), size: manifest.length }
    }))
    t.equal((await client.putManifest('client/a', digestOf(artifact), artifact)).subject, digestOf(manifest))
    const referrers = await client.referrers('client/a', digestOf(manifest), { artifactType: 'application/example' })
    t.same(referrers.manifests.map((entry) => entry.digest), [digestOf(artifact)])
    t.same(referrers.filtersApplied, ['artifactType'])

    t.same(await client.allTags('client/a', 2), ['v1', 'v2', 'v3'], 'every page')
    const page = await client.listTags('client/a', { n: 1 })
    t.same(page.tags, ['v1'])
    t.equal(page.next, `${url}/v2/client/a/tags/list?n=1&last=v1`)
    t.same((await client.catalog()).repositories, ['client/a', 'client/b'])

    await client.deleteManifest('client/a', 'v3')
    await client.deleteManifest('client/a', digestOf(artifact))
    await client.deleteBlob('client/b', streamed.digest)
    await t.rejects(client.deleteBlob('client/b', streamed.digest), { code: 'BLOB_UNKNOWN' })
    await t.rejects(client.getManifest('client/a', 'v3'), { code: 'MANIFEST_UNKNOWN', statusCode: 404 })
    const refused = await client.putManifest('client/a', 'bad', Buffer.from('{"schemaVersion":2}'), 'application/vnd.oci.image.manifest.v1+json').catch((error: unknown) => error)
    t.ok(refused instanceof RegistryError, 'a RegistryError')
    t.match(refused, { code: 'MANIFEST_INVALID', statusCode: 400 })
    await t.rejects(client.listTags('client/none'), { code: 'NAME_UNKNOWN' })
  })
}

t.test('exchanges are recorded with credentials redacted and formatted for people', async (t) => {
  const app = Fastify()
  app.get('/v2/', async (request, reply) => {
    if (request.headers.authorization === undefined) return await reply.code(401).header('www-authenticate', 'Basic realm="test"').send({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] })
    return await reply.header('docker-distribution-api-version', 'registry/2.0').send({})
  })
  t.teardown(async () => { await app.close() })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const exchanges: Exchange[] = []
  await new RegistryClient({ url, username: 'user', password: 'secret', onExchange: (exchange) => exchanges.push(exchange) }).ping()
  t.equal(exchanges.length, 2, 'challenged, then answered')
  t.equal(exchanges[1]?.request.headers.authorization, 'Basic (redacted)')
  const text = formatExchange(exchanges[0] as Exchange)
  t.match(text, /^> GET http:\/\/127\.0\.0\.1:\d+\/v2\/\n/)
  t.match(text, /< 401\n/)
  t.match(text, /< www-authenticate: Basic realm="test"/)
  t.match(text, /< \(body\) \{"errors":\[\{"code":"UNAUTHORIZED"/)
  t.notMatch(formatExchange(exchanges[1] as Exchange), /secret|dXNlcjpzZWNyZXQ/)

  await t.rejects(new RegistryClient({ url }).ping(), { code: 'UNAUTHORIZED', statusCode: 401 }, 'no credentials: the challenge is the error')
  await t.rejects(new RegistryClient({ url: 'http://127.0.0.1:1' }).ping(), /ECONNREFUSED/)
})

t.test('bearer tokens: fetched from the realm with the scope, then reused for the repository', async (t) => {
  const app = Fastify()
  const tokenRequests: Array<Record<string, unknown>> = []
  app.get('/token', async (request) => {
    tokenRequests.push({ query: request.query, authorization: request.headers.authorization })
    return { token: 'tok-123' }
  })
  app.get('/v2/*', async (request, reply) => {
    if (request.headers.authorization !== 'Bearer tok-123') {
      return await reply.code(401).header('www-authenticate', `Bearer realm="http://${request.headers.host ?? ''}/token",service="registry.test",scope="repository:a/b:pull"`).send()
    }
    return { name: 'a/b', tags: ['x'] }
  })
  t.teardown(async () => { await app.close() })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const client = new RegistryClient({ url, username: 'u', password: 'p' })
  t.same(await client.allTags('a/b'), ['x'])
  t.same(await client.allTags('a/b'), ['x'])
  t.same(tokenRequests, [{ query: { service: 'registry.test', scope: 'repository:a/b:pull' }, authorization: `Basic ${Buffer.from('u:p').toString('base64')}` }], 'one token request')
})

t.test('challenge and Link parsing', async (t) => {
  t.same(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull,push"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a:pull,push' }
  })
  t.same(parseChallenge('Basic realm="x"'), { scheme: 'basic', params: { realm: 'x' } })
  t.equal(parseChallenge(undefined), undefined)
  t.equal(nextLink('</v2/a/tags/list?n=1&last=b>; rel="next"'), '/v2/a/tags/list?n=1&last=b')
  t.equal(nextLink('</x>; rel="prev"'), undefined)
})
