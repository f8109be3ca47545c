import t from 'tap'
import { RegistryCache } from '../../lib/storage/cache.js'

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
