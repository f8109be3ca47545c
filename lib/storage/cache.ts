/**
 * Caches in front of storage, used by the services (blob, tag and manifest stores) and nowhere
 * else. Storage stays the truth: a cache only saves round trips to it. The contract, for every
 * cache of the registry:
 *
 * | What | Where | Kept for | Evicted by |
 * | --- | --- | --- | --- |
 * | Manifest bytes and media type, by digest | process (LRU, `manifestBytes`) | until pushed out | the last revision's delete; content under a digest never changes, and every read checks the revision link first |
 * | Blob size, by digest ("the data exists") | process (LRU) | `blobFreshnessMs` (default 2 s), then asked of storage again | a GET that finds the data gone; data removed through the registry (a collection, a quarantine), in every process at once through Redis pub/sub when configured |
 * | Tag → digest, repository → blob link, manifest revision | Redis, when configured (else storage every time) | `ttlSeconds` | a tombstone written before the change, in every replica at once |
 * | Directory listings and small files | the filesystem driver, in process | while `stat` shows them unchanged | the `stat` each read makes |
 * | A repository's last tag listing | process | while the listing is the same | the listing each read makes |
 *
 * So without Redis, no process says a blob exists more than `blobFreshnessMs` after its data is
 * gone, however it went (another replica, a collector, a person). Writes that depend on
 * existence (publishing an upload, a mount, a manifest's references) ask storage, never a cache:
 * a push can never lean on a blob that is no longer there.
 *
 * Redis (redis-store.ts) holds lookups that change, read and invalidated by every replica alike.
 * Only facts found in storage are cached. A write first replaces the key with a short-lived
 * tombstone, and fills never overwrite (`SET NX`): a replica that read storage just before the
 * write cannot put the old value back. Reads fall back to storage when Redis is unreachable; a
 * write that cannot invalidate fails (UNAVAILABLE) rather than leave replicas stale.
 */

import { LRUCache } from 'lru-cache'
import { StorageUnavailableError } from './driver.js'

/** What the registry cache needs of a shared key/value store. */
export interface SharedStore {
  get: (key: string) => Promise<string | null>
  /** Sets the key unless it exists. */
  fill: (key: string, value: string, ttlSeconds: number) => Promise<void>
  /** Sets the keys, replacing what they held. */
  replace: (keys: string[], value: string, ttlSeconds: number) => Promise<void>
  /** Sends a message to every process listening on the channel (Redis pub/sub). */
  announce?: (channel: string, message: string) => Promise<void>
  /** Calls `handler` with each message announced on the channel, by any process. */
  listen?: (channel: string, handler: (message: string) => void) => Promise<void>
  /** Resolves when the store answers (health checks). */
  ping?: () => Promise<void>
  close: () => Promise<void>
}

/** The channel on which processes announce blob data they removed (one digest per line). */
const BLOBS_REMOVED = 'blobs-removed'

/** A manifest as kept in memory. */
export interface CachedManifest {
  mediaType: string
  content: Buffer
}

export interface CacheLogger {
  warn: (object: Record<string, unknown>, message: string) => void
}

/** Marks a key just invalidated; never a cached value (values are digests, sizes and `1`). */
const TOMBSTONE = '~'
/** How long an invalidated key stays uncacheable: longer than any storage read behind a fill. */
const TOMBSTONE_SECONDS = 60
/** Blob sizes kept in process memory: about 150 bytes each. */
const BLOB_SIZES_KEPT = 10_000
/** How long a blob size found in storage is trusted before storage is asked again. */
const BLOB_FRESHNESS_MS = 2000

export interface RegistryCacheOptions {
  /** The shared cache; without it, lookups go to storage every time. */
  shared?: SharedStore
  /** Lifetime of a shared entry, in seconds (default 3,600). */
  ttlSeconds?: number
  /** Bytes of manifests kept in process memory (default 16 MiB; 0 disables). */
  manifestBytes?: number
  /** How long an in-process blob size is trusted, in ms (default 2,000; 0 asks storage every time). */
  blobFreshnessMs?: number
  log?: CacheLogger
}

/** Which cache a lookup asked, and what it found (`error`: the shared store did not answer). */
export interface CacheLookupEvent {
  cache: 'shared' | 'manifest' | 'blob'
  result: 'hit' | 'miss' | 'error'
}

export type CacheListener = (event: CacheLookupEvent) => void

export class RegistryCache {
  private readonly shared: SharedStore | undefined
  /** Replaced, never changed in place, like the storage base layer's observers. */
  private listeners: readonly CacheListener[] = []
  private readonly ttlSeconds: number
  private readonly manifests: LRUCache<string, CachedManifest> | undefined
  private readonly blobSizes: LRUCache<string, string> | undefined
  private readonly log: CacheLogger | undefined

  constructor (options: RegistryCacheOptions = {}) {
    this.shared = options.shared
    this.ttlSeconds = options.ttlSeconds ?? 3600
    this.log = options.log
    const freshness = options.blobFreshnessMs ?? BLOB_FRESHNESS_MS
    this.blobSizes = freshness > 0 ? new LRUCache<string, string>({ max: BLOB_SIZES_KEPT, ttl: freshness, ttlAutopurge: false }) : undefined
    const bytes = options.manifestBytes ?? 16 * 1024 * 1024
    // One large index must not push out everything else: entries above an eighth are not kept.
    this.manifests = bytes > 0
      ? new LRUCache<string, CachedManifest>({ maxSize: bytes, maxEntrySize: Math.max(1, Math.floor(bytes / 8)), sizeCalculation: (value) => Math.max(1, value.content.byteLength) })
      : undefined
  }

