import t from 'tap'
import { StorageUnavailableError } from '../../lib/storage/driver.js'
import { RegistryCache } from '../../lib/storage/cache.js'
import { RedisStore } from '../../lib/storage/redis-store.js'
import { startRedis } from '../redis.js'

t.test('without a shared store, lookups load every time; manifests are kept in memory', async (t) => {
  const cache = new RegistryCache({ manifestBytes: 1000 })
  let loads = 0
  for (let i = 0; i < 3; i++) t.equal(await cache.lookup('tag:a:b', async () => { loads++; return 'sha256:x' }), 'sha256:x')
  t.equal(loads, 3, 'nothing mutable is cached in process memory')
  await cache.invalidate('tag:a:b')
  let reads = 0
  const manifest = { mediaType: 'application/vnd.oci.image.manifest.v1+json', content: Buffer.from('{"manifest":true}') }
  const load = async (): Promise<typeof manifest> => { reads++; return { ...manifest } }
  t.same(await cache.manifest('sha256:m', load), manifest)
  t.same(await cache.manifest('sha256:m', load), manifest)
  t.equal(reads, 1, 'a manifest by digest is read once')
  cache.forgetManifest('sha256:m')
  await cache.manifest('sha256:m', load)
  t.equal(reads, 2, 'a forgotten manifest is read again')
  const large = { mediaType: manifest.mediaType, content: Buffer.alloc(200) }
  await cache.manifest('sha256:large', async () => { reads++; return large })
  await cache.manifest('sha256:large', async () => { reads++; return large })
  t.equal(reads, 4, 'a manifest above an eighth of the budget is not kept')
  const none = new RegistryCache({ manifestBytes: 0 })
  await none.manifest('sha256:m', load)
  await none.manifest('sha256:m', load)
  t.equal(reads, 6, 'manifestBytes 0 disables the memory cache')
})

t.test('blob sizes by digest are kept in memory once found, never their absence', async (t) => {
  const cache = new RegistryCache()
  let stored: string | undefined
  let loads = 0
  const load = async (): Promise<string | undefined> => { loads++; return stored }
  t.equal(await cache.blobSize('sha256:b', load), undefined)
  stored = '42'
  t.equal(await cache.blobSize('sha256:b', load), '42', 'an absence was not remembered')
  t.equal(await cache.blobSize('sha256:b', load), '42')
  t.equal(loads, 2, 'the size, once found, is answered from memory')
  cache.forgetBlob('sha256:b')
  stored = undefined
  t.equal(await cache.blobSize('sha256:b', load), undefined, 'a forgotten size is looked up again')
})

t.test('a shared Redis cache: fills, tombstones, and what happens when Redis is gone', async (t) => {
  const url = await startRedis(t)
  const store = new RedisStore(url, 'test:')
  const cache = new RegistryCache({ shared: store, ttlSeconds: 60 })
  t.teardown(() => cache.close())
  let storage: string | undefined = 'sha256:one'
  let loads = 0
  const load = async (): Promise<string | undefined> => { loads++; return storage }

  t.equal(await cache.lookup('tag:r:t', load), 'sha256:one')
  t.equal(await cache.lookup('tag:r:t', load), 'sha256:one')
  t.equal(loads, 1, 'the second lookup is answered by Redis')
  t.ok(await store.redis.ttl('test:tag:r:t') > 0, 'entries expire')

  await cache.invalidate('tag:r:t')
  storage = 'sha256:two'
  t.equal(await cache.lookup('tag:r:t', load), 'sha256:two', 'after an invalidation the lookup reads storage')
  t.equal(await store.redis.get('test:tag:r:t'), '~', 'and the tombstone stays: no fill during the write window')
  // A replica that read storage before the write, filling afterwards, cannot put the old value back.
  await store.fill('tag:r:t', 'sha256:one', 60)
  t.equal(await cache.lookup('tag:r:t', load), 'sha256:two', 'a late fill is refused')

  storage = undefined
  t.equal(await cache.lookup('tag:r:missing', load), undefined)
  t.equal(await store.redis.exists('test:tag:r:missing'), 0, 'absence is never cached')

  store.redis.disconnect()
  storage = 'sha256:three'
  const before = loads
  t.equal(await cache.lookup('tag:r:t', load), 'sha256:three', 'with Redis gone, lookups read storage')
  t.equal(loads, before + 1)
  await t.rejects(cache.invalidate('tag:r:t'), StorageUnavailableError, 'and a write that cannot invalidate fails (UNAVAILABLE)')
})

t.test('blob data removed in one process is forgotten by every process listening on Redis', async (t) => {
  const url = await startRedis(t)
  const remover = new RegistryCache({ shared: new RedisStore(url, 'removals:'), blobFreshnessMs: 60_000 })
  const other = new RegistryCache({ shared: new RedisStore(url, 'removals:'), blobFreshnessMs: 60_000 })
  t.teardown(async () => { await remover.close(); await other.close() })
  await other.listenForRemovals()
  let loads = 0
  const load = async (): Promise<string> => { loads++; return '42' }
  await other.blobSize('sha256:gone', load)
  await other.blobSize('sha256:kept', load)
  t.equal(loads, 2)
  await remover.blobsRemoved(['sha256:gone'])
  // The announcement arrives over Redis: wait for the other process to ask storage again.
  const deadline = Date.now() + 5000
  for (let asked = false; !asked && Date.now() < deadline;) {
    await other.blobSize('sha256:gone', load)
    asked = loads > 2
    if (!asked) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.equal(loads, 3, 'the removed blob is asked of storage again, long before its freshness ends')
  await other.blobSize('sha256:kept', load)
  t.equal(loads, 3, 'other blobs stay known')
})
