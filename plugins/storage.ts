/**
 * Builds the storage driver and the RegistryService from options and decorates the
 * registry's context with them; closes them when the server closes.
 */

import fp from 'fastify-plugin'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { ResolvedOptions, StorageOptions } from '../lib/options.js'
import type { StorageDriver } from '../lib/storage/driver.js'
import { wrapDriver, type StorageBase } from '../lib/storage/base.js'
import { RegistryService } from '../lib/storage/registry.js'
import { InMemoryDriver } from '../lib/storage/drivers/inmemory.js'
import { FilesystemDriver } from '../lib/storage/drivers/filesystem.js'
import { RegistryCache, type SharedStore } from '../lib/storage/cache.js'
import { verifySchema1 } from '../lib/manifest/schema1.js'
import type { Schema1Verifier } from '../lib/storage/manifests.js'
import { importOptional } from '../lib/optional.js'
import { markEmptyTreeIndexed } from '../lib/lifecycle/reindex.js'

/** What the drivers and caches log through (the app's logger); no optional package's types. */
type StorageLogger = Pick<FastifyBaseLogger, 'warn'>

/**
 * Builds the configured driver (or takes the one the host built), behind the storage base layer.
 * The S3 SDK and the Redis client are loaded only when configured: a registry without them starts faster.
 */
export async function createDriver (storage: StorageOptions | StorageDriver, log?: StorageLogger): Promise<StorageBase> {
  if (!('driver' in storage) || typeof storage.driver !== 'string') return wrapDriver(storage as StorageDriver)
  switch (storage.driver) {
    case 'inmemory': return wrapDriver(new InMemoryDriver())
    case 'filesystem': return wrapDriver(new FilesystemDriver({ root: storage.root }))
    case 's3': {
      const { driver: _driver, ...options } = storage
      const { S3Driver } = await importOptional('s3')
      return wrapDriver(new S3Driver({ ...options, ...(log === undefined ? {} : { log }) }))
    }
  }
}

/** The caches of the options: manifests in memory, and Redis when configured. */
export async function createCache (options: ResolvedOptions['cache'], log?: StorageLogger): Promise<RegistryCache> {
  let shared: SharedStore | undefined
  if (options.redis !== undefined) {
    const { RedisStore } = await importOptional('redis')
    shared = new RedisStore(options.redis, options.keyPrefix, log)
  }
  const cache = new RegistryCache({
    ttlSeconds: options.ttlSeconds,
    manifestBytes: options.manifestCacheBytes,
    ...(shared === undefined ? {} : { shared }),
    ...(log === undefined ? {} : { log })
  })
  await cache.listenForRemovals()
  return cache
}

const schema1Verifier: Schema1Verifier = (bytes) => {
  const manifest = verifySchema1(bytes)
  return { digest: manifest.digest, name: manifest.name, tag: manifest.tag, blobs: manifest.fsLayers }
}

async function storagePlugin (app: FastifyInstance, options: ResolvedOptions): Promise<void> {
  const registry = new RegistryService(await createDriver(options.storage, app.log), {
    cache: await createCache(options.cache, app.log),
    deleteEnabled: options.delete,
    mountWithoutFrom: options.mountWithoutFrom,
    readOnly: options.readOnly,
    maxTagsPerRequest: options.maxTagsPerRequest,
    ...(options.schema1 === 'verify' ? { schema1: schema1Verifier } : {})
  })
  registry.events.setLogger(app.log)
  app.decorate('ociRegistry', registry)

  let purgeTimer: NodeJS.Timeout | undefined
  if (options.uploadPurging.enabled) {
    const { ageSeconds, intervalSeconds } = options.uploadPurging
    const purge = async (): Promise<void> => {
      try {
        const purged = await registry.purgeUploads(new Date(Date.now() - ageSeconds * 1000))
        if (purged.length > 0) app.log.info({ purged: purged.length }, 'purged abandoned uploads')
      } catch (error) {
        app.log.error({ err: error }, 'upload purge failed')
      }
    }
    app.addHook('onReady', async () => {
      purgeTimer = setInterval(() => { purge().catch(() => {}) }, intervalSeconds * 1000).unref()
    })
  }
  // The catalog's index, when the tree has none: awaited on an empty tree (one listing), in the
  // background on a tree with repositories (the catalog walks the tree until it is built).
  app.addHook('onReady', async () => {
    const build = registry.catalogIndex.buildIfAbsent().catch((error: unknown) => {
      app.log.error({ err: error }, 'could not build the catalog\'s index; the catalog walks the tree')
    })
    if (!await registry.holdsRepositories()) {
      await build
      await markEmptyTreeIndexed(registry)
    }
  })
  app.addHook('onClose', async () => {
    clearInterval(purgeTimer)
    await registry.close()
  })
}

export default fp(storagePlugin, { fastify: '5.x', name: 'oci-registry-storage' })
