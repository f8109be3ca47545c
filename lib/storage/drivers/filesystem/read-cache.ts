/**
 * The filesystem driver's in-process cache of small files and directory listings. It is never
 * stale, whichever process changes the tree: every use revalidates an entry with one `stat`.
 */

import type { Stats } from 'node:fs'

export interface ReadCacheOptions {
  /** Bytes of file content kept, at most (default 16 MiB). */
  maxBytes: number
  /** Largest file kept (default 256 KiB): links, manifests, upload start times. */
  maxFileBytes: number
  /** Directory entries kept, at most, all listings together (default 50,000). */
  maxNames: number
  /**
   * A file or directory changed less than this long ago (default 2 s) is not cached: timestamps
   * tick coarsely, so two changes inside one tick could otherwise look alike.
   */
  settleMs: number
}

export const CACHE_DEFAULTS: ReadCacheOptions = { maxBytes: 16 * 1024 * 1024, maxFileBytes: 256 * 1024, maxNames: 50_000, settleMs: 2000 }

/** What identifies one version of a file or directory: any write, rename over or entry change alters it. */
interface Identity {
  ino: number
  size: number
  mtimeMs: number
  ctimeMs: number
}

function identityOf (info: Stats): Identity {
  return { ino: info.ino, size: info.size, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs }
}

/** A directory's visible children: names, and full driver paths (kept, not rebuilt per call). */
export interface Listing {
  names: string[]
  paths: string[]
}

function sameIdentity (a: Identity, b: Identity): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs
}

/**
 * Small files and directory listings by host path, each with the identity it was read under. A
 * hit costs one `stat` instead of open, stat, read and close (or a readdir of a thousand tags).
 * Entries are revalidated, never invalidated: files are replaced by rename (a new inode) and a
 * directory's times change with its entries, so a changed path no longer matches. Least recently
 * used entries go first when a bound is reached.
 */
export class ReadCache {
  private readonly files = new Map<string, { identity: Identity, content: Buffer }>()
  private readonly lists = new Map<string, { identity: Identity, listing: Listing }>()
  private bytes = 0
  private names = 0

  constructor (readonly options: ReadCacheOptions) {}

  /** Whether something read under `info` may be kept: it has not changed for a while. */
  settled (info: Stats): boolean {
    return Date.now() - Math.max(info.mtimeMs, info.ctimeMs) >= this.options.settleMs
  }

  file (full: string, info: Stats): Buffer | undefined {
    const entry = this.files.get(full)
    if (entry === undefined) return undefined
    this.files.delete(full)
    if (!sameIdentity(entry.identity, identityOf(info))) {
      this.bytes -= entry.content.length
      return undefined
    }
    this.files.set(full, entry)
    return entry.content
  }

  keepFile (full: string, info: Stats, content: Buffer): void {
    if (content.length > this.options.maxFileBytes || !this.settled(info)) return
    const old = this.files.get(full)
    if (old !== undefined) this.bytes -= old.content.length
    this.files.delete(full)
    this.files.set(full, { identity: identityOf(info), content })
    this.bytes += content.length
    for (const [key, entry] of this.files) {
      if (this.bytes <= this.options.maxBytes) break
      this.files.delete(key)
      this.bytes -= entry.content.length
    }
  }

  list (full: string, info: Stats): Listing | undefined {
    const entry = this.lists.get(full)
    if (entry === undefined) return undefined
    this.lists.delete(full)
    if (!sameIdentity(entry.identity, identityOf(info))) {
      this.names -= entry.listing.names.length
      return undefined
    }
    this.lists.set(full, entry)
    return entry.listing
  }

  keepList (full: string, info: Stats, listing: Listing): void {
    const count = listing.names.length
    if (count > this.options.maxNames || !this.settled(info)) return
    const old = this.lists.get(full)
    if (old !== undefined) this.names -= old.listing.names.length
    this.lists.delete(full)
    this.lists.set(full, { identity: identityOf(info), listing })
    this.names += count
    for (const [key, entry] of this.lists) {
      if (this.names <= this.options.maxNames) break
      this.lists.delete(key)
      this.names -= entry.listing.names.length
    }
  }
}
