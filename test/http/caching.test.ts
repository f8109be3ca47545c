/**
 * The caches behind reads (manifests and blob sizes by digest in the registry, small files and
 * listings in the filesystem driver) never serve what storage no longer says: deletes, moved tags and changes
 * made by another process on the same storage are seen at once.
 */

import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import registry from '../../plugins/registry.js'
import { FilesystemDriver } from '../../lib/storage/drivers/filesystem.js'
import { InMemoryDriver } from '../../lib/storage/drivers/inmemory.js'
import { digestParts, pathFor } from '../../lib/storage/paths.js'
import type { StorageDriver } from '../../lib/storage/driver.js'
import { build, errorCode, prepareImage, pushBlob, putManifest, storageKinds, tempDir, urls } from '../helpers.js'

async function get (app: FastifyInstance, name: string, reference: string) {
  return await app.inject({ method: 'GET', url: urls.manifest(name, reference) })
}

for (const kind of storageKinds) {
  t.test(`${kind}: a deleted manifest is not served from the cache, and comes back when pushed again`, async (t) => {
    const app = await build(t, kind, { delete: true })
    const image = await prepareImage(app, 'cached')
    t.equal((await putManifest(app, 'cached', 'v1', image.manifest)).statusCode, 201)
    for (let i = 0; i < 2; i++) {
      t.equal((await get(app, 'cached', 'v1')).statusCode, 200, 'read by tag (twice: the second from the cache)')
      t.ok((await get(app, 'cached', image.digest)).rawPayload.equals(image.manifest), 'read by digest')
    }
    t.equal((await app.inject({ method: 'DELETE', url: urls.manifest('cached', image.digest) })).statusCode, 202)
    for (const reference of [image.digest, 'v1']) {
      const gone = await get(app, 'cached', reference)
      t.equal(gone.statusCode, 404, `${reference} is gone`)
      t.equal(errorCode(gone.body), 'MANIFEST_UNKNOWN')
    }
    t.equal((await putManifest(app, 'cached', 'v1', image.manifest)).statusCode, 201)
    const back = await get(app, 'cached', 'v1')
    t.equal(back.statusCode, 200)
    t.ok(back.rawPayload.equals(image.manifest), 'served again after a new push')
  })

  t.test(`${kind}: the cache is shared by repositories but each one still needs its own revision`, async (t) => {
    const app = await build(t, kind)
    const image = await prepareImage(app, 'one')
    t.equal((await putManifest(app, 'one', 'v1', image.manifest)).statusCode, 201)
    t.equal((await get(app, 'one', image.digest)).statusCode, 200)
    await prepareImage(app, 'two')
    const other = await get(app, 'two', image.digest)
    t.equal(other.statusCode, 404, 'not readable in a repository that does not hold it')
    t.equal(errorCode(other.body), 'MANIFEST_UNKNOWN')
  })

  t.test(`${kind}: a moved tag is read anew`, async (t) => {
    const app = await build(t, kind)
    const first = await prepareImage(app, 'moving', { seed: 'first' })
    const second = await prepareImage(app, 'moving', { seed: 'second' })
    await putManifest(app, 'moving', 'latest', first.manifest)
    t.equal((await get(app, 'moving', 'latest')).headers['docker-content-digest'], first.digest)
    await putManifest(app, 'moving', 'latest', second.manifest)
    t.equal((await get(app, 'moving', 'latest')).headers['docker-content-digest'], second.digest)
  })
}

/** An app on a filesystem root, caching every read at once, as a second worker or replica would. */
async function replica (t: Test, root: string): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  await app.register(registry, { delete: true, storage: new FilesystemDriver({ root, cache: { settleMs: 0 } }) })
  await app.ready()
  t.teardown(async () => { await app.close() })
  return app
}

