/**
 * Blob stores. The global store holds content once, addressed by digest; a repository sees a
 * blob only through its own link (the linked store), so content is never readable across
 * repositories without one. Storage returns descriptors and streams; HTTP is the plugin's job.
 */

import type { Readable } from 'node:stream'
import { RegistryError } from '../errors.js'
import { parseDigest } from '../digest.js'
import { isPathNotFound, type StorageDriver } from './driver.js'
import { digestParts, pathFor } from './paths.js'
import { cacheKeys, RegistryCache } from './cache.js'

export interface BlobDescriptor {
  digest: string
  size: number
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number
  /** Last byte, inclusive. */
  end: number
}

/** Content-addressed blobs shared by every repository. */
export class BlobStore {
  constructor (readonly driver: StorageDriver, readonly cache: RegistryCache = new RegistryCache({ manifestBytes: 0 })) {}

  dataPath (digest: string): string {
    return pathFor({ kind: 'blobData', ...digestParts(digest) })
  }

  /** The blob's descriptor, or undefined when the registry does not hold it; cached once found. */
  async stat (digest: string): Promise<BlobDescriptor | undefined> {
    const size = await this.cache.blobSize(digest, async () => await this.storedSize(digest))
    return size === undefined ? undefined : { digest, size: Number(size) }
  }

  /** Whether storage holds the blob, asked of storage itself: for writes that rely on the answer. */
  async isStored (digest: string): Promise<boolean> {
    return await this.storedSize(digest) !== undefined
  }

  private async storedSize (digest: string): Promise<string | undefined> {
    try {
      const info = await this.driver.stat(this.dataPath(digest))
      return info.isDir ? undefined : String(info.size)
    } catch (error) {
      if (isPathNotFound(error)) return undefined
      throw error
    }
  }

  async open (digest: string, range?: ByteRange): Promise<Readable> {
    const options = range === undefined ? {} : { offset: range.start, length: range.end - range.start + 1 }
    try {
      return await this.driver.reader(this.dataPath(digest), options)
    } catch (error) {
      if (isPathNotFound(error)) {
        this.cache.forgetBlob(digest)
        throw new RegistryError('BLOB_UNKNOWN', { digest })
      }
      throw error
    }
  }

  async getContent (digest: string): Promise<Buffer> {
    try {
      return await this.driver.getContent(this.dataPath(digest))
    } catch (error) {
      if (isPathNotFound(error)) throw new RegistryError('BLOB_UNKNOWN', { digest })
      throw error
    }
  }

  /** Stores small content (a manifest) under its digest; atomic, idempotent. */
  async putContent (digest: string, content: Uint8Array): Promise<void> {
    await this.driver.putContent(this.dataPath(digest), content)
  }

  /**
   * Publishes a finished upload's data file as the blob. When the blob exists already the
   * upload's copy is simply dropped by the caller; the move is an atomic replace either way.
   */
  async publish (digest: string, sourcePath: string): Promise<void> {
    await this.driver.move(sourcePath, this.dataPath(digest))
  }

  /** `url` of a direct download, when the driver offers redirects. */
  async redirectURL (digest: string): Promise<string | undefined> {
    return await this.driver.redirectURL?.(this.dataPath(digest))
  }
}

/** The blobs one repository links to. */
export class LinkedBlobStore {
  constructor (readonly blobs: BlobStore, readonly driver: StorageDriver, readonly name: string) {}

  private linkPath (digest: string): string {
    return pathFor({ kind: 'layerLink', name: this.name, ...digestParts(digest) })
  }

  /** The descriptor of a blob linked here, or undefined (no link, or the content is gone). */
  async stat (digest: string): Promise<BlobDescriptor | undefined> {
    parseDigest(digest)
    // Both at once: a HEAD or GET waits for one trip to storage (or the cache) instead of two.
    const [linked, descriptor] = await Promise.all([
      this.blobs.cache.lookup(cacheKeys.link(this.name, digest), async () => await this.hasLink(digest) ? '1' : undefined),
      this.blobs.stat(digest)
    ])
    return linked === undefined ? undefined : descriptor
  }

  /** Like stat, but BLOB_UNKNOWN when absent. */
  async get (digest: string): Promise<BlobDescriptor> {
    const descriptor = await this.stat(digest)
    if (descriptor === undefined) throw new RegistryError('BLOB_UNKNOWN', { digest })
    return descriptor
  }

  /**
   * Whether the repository links the blob and its data is stored, both asked of storage itself:
   * for writes that rely on the answer (a manifest's references, a mount's source).
   */
  async isStoredHere (digest: string): Promise<boolean> {
    const [linked, stored] = await Promise.all([this.hasLink(digest), this.blobs.isStored(digest)])
    return linked && stored
  }

  async hasLink (digest: string): Promise<boolean> {
    try {
      const info = await this.driver.stat(this.linkPath(digest))
      return !info.isDir
    } catch (error) {
      if (isPathNotFound(error)) return false
      throw error
    }
  }

  /** Makes a blob visible in this repository. */
  async link (digest: string): Promise<void> {
    await this.driver.putContent(this.linkPath(digest), digest)
  }

  /** Removes the repository's link; BLOB_UNKNOWN when it had none. */
  async unlink (digest: string): Promise<void> {
    parseDigest(digest)
    await this.blobs.cache.invalidate(cacheKeys.link(this.name, digest))
    try {
      await this.driver.delete(pathFor({ kind: 'layer', name: this.name, ...digestParts(digest) }))
    } catch (error) {
      if (isPathNotFound(error)) throw new RegistryError('BLOB_UNKNOWN', { digest })
      throw error
    }
  }

  async open (digest: string, range?: ByteRange): Promise<Readable> {
    return await this.blobs.open(digest, range)
  }
}