  /** Calls `listener` after every lookup (the source of cache hit and miss metrics); returns what removes it. */
  observe (listener: CacheListener): () => void {
    this.listeners = [...this.listeners, listener]
    return () => {
      this.listeners = this.listeners.filter((kept) => kept !== listener)
    }
  }

  private notify (cache: CacheLookupEvent['cache'], result: CacheLookupEvent['result']): void {
    for (const listener of this.listeners) {
      try {
        listener({ cache, result })
      } catch {
        // An observer's fault must not fail the lookup it watched.
      }
    }
  }

  /** Whether the shared store answers (health checks); true when there is none. */
  async ping (): Promise<void> {
    await this.shared?.ping?.()
  }

  /** The value of a mutable lookup: from the shared cache, else loaded from storage and cached. */
  async lookup (key: string, load: () => Promise<string | undefined>): Promise<string | undefined> {
    const shared = this.shared
    if (shared === undefined) return await load()
    let cached: string | null = null
    try {
      cached = await shared.get(key)
    } catch {
      this.notify('shared', 'error')
      return await load()
    }
    const hit = cached !== null && cached !== TOMBSTONE
    if (this.listeners.length > 0) this.notify('shared', hit ? 'hit' : 'miss')
    if (hit) return cached as string
    const value = await load()
    if (value !== undefined && cached === null) {
      try {
        await shared.fill(key, value, this.ttlSeconds)
      } catch {
        // Not cached this time: the next lookup reads storage again.
      }
    }
    return value
  }

  /**
   * Makes keys uncacheable for a while, before a write changes what they describe (and fills
   * racing the write cannot succeed). Throws UNAVAILABLE when the shared cache cannot be told.
   */
  async invalidate (...keys: string[]): Promise<void> {
    const shared = this.shared
    if (shared === undefined || keys.length === 0) return
    try {
      await shared.replace(keys, TOMBSTONE, TOMBSTONE_SECONDS)
    } catch (error) {
      this.log?.warn({ err: error, keys }, 'redis cache invalidation failed')
      throw new StorageUnavailableError('cache', keys[0] as string, 'cache invalidation failed', { cause: error })
    }
  }

  /** A manifest by digest, from memory when seen before. */
  async manifest (digest: string, load: () => Promise<CachedManifest>): Promise<CachedManifest> {
    const cached = this.manifests?.get(digest)
    if (this.listeners.length > 0 && this.manifests !== undefined) this.notify('manifest', cached === undefined ? 'miss' : 'hit')
    if (cached !== undefined) return cached
    const manifest = await load()
    this.manifests?.set(digest, manifest)
    return manifest
  }

  /**
   * A blob's size by digest (as a decimal string): from memory when found in storage less than
   * the freshness ago, else from storage. Never from Redis: a shared entry could outlive data
   * removed behind the registry's back for its whole lifetime.
   */
  async blobSize (digest: string, load: () => Promise<string | undefined>): Promise<string | undefined> {
    const known = this.blobSizes?.get(digest)
    if (this.listeners.length > 0 && this.blobSizes !== undefined) this.notify('blob', known === undefined ? 'miss' : 'hit')
    if (known !== undefined) return known
    const size = await load()
    if (size !== undefined) this.blobSizes?.set(digest, size)
    return size
  }

  /** Drops a blob's size from memory: its data is gone (found missing, or removed through the registry). */
  forgetBlob (digest: string): void {
    this.blobSizes?.delete(digest)
  }

  /**
   * Listens for blob data removed by other processes (with a shared store that can announce),
   * so that they are forgotten here at once rather than after the freshness.
   */
  async listenForRemovals (): Promise<void> {
    try {
      await this.shared?.listen?.(BLOBS_REMOVED, (message) => {
        for (const digest of message.split('\n')) {
          this.forgetBlob(digest)
          this.manifests?.delete(digest)
        }
      })
    } catch (error) {
      // Redis away at start: the registry still serves, and the freshness bounds what it keeps.
      this.log?.warn({ err: error }, 'could not listen for blobs removed by other processes')
    }
  }

  /**
   * Blob data was removed (a collection, a quarantine): forgets it here and tells every other
   * process. An announcement that fails is logged; the freshness still bounds what they keep.
   */
  async blobsRemoved (digests: readonly string[]): Promise<void> {
    for (const digest of digests) {
      this.forgetBlob(digest)
      this.manifests?.delete(digest)
    }
    if (digests.length === 0 || this.shared?.announce === undefined) return
    try {
      await this.shared.announce(BLOBS_REMOVED, digests.join('\n'))
    } catch (error) {
      this.log?.warn({ err: error, blobs: digests.length }, 'could not announce removed blobs to other processes')
    }
  }

  /** Drops a manifest from memory (its last revision was deleted). */
  forgetManifest (digest: string): void {
    this.manifests?.delete(digest)
  }

  async close (): Promise<void> {
    this.manifests?.clear()
    this.blobSizes?.clear()
    await this.shared?.close()
  }
}

/** Cache keys, in one place. */
export const cacheKeys = {
  link: (name: string, digest: string): string => `link:${name}:${digest}`,
  tag: (name: string, tag: string): string => `tag:${name}:${tag}`,
  revision: (name: string, digest: string): string => `revision:${name}:${digest}`
}
