/**
 * Stateless replicas: two example server processes on one storage (an S3 bucket, or one
 * filesystem root), optionally sharing a Redis cache, behave as one registry.
 */

import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { UrlBuilder } from '../../lib/urls.js'
import { digestOf } from '../../lib/digest.js'
import { startRedis } from '../redis.js'
import { startListening } from '../server-process.js'
import { startS3Server } from '../s3.js'
import { tempDir } from '../helpers.js'

// Each case starts its own processes; side by side they would only compete for the two cores.
t.jobs = 1
const timeout = 240_000
const MiB = 1024 * 1024
const urls = new UrlBuilder()
const octet = { 'content-type': 'application/octet-stream' }

interface Reply { status: number, headers: Headers, body: Buffer }

async function call (base: string, method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Reply> {
  const response = await fetch(new URL(path, base), { method, headers, ...(body === undefined ? {} : { body }) })
  return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) }
}

function pathOf (location: string | null): string {
  if (location === null) throw new Error('no Location header')
  const url = new URL(location, 'http://placeholder')
  return url.pathname + url.search
}

function sha256 (bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** An upload whose chunks go to the replicas in turn; finished on the last one. */
async function chunkedUpload (t: Test, replicas: string[], name: string, chunks: Buffer[]): Promise<string> {
  const content = Buffer.concat(chunks)
  const digest = digestOf(content)
  const post = await call(replicas[0] as string, 'POST', urls.blobUpload(name))
  t.equal(post.status, 202, 'the upload starts on the first replica')
  let location = pathOf(post.headers.get('location'))
  let offset = 0
  for (const [i, chunk] of chunks.slice(0, -1).entries()) {
    const replica = replicas[i % replicas.length] as string
    const patch = await call(replica, 'PATCH', location, chunk, { ...octet, 'content-range': `${offset}-${offset + chunk.length - 1}` })
    t.equal(patch.status, 202, `chunk ${i} on replica ${i % replicas.length}`)
    offset += chunk.length
    location = pathOf(patch.headers.get('location'))
    const status = await call(replicas[(i + 1) % replicas.length] as string, 'GET', location)
    t.equal(status.headers.get('range'), `0-${offset - 1}`, 'the other replica sees every byte so far')
  }
  const last = chunks.at(-1) as Buffer
  const finisher = replicas[(chunks.length - 1) % replicas.length] as string
  const put = await call(finisher, 'PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`, last,
    { ...octet, 'content-range': `${offset}-${offset + last.length - 1}` })
  t.equal(put.status, 201, `finished on replica ${(chunks.length - 1) % replicas.length}: ${put.body.toString()}`)
  for (const replica of replicas) {
    const get = await call(replica, 'GET', urls.blob(name, digest))
    t.equal(get.status, 200)
    t.equal(sha256(get.body), digest.slice(7), 'every replica serves the blob whole')
  }
  return digest
}

async function pushBlob (base: string, name: string, content: Buffer): Promise<string> {
  const digest = digestOf(content)
  const response = await call(base, 'POST', urls.blobUpload(name, { digest }), content, octet)
  if (response.status !== 201) throw new Error(`push failed: ${response.status} ${response.body.toString()}`)
  return digest
}

function manifestOf (config: { digest: string, size: number }, layer: { digest: string, size: number }, seed: string): Buffer {
  return Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
    annotations: { seed }
  }))
}

/** Everything a pair of replicas must agree on; `redis` when they share a cache. */
/**
 * Removes a blob's data behind both replicas' backs (as a collector or a person would): within a
 * few seconds neither says the blob exists, and the next push uploads the bytes again instead
 * of skipping a layer that is gone.
 */