t.test('two processes on one storage: each sees the tags and deletes of the other at once', async (t) => {
  const root = await tempDir(t)
  const a = await replica(t, root)
  const b = await replica(t, root)
  const first = await prepareImage(b, 'shared', { seed: 'first' })
  const second = await prepareImage(b, 'shared', { seed: 'second' })
  await putManifest(b, 'shared', 'v1', first.manifest)
  await putManifest(b, 'shared', 'v2', first.manifest)
  const tags = async (): Promise<string[]> => (JSON.parse((await a.inject({ method: 'GET', url: urls.tags('shared') })).body) as { tags: string[] }).tags

  t.equal((await get(a, 'shared', 'v1')).headers['docker-content-digest'], first.digest)
  t.same(await tags(), ['v1', 'v2'])
  await putManifest(b, 'shared', 'v1', second.manifest)
  t.equal((await get(a, 'shared', 'v1')).headers['docker-content-digest'], second.digest, 'the tag moved by the other is followed')
  await putManifest(b, 'shared', 'v3', second.manifest)
  t.same(await tags(), ['v1', 'v2', 'v3'], 'a tag added by the other is listed')
  t.equal((await b.inject({ method: 'DELETE', url: urls.manifest('shared', 'v2') })).statusCode, 202)
  t.same(await tags(), ['v1', 'v3'], 'a tag deleted by the other is not')
  t.equal((await b.inject({ method: 'DELETE', url: urls.manifest('shared', second.digest) })).statusCode, 202)
  t.equal((await get(a, 'shared', 'v1')).statusCode, 404, 'a manifest deleted by the other is gone')
  t.equal((await get(a, 'shared', second.digest)).statusCode, 404)
})

for (const kind of ['inmemory', 'filesystem'] as const) {
  t.test(`${kind}: a blob whose data is removed behind the registry's back is unknown at the next GET, and can be pushed again`, async (t) => {
    // As an offline garbage collection would do: the registry itself never removes blob data.
    const driver: StorageDriver = kind === 'inmemory' ? new InMemoryDriver() : new FilesystemDriver({ root: await tempDir(t) })
    const app = Fastify()
    await app.register(registry, { storage: driver })
    t.teardown(async () => { await app.close() })
    const content = Buffer.from('a blob whose data goes missing')
    const digest = await pushBlob(app, 'gone', content)
    t.equal((await app.inject({ method: 'HEAD', url: urls.blob('gone', digest) })).statusCode, 200, 'its size is now known in memory')
    const dataPath = pathFor({ kind: 'blobData', ...digestParts(digest) })
    await driver.delete(dataPath)
    await pushBlob(app, 'gone', content)
    const back = await app.inject({ method: 'GET', url: urls.blob('gone', digest) })
    t.equal(back.statusCode, 200, 'pushed again, the data is stored again (the push asks storage, not the cache)')
    t.ok(back.rawPayload.equals(content))
    await driver.delete(dataPath)
    const missing = await app.inject({ method: 'GET', url: urls.blob('gone', digest) })
    t.equal(missing.statusCode, 404)
    t.equal(errorCode(missing.body), 'BLOB_UNKNOWN')
    t.equal((await app.inject({ method: 'HEAD', url: urls.blob('gone', digest) })).statusCode, 404, 'and HEAD says so too from then on')
  })
}

t.test('log lines of a request carry its route, repository and reference', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    }
  })
  const app = Fastify({ logger: { level: 'info', stream } })
  await app.register(registry, { storage: { driver: 'inmemory' } })
  await app.ready()
  t.teardown(async () => { await app.close() })
  t.equal((await get(app, 'logged/repo', 'missing')).statusCode, 404)
  const refused = lines.find((line) => line.msg === 'request refused')
  t.match(refused, { route: 'manifest', repository: 'logged/repo', reference: 'missing', code: 'NAME_UNKNOWN' })
  const completed = lines.find((line) => line.msg === 'request completed')
  t.match(completed, { route: 'manifest', repository: 'logged/repo', reference: 'missing' }, "Fastify's own line too, at info")
})
