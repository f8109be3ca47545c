/**
 * Caches in front of storage, used by the services (blob, tag and manifest stores) and nowhere
 * else. Storage stays the truth: a cache only saves round trips to it.
 *
 * - In-process, by default: LRUs of immutable facts. Manifests by digest with their media type,
 *   and blob sizes by digest: the bytes under a digest never change, and the registry never
 *   removes a blob's data (only an offline garbage collection would), so there is nothing to
 *   invalidate. Whether a repository holds a manifest or links a blob is still checked on every
 *   read. Writes (publishing an upload, a mount) look at storage itself.
 * - Shared, optional: Redis (redis-store.ts), for lookups that change (a tag's digest, a blob linked into a
 *   repository, a manifest revision), read and invalidated by every replica alike. Only facts
 *   found in storage are cached. A write first replaces the key with a short-lived tombstone,
 *   and fills never overwrite (`SET NX`): a replica that read storage just before the write
 *   cannot put the old value back. Reads fall back to storage when Redis is unreachable; a
 *   write that cannot invalidate fails (UNAVAILABLE) rather than leave replicas stale.
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
  close: () => Promise<void>
}

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

export interface RegistryCacheOptions {
  /** The shared cache; without it, lookups go to storage every time. */
  shared?: SharedStore
  /** Lifetime of a shared entry, in seconds (default 3,600). */
  ttlSeconds?: number
  /** Bytes of manifests kept in process memory (default 16 MiB; 0 disables). */
  manifestBytes?: number
  log?: CacheLogger
}

export class RegistryCache {
  private readonly shared: SharedStore | undefined
  private readonly ttlSeconds: number
  private readonly manifests: LRUCache<string, CachedManifest> | undefined
  private readonly blobSizes = new LRUCache<string, string>({ max: BLOB_SIZES_KEPT })
  private readonly log: CacheLogger | undefined

  constructor (options: RegistryCacheOptions = {}) {
    this.shared = options.shared
    this.ttlSeconds = options.ttlSeconds ?? 3600
    this.log = options.log
    const bytes = options.manifestBytes ?? 16 * 1024 * 1024
    // One large index must not push out everything else: entries above an eighth are not kept.
    this.manifests = bytes > 0
      ? new LRUCache<string, CachedManifest>({ maxSize: bytes, maxEntrySize: Math.max(1, Math.floor(bytes / 8)), sizeCalculation: (value) => Math.max(1, value.content.byteLength) })
      : undefined
  }

  /** The value of a mutable lookup: from the shared cache, else loaded from storage and cached. */
  async lookup (key: string, load: () => Promise<string | undefined>): Promise<string | undefined> {
    const shared = this.shared
    if (shared === undefined) return await load()
    let cached: string | null = null
    try {
      cached = await shared.get(key)
    } catch {
      return await load()
    }
    if (cached !== null && cached !== TOMBSTONE) return cached
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
    if (cached !== undefined) return cached
    const manifest = await load()
    this.manifests?.set(digest, manifest)
    return manifest
  }

  /** A blob's size by digest (as a decimal string), from memory when seen before, else a lookup. */
  async blobSize (digest: string, load: () => Promise<string | undefined>): Promise<string | undefined> {
    const known = this.blobSizes.get(digest)
    if (known !== undefined) return known
    const size = await this.lookup(cacheKeys.blob(digest), load)
    if (size !== undefined) this.blobSizes.set(digest, size)
    return size
  }

  /** Drops a blob's size from memory: its data was found missing (removed behind the registry's back). */
  forgetBlob (digest: string): void {
    this.blobSizes.delete(digest)
  }

  /** Drops a manifest from memory (its last revision was deleted). */
  forgetManifest (digest: string): void {
    this.manifests?.delete(digest)
  }

  async close (): Promise<void> {
    this.manifests?.clear()
    this.blobSizes.clear()
    await this.shared?.close()
  }
}

/** Cache keys, in one place. */
export const cacheKeys = {
  blob: (digest: string): string => `blob:${digest}`,
  link: (name: string, digest: string): string => `link:${name}:${digest}`,
  tag: (name: string, tag: string): string => `tag:${name}:${tag}`,
  revision: (name: string, digest: string): string => `revision:${name}:${digest}`
}
