/**
 * Online garbage collection under load: two server processes on one storage (a filesystem
 * root, then a bucket of OpenStack Swift's S3 API), each
 * with the collector on (every second, no grace delay; the lease lets one run at a time),
 * while several clients push images that share layers to either process, and delete some of
 * them. Afterwards every acknowledged manifest that was not deleted pulls whole, byte for byte;
 * and once a last run is done, no blob of a deleted image that no other image uses remains.
 * A push may fail (a blob it uploaded was collected before its manifest named it): clients
 * retry, as they do; what must never happen is a success for a manifest whose blobs are gone.
 */

import t, { type Test } from 'tap'
import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { RegistryClient } from '../../lib/client/index.js'
import { digestOf } from '../../lib/digest.js'
import { main as gc } from '../../examples/gc.js'
import { S3Driver } from '../../lib/storage/drivers/s3.js'
import { pathFor } from '../../lib/storage/paths.js'
import { sharedSwift, swiftCredentials } from '../swift.js'
import { startServer, tempDir, type RunningRegistry } from './harness.js'

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const LOAD_MS = 45_000
// On a slow store (Swift on a loaded machine) the first sweeping run may come later: the clients
// go on pushing until one has swept, within this bound.
const LOAD_MAX_MS = 180_000
const CLIENTS = 4

interface Pushed { name: string, digest: string, blobs: string[], unique: string[] }

const sharedLayers = Array.from({ length: 3 }, (_, i) => Buffer.from(`a base layer many images share ${i}`))

async function pushImage (client: RegistryClient, name: string, seed: string): Promise<Pushed> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }))
  const own = Buffer.from(`the layer of ${seed} only`)
  const base = sharedLayers[seed.length % sharedLayers.length] as Buffer
  // A shared layer the registry has already is not uploaded again, as docker does after a HEAD.
  if (await client.headBlob(name, digestOf(base)) === undefined) await client.pushBlob(name, base)
  await client.pushBlob(name, config)
  await client.pushBlob(name, own)
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
    layers: [base, own].map((layer) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf(layer), size: layer.length }))
  }))
  const { digest } = await client.putManifest(name, seed, manifest, OCI_MANIFEST)
  return { name, digest, blobs: [digestOf(config), digestOf(base), digestOf(own)], unique: [digest, digestOf(config), digestOf(own)] }
}

/** A storage both processes and the last offline run share, and how to tell a blob is stored. */
interface SharedStorage {
  flags: string[]
  blobStored: (digest: string) => Promise<boolean>
  /** Pushes that make the run meaningful in its time (Swift's Python servers are far slower). */
  minimumPushes: number
}

async function stress (t: Test, storage: SharedStorage): Promise<void> {
  const flags = [...storage.flags, '--delete', '--gc', '--gc-interval', '1s', '--gc-delay', '0s', '--log-level', 'info']
  const servers: RunningRegistry[] = [await startServer(t, flags), await startServer(t, flags)]
  const acknowledged: Pushed[] = []
  const deleted: Pushed[] = []
  let failedPushes = 0
  const sweeps = (): Array<Record<string, unknown>> =>
    servers.flatMap((server) => server.service.lines).filter((line) => line.msg === 'garbage collection finished' && Number(line.blobsSwept) > 0)
  const started = Date.now()
  const loading = (): boolean => Date.now() - started < LOAD_MS || (sweeps().length === 0 && Date.now() - started < LOAD_MAX_MS)

  await Promise.all(Array.from({ length: CLIENTS }, async (_, client) => {
    let round = 0
    while (loading()) {
      round++
      const server = servers[(client + round) % servers.length] as RunningRegistry
      const registry = new RegistryClient({ url: server.url })
      const name = `stress/repo${client % 2}`
      const seed = `c${client}-r${round}`
      let pushed: Pushed
      try {
        pushed = await pushImage(registry, name, seed)
      } catch {
        failedPushes++
        continue
      }
      acknowledged.push(pushed)
      if (round % 3 === 0) {
        // Deleted through the other process.
        await new RegistryClient({ url: (servers[(client + round + 1) % servers.length] as RunningRegistry).url }).deleteManifest(name, pushed.digest)
        deleted.push(pushed)
      }
    }
  }))

  const swept = sweeps()
  t.ok(swept.length > 0, `the collectors removed blobs while the clients pushed (${swept.length} runs did)`)
  t.ok(acknowledged.length >= storage.minimumPushes, `${acknowledged.length} pushes acknowledged, ${failedPushes} failed and were given up`)

  const kept = acknowledged.filter((image) => !deleted.includes(image))
  const reader = new RegistryClient({ url: (servers[0] as RunningRegistry).url })
  let whole = 0
  for (const image of kept) {
    try {
      const manifest = await reader.getManifest(image.name, image.digest)
      if (digestOf(manifest.content) !== image.digest) throw new Error('the manifest differs')
      for (const blob of image.blobs) {
        if (digestOf(await reader.getBlob(image.name, blob)) !== blob) throw new Error(`blob ${blob} differs`)
      }
      whole++
    } catch (error) {
      t.fail(`${image.name}@${image.digest}: ${(error as Error).message}`)
    }
  }
  t.equal(whole, kept.length, 'every acknowledged manifest not deleted pulls whole, byte for byte')

  for (const server of servers) await server.stop()
  const status = await gc(storage.flags, {}, { stdout: () => {}, stderr: () => {} })
  t.equal(status, 0, 'a last run')
  const stillUsed = new Set(kept.flatMap((image) => [image.digest, ...image.blobs]))
  const leftovers: string[] = []
  for (const image of deleted) {
    for (const digest of image.unique) {
      if (stillUsed.has(digest)) continue
      if (await storage.blobStored(digest)) leftovers.push(digest)
    }
  }
  t.same(leftovers, [], `no blob of the ${deleted.length} deleted images remains`)
}

t.test('two processes on one filesystem root collect continuously while clients push and delete', { timeout: 240_000 }, async (t) => {
  const root = await tempDir(t, 'gc-stress-')
  await stress(t, {
    flags: ['--storage', 'filesystem', '--root', root],
    minimumPushes: 20,
    blobStored: async (digest) => {
      const hex = digest.slice('sha256:'.length)
      return await access(join(root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data')).then(() => true, () => false)
    }
  })
})

t.test('two processes on one S3 bucket (Swift) collect continuously while clients push and delete', { timeout: 600_000 }, async (t) => {
  const swift = await sharedSwift()
  t.teardown(async () => { await swift.stop() })
  const bucket = await swift.createBucket()
  const { accessKeyId, secretAccessKey } = swiftCredentials()
  const driver = new S3Driver(swift.driverOptions(bucket))
  t.teardown(() => driver.close())
  await stress(t, {
    flags: ['--storage', 's3', '--s3-bucket', bucket, '--s3-endpoint', swift.endpoint, '--s3-region', swift.location,
      '--s3-force-path-style', '--s3-access-key', accessKeyId, '--s3-secret-key', secretAccessKey],
    minimumPushes: 8,
    blobStored: async (digest) => {
      const [algorithm, hex] = digest.split(':') as [string, string]
      return await driver.stat(pathFor({ kind: 'blobData', algorithm, hex })).then(() => true, () => false)
    }
  })
})
