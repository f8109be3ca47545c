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
 * A change that ended between the collection's mark and its removal is seen too: an ended hold
 * is moved to `released/<time>-<id>`, which a collection reads as touched when `<time>` is
 * after its start (less a margin for clocks), and drops once older than its start.
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
    return async () => { await this.remove(path) }
  }

  private async remove (path: string): Promise<void> {
    try {
      await this.driver.delete(path)
    } catch (error) {
      if (!isPathNotFound(error)) throw error
    }
  }

  /** Announces a hold on blobs, once no removal names them; resolves to what ends it. */
  async hold (digests: readonly string[]): Promise<() => Promise<void>> {
    const id = randomUUID()
    const path = pathFor({ kind: 'blobHold', id })
    const drop = await this.write(path, digests)
    // Ended, the hold stays visible to a collection that started before it ended.
    const release = async (): Promise<void> => {
      try {
        await this.driver.move(path, pathFor({ kind: 'blobReleased', time: Date.now(), id }))
      } catch (error) {
        if (!isPathNotFound(error)) throw error
      }
    }
    const wanted = new Set(digests)
    try {
      for (;;) {
        const removals = await this.records(pathFor({ kind: 'blobRemovalsRoot' }))
        if (!removals.some(({ record }) => record.digests.some((digest) => wanted.has(digest)))) return release
        await new Promise((resolve) => setTimeout(resolve, this.pollMs))
      }
    } catch (error) {
      await drop().catch(() => {})
      throw error
    }
  }

  /** A collection's view of the holds, from its start: see `beginRemoval`. */
  session (startedAt: number): RemovalSession {
    return new RemovalSession(this, startedAt)
  }

  /** Blobs named by holds that ended at or after `since`, reading each record once into `seen`. */
  async releasedSince (since: number, seen: Map<string, string[]>): Promise<Set<string>> {
    let paths: string[]
    try {
      paths = await this.driver.list(pathFor({ kind: 'blobReleasedRoot' }))
    } catch (error) {
      if (isPathNotFound(error)) return new Set()
      throw error
    }
    for (const path of paths) {
      if (seen.has(path) || releaseTime(path) < since) continue
      try {
        const record = JSON.parse((await this.driver.getContent(path)).toString('utf8')) as UseRecord
        seen.set(path, Array.isArray(record.digests) ? record.digests : [])
      } catch (error) {
        if (!isPathNotFound(error) && !(error instanceof SyntaxError)) throw error
        seen.set(path, [])
      }
    }
    return new Set([...seen.values()].flat())
  }

  /** Removes the records of holds that ended before `before`. */
  async dropReleasedBefore (before: number): Promise<void> {
    let paths: string[]
    try {
      paths = await this.driver.list(pathFor({ kind: 'blobReleasedRoot' }))
    } catch (error) {
      if (isPathNotFound(error)) return
      throw error
    }
    for (const path of paths) if (releaseTime(path) < before) await this.remove(path)
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

/** When a released record's hold ended, from its name (`<time>-<id>`). */
function releaseTime (path: string): number {
  const name = path.slice(path.lastIndexOf('/') + 1)
  const time = Number(name.slice(0, name.indexOf('-')))
  return Number.isFinite(time) ? time : 0
}

/** Clocks of the processes may differ by this much. */
const CLOCK_MARGIN_MS = 5000

/** One collection's removals: holds held now, or ended since it started, keep their blobs. */
export class RemovalSession {
  private readonly seen = new Map<string, string[]>()

  constructor (private readonly holds: SharedHolds, private readonly startedAt: number) {}

  async beginRemoval (digests: readonly string[]): Promise<{ held: Set<string>, end: () => Promise<void> }> {
    const removal = await this.holds.beginRemoval(digests)
    try {
      const ended = await this.holds.releasedSince(this.startedAt - CLOCK_MARGIN_MS, this.seen)
      for (const digest of digests) if (ended.has(digest)) removal.held.add(digest)
      return removal
    } catch (error) {
      await removal.end().catch(() => {})
      throw error
    }
  }

  /** Drops the records this collection no longer needs: holds that ended before it started. */
  async finish (): Promise<void> {
    await this.holds.dropReleasedBefore(this.startedAt - CLOCK_MARGIN_MS)
  }
}