async function dataRemovedBehindTheirBacks (t: Test, one: string, two: string, removeData: (digest: string) => Promise<void>): Promise<void> {
  const name = 'team/evicted'
  const content = randomBytes(20_000)
  const digest = await pushBlob(one, name, content)
  for (const replica of [one, two]) t.equal((await call(replica, 'HEAD', urls.blob(name, digest))).status, 200, 'both replicas know the blob')
  await removeData(digest)
  const started = Date.now()
  for (const replica of [one, two]) {
    let status = 200
    while (status !== 404 && Date.now() - started < 10_000) {
      status = (await call(replica, 'HEAD', urls.blob(name, digest))).status
      if (status !== 404) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    t.equal(status, 404, 'the replica answers 404 once the data is gone')
  }
  t.ok(Date.now() - started < 10_000, `within a few seconds (${Date.now() - started} ms)`)
  const again = await call(two, 'POST', urls.blobUpload(name, { digest }), content, octet)
  t.equal(again.status, 201, 'the next push uploads the bytes again')
  const get = await call(one, 'GET', urls.blob(name, digest))
  t.equal(get.status, 200)
  t.equal(sha256(get.body), digest.slice(7), 'and every replica serves them')
}

/** Removes a blob's data file from a filesystem root. */
function removeFromRoot (root: string): (digest: string) => Promise<void> {
  return async (digest) => {
    const hex = digest.slice('sha256:'.length)
    await rm(join(root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex), { recursive: true })
  }
}

async function asOneRegistry (t: Test, one: string, two: string, redis?: Redis): Promise<void> {
  const name = 'team/app'
  const replicas = [one, two]

  await t.test('an upload continues and finishes on another replica (parts of 5 MiB and more)', async (t) => {
    await chunkedUpload(t, replicas, name, [randomBytes(6 * MiB), randomBytes(6 * MiB), randomBytes(5 * MiB + 7), randomBytes(300_000)])
  })
  await t.test('an upload in small chunks, every chunk on the other replica', async (t) => {
    await chunkedUpload(t, replicas, name, Array.from({ length: 5 }, () => randomBytes(150_000)))
  })

  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux' }))
  const layerBytes = randomBytes(70_000)
  const config = { digest: await pushBlob(one, name, configBytes), size: configBytes.length }
  const layer = { digest: await pushBlob(two, name, layerBytes), size: layerBytes.length }

  await t.test('a tag pushed through one replica is served by the other at once', async (t) => {
    for (let i = 0; i < 4; i++) {
      const writer = replicas[i % 2] as string
      const reader = replicas[(i + 1) % 2] as string
      const manifest = manifestOf(config, layer, `v${i}`)
      // Read first, so that a cache on the reader holds the old value when the tag moves.
      await call(reader, 'GET', urls.manifest(name, 'latest'))
      const put = await call(writer, 'PUT', urls.manifest(name, 'latest'), manifest, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' })
      t.equal(put.status, 201, `tag move ${i}`)
      const get = await call(reader, 'GET', urls.manifest(name, 'latest'), undefined, { accept: 'application/vnd.oci.image.manifest.v1+json' })
      t.equal(get.status, 200)
      t.equal(get.headers.get('docker-content-digest'), digestOf(manifest), `the other replica serves move ${i} at once`)
    }
    const tags = await call(two, 'GET', urls.tags(name))
    t.same(JSON.parse(tags.body.toString()).tags, ['latest'])
    const catalog = await call(one, 'GET', urls.catalog())
    t.ok((JSON.parse(catalog.body.toString()) as { repositories: string[] }).repositories.includes(name), 'the catalog lists the repository')
  })

  await t.test('deletes are seen everywhere', async (t) => {
    const manifest = manifestOf(config, layer, 'to delete')
    const digest = digestOf(manifest)
    t.equal((await call(one, 'PUT', urls.manifest(name, 'gone'), manifest, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' })).status, 201)
    // Both replicas look it up (and a shared cache learns it) before the delete.
    for (const replica of replicas) t.equal((await call(replica, 'HEAD', urls.manifest(name, digest))).status, 200)
    for (const replica of replicas) t.equal((await call(replica, 'HEAD', urls.blob(name, layer.digest))).status, 200)
    if (redis !== undefined) {
      t.equal(await redis.get(`oci-registry:revision:${name}:${digest}`), '1', 'the shared cache holds the manifest revision')
      t.equal(await redis.get(`oci-registry:link:${name}:${layer.digest}`), '1', 'and the blob link')
      t.equal(await redis.exists(`oci-registry:blob:${layer.digest}`), 0, 'but never whether blob data exists: that is revalidated against storage')
    }
    t.equal((await call(two, 'DELETE', urls.manifest(name, digest))).status, 202)
    t.equal((await call(one, 'HEAD', urls.manifest(name, digest))).status, 404, 'the deleted manifest is gone on the other replica')
    t.equal((await call(one, 'GET', urls.manifest(name, 'gone'))).status, 404, 'and so is its tag')
    t.equal((await call(two, 'DELETE', urls.blob(name, layer.digest))).status, 202)
    t.equal((await call(one, 'HEAD', urls.blob(name, layer.digest))).status, 404, 'the unlinked blob is gone on the other replica')
  })
}

/** An example server process on port 0; its base URL. */
async function replica (t: Test, args: string[], env: Record<string, string> = {}): Promise<string> {
  return (await startListening(t, ['--port', '0', ...args], env)).base
}

t.test('two replicas on one S3 bucket', { timeout }, async (t) => {
  const s3 = await startS3Server(t)
  const bucket = await s3.createBucket()
  const env = {
    REGISTRY_STORAGE: 's3',
    REGISTRY_STORAGE_S3_BUCKET: bucket,
    REGISTRY_STORAGE_S3_REGIONENDPOINT: s3.endpoint,
    REGISTRY_STORAGE_S3_FORCEPATHSTYLE: 'true',
    REGISTRY_STORAGE_S3_ACCESSKEY: 'S3RVER',
    REGISTRY_STORAGE_S3_SECRETKEY: 'S3RVER',
    REGISTRY_STORAGE_S3_ROOTDIRECTORY: 'registry'
  }
  const [one, two] = await Promise.all([replica(t, ['--delete'], env), replica(t, ['--delete'], env)])
  await asOneRegistry(t, one, two)
})

t.test('two replicas on one filesystem root', { timeout }, async (t) => {
  const root = await tempDir(t)
  const [one, two] = await Promise.all([replica(t, ['--delete', '--root', root]), replica(t, ['--delete', '--root', root])])
  await asOneRegistry(t, one, two)
  await t.test('blob data removed behind their backs', async (t) => { await dataRemovedBehindTheirBacks(t, one, two, removeFromRoot(root)) })
})

t.test('two replicas on one S3 bucket sharing a Redis cache', { timeout }, async (t) => {
  const [s3, redisUrl] = await Promise.all([startS3Server(t), startRedis(t)])
  const bucket = await s3.createBucket()
  const args = ['--delete', '--storage', 's3', '--s3-bucket', bucket, '--s3-endpoint', s3.endpoint, '--s3-force-path-style', '--redis', redisUrl]
  const env = { REGISTRY_STORAGE_S3_ACCESSKEY: 'S3RVER', REGISTRY_STORAGE_S3_SECRETKEY: 'S3RVER' }
  const [one, two] = await Promise.all([replica(t, args, env), replica(t, args, env)])
  const redis = new Redis(redisUrl)
  t.teardown(() => { redis.disconnect() })
  await asOneRegistry(t, one, two, redis)
})

t.test('two replicas on one filesystem root sharing a Redis cache', { timeout }, async (t) => {
  const [root, redisUrl] = await Promise.all([tempDir(t), startRedis(t)])
  const args = ['--delete', '--root', root, '--redis', redisUrl]
  const [one, two] = await Promise.all([replica(t, args), replica(t, args)])
  const redis = new Redis(redisUrl)
  t.teardown(() => { redis.disconnect() })
  await asOneRegistry(t, one, two, redis)
  await t.test('blob data removed behind their backs', async (t) => { await dataRemovedBehindTheirBacks(t, one, two, removeFromRoot(root)) })
})
