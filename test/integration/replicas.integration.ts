/**
 * Stateless replicas: two example server processes on one storage (an S3 bucket, or one
 * filesystem root), optionally sharing a Redis cache, behave as one registry.
 */

import t from 'tap'
import { Redis } from 'ioredis'
import { startRedis } from '../redis.js'
import { startS3Server } from '../s3.js'
import { tempDir } from '../helpers.js'
import { asOneRegistry, dataRemovedBehindTheirBacks, removeFromRoot, replica } from '../replicas.js'

// Each case starts its own processes; side by side they would only compete for the two cores.
t.jobs = 1
const timeout = 240_000

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
