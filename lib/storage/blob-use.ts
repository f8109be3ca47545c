/**
 * Blobs in use by the write path and the reads that lead to a push, for anyone who must not
 * remove a blob from under them (a garbage collection):
 *
 * - a *touch* says a client asked about a blob (a HEAD before deciding not to upload it);
 * - a *hold* touches blobs and keeps them held while a change that relies on them is checked
 *   and committed (a manifest PUT from its reference check to its commit, an upload's
 *   completion, a mount), so that removing one of them waits for the change, or the change
 *   waits for the removal and then finds the blob gone;
 * - `exclusive` runs a removal of one blob while nothing holds it, and holds back new holds.
 *
 * In process, and, once `share` is called, across the processes serving one storage through
 * records in it (./shared-holds.ts; touches stay in process). Without listeners a touch costs
 * nothing and an unshared hold one map entry per blob.
 */

import type { SharedHolds } from './shared-holds.js'

export type TouchListener = (digests: readonly string[]) => void

export class BlobUse {
  private listeners: readonly TouchListener[] = []
  /** How many holds each blob has now. */
  private readonly holds = new Map<string, number>()
  /** Blobs being removed now. */
  private readonly removing = new Set<string>()
  /** Woken on every release, so that waiters look again. */
  private waiters: Array<() => void> = []
  private sharedHolds: SharedHolds | undefined

  /** Holds are announced to, and removals checked against, other processes on the same storage. */
  share (holds: SharedHolds): void {
    this.sharedHolds = holds
  }

  get shared (): SharedHolds | undefined {
    return this.sharedHolds
  }

  /** Calls `listener` with every blob touched or held from now on; returns what removes it. */
  onTouch (listener: TouchListener): () => void {
    this.listeners = [...this.listeners, listener]
    return () => { this.listeners = this.listeners.filter((kept) => kept !== listener) }
  }

  /** A client asked about these blobs. */
  touch (...digests: string[]): void {
    for (const listener of this.listeners) listener(digests)
  }

  /** Blobs held now: a collector starting treats them as touched. */
  held (): string[] {
    return [...this.holds.keys()]
  }

  /**
   * Touches blobs and holds them until the returned function is called; waits first for any
   * removal of one of them to finish.
   */
  async hold (digests: readonly string[]): Promise<() => void> {
    const unique = [...new Set(digests)]
    this.touch(...unique)
    while (unique.some((digest) => this.removing.has(digest))) await this.changed()
    for (const digest of unique) this.holds.set(digest, (this.holds.get(digest) ?? 0) + 1)
    let released = false
    const releaseHere = (): void => {
      if (released) return
      released = true
      for (const digest of unique) {
        const count = (this.holds.get(digest) ?? 1) - 1
        if (count === 0) this.holds.delete(digest)
        else this.holds.set(digest, count)
      }
      this.wake()
    }
    if (this.sharedHolds === undefined || unique.length === 0) return releaseHere
    let releaseShared: () => Promise<void>
    try {
      releaseShared = await this.sharedHolds.hold(unique)
    } catch (error) {
      releaseHere()
      throw error
    }
    return () => {
      if (released) return
      releaseHere()
      // A record left behind only keeps blobs longer, until it is stale.
      releaseShared().catch(() => {})
    }
  }

  /** Runs `removal` once no hold is on the blob; holds asked for meanwhile wait for it. */
  async exclusive<T> (digest: string, removal: () => Promise<T>): Promise<T> {
    while (this.removing.has(digest) || this.holds.has(digest)) await this.changed()
    this.removing.add(digest)
    try {
      return await removal()
    } finally {
      this.removing.delete(digest)
      this.wake()
    }
  }

  private async changed (): Promise<void> {
    await new Promise<void>((resolve) => { this.waiters.push(resolve) })
  }

  private wake (): void {
    const waiting = this.waiters
    this.waiters = []
    for (const resolve of waiting) resolve()
  }
}
