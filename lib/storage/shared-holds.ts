/**
 * Blob holds shared through storage, for processes that serve one storage while one of them
 * collects garbage. Each side writes its intent, then reads the other's:
 *
 * - a change (a manifest PUT, an upload's completion, a mount) writes a hold naming its blobs,
 *   then lists the removals in progress; while one names a blob it holds, it waits for that
 *   removal to end (and then finds the blob gone, or not);
 * - a collection writes a removal naming the blobs it is about to remove, then lists the holds;
 *   a blob a hold names is kept.
 *
 * On storage that reads its own and others' writes at once (a file system; S3 since 2020), at
 * least one side sees the other, so a change never commits naming a blob removed meanwhile.
 * Records older than `staleMs` (of a process that died) are ignored.
 */

import { randomUUID } from 'node:crypto'
import { isPathNotFound, type StorageDriver } from './driver.js'
import { pathFor } from './paths.js'

interface UseRecord {
  digests: string[]
  time: number
}

export interface SharedHoldsOptions {
  /** Records older than this are a dead process's, ignored (default 10 minutes). */
  staleMs?: number
  /** How often a change waiting for a removal looks again (default 25 ms). */
  pollMs?: number
}

export class SharedHolds {
  private readonly staleMs: number
  private readonly pollMs: number

  constructor (private readonly driver: StorageDriver, options: SharedHoldsOptions = {}) {
    this.staleMs = options.staleMs ?? 600_000
    this.pollMs = options.pollMs ?? 25
  }

  private async records (root: string): Promise<Array<{ path: string, record: UseRecord }>> {
    let paths: string[]
    try {
      paths = await this.driver.list(root)
    } catch (error) {
      if (isPathNotFound(error)) return []
      throw error
    }
    const found: Array<{ path: string, record: UseRecord }> = []
    for (const path of paths) {
      try {
        const record = JSON.parse((await this.driver.getContent(path)).toString('utf8')) as UseRecord
        if (Array.isArray(record.digests) && typeof record.time === 'number' && Date.now() - record.time < this.staleMs) found.push({ path, record })
      } catch (error) {
        // Removed since the listing (its change ended), or torn: not a record.
        if (!isPathNotFound(error) && !(error instanceof SyntaxError)) throw error
      }
    }
    return found
  }

  private async write (path: string, digests: readonly string[]): Promise<() => Promise<void>> {
    const record: UseRecord = { digests: [...digests], time: Date.now() }
    await this.driver.putContent(path, JSON.stringify(record))
    return async () => {
      try {
        await this.driver.delete(path)
      } catch (error) {
        if (!isPathNotFound(error)) throw error
      }
    }
  }

  /** Announces a hold on blobs, once no removal names them; resolves to what ends it. */
  async hold (digests: readonly string[]): Promise<() => Promise<void>> {
    const release = await this.write(pathFor({ kind: 'blobHold', id: randomUUID() }), digests)
    const wanted = new Set(digests)
    try {
      for (;;) {
        const removals = await this.records(pathFor({ kind: 'blobRemovalsRoot' }))
        if (!removals.some(({ record }) => record.digests.some((digest) => wanted.has(digest)))) return release
        await new Promise((resolve) => setTimeout(resolve, this.pollMs))
      }
    } catch (error) {
      await release().catch(() => {})
      throw error
    }
  }

  /**
   * Announces the removal of blobs; resolves to those some process holds (to keep) and what
   * ends the removal.
   */
  async beginRemoval (digests: readonly string[]): Promise<{ held: Set<string>, end: () => Promise<void> }> {
    const end = await this.write(pathFor({ kind: 'blobRemoval', id: randomUUID() }), digests)
    try {
      const candidates = new Set(digests)
      const held = new Set<string>()
      for (const { record } of await this.records(pathFor({ kind: 'blobHoldsRoot' }))) {
        for (const digest of record.digests) if (candidates.has(digest)) held.add(digest)
      }
      return { held, end }
    } catch (error) {
      await end().catch(() => {})
      throw error
    }
  }
}
