/**
 * Leases: one replica at a time runs a store-wide task (a collection). A lease has an owner and
 * an expiry; its holder renews it while the task runs, so a replica that dies frees it after
 * the expiry. Through Redis when the replicas share one (atomic), else as a small object in
 * storage (last writer wins, then each checks it reads its own name back after a pause longer
 * than a write takes: good enough for tasks started on a schedule, not a consensus protocol).
 */

import { randomUUID } from 'node:crypto'
import { isPathNotFound, type StorageDriver } from '../storage/driver.js'
import { pathFor } from '../storage/paths.js'

export interface Lease {
  /** Takes the lease; false when another owner holds it. Renewed until `release`. */
  acquire: () => Promise<boolean>
  release: () => Promise<void>
}

/** The atomic commands a lease needs of Redis (written over ioredis by the plugin). */
export interface LeaseCommands {
  /** SET key value PX ttl NX: true when set. */
  setIfAbsent: (key: string, value: string, ttlMs: number) => Promise<boolean>
  /** Extends the key's expiry if it still holds `value`: true when it did. */
  extendIfHeld: (key: string, value: string, ttlMs: number) => Promise<boolean>
  /** Deletes the key if it still holds `value`. */
  deleteIfHeld: (key: string, value: string) => Promise<void>
}

export interface LeaseOptions {
  /** Lifetime without renewal, in ms (default 60 s); renewed every third of it. */
  ttlMs?: number
  /** Who holds it, for people reading the lease (default a random id). */
  owner?: string
}

const DEFAULT_TTL_MS = 60_000

abstract class RenewedLease implements Lease {
  protected readonly ttlMs: number
  protected readonly owner: string
  private timer: NodeJS.Timeout | undefined

  constructor (options: LeaseOptions) {
    this.ttlMs = options.ttlMs ?? DEFAULT_TTL_MS
    this.owner = `${options.owner ?? 'registry'}/${randomUUID()}`
  }

  protected abstract take (): Promise<boolean>
  protected abstract renew (): Promise<void>
  protected abstract drop (): Promise<void>

  async acquire (): Promise<boolean> {
    if (!await this.take()) return false
    this.timer = setInterval(() => { this.renew().catch(() => {}) }, Math.max(1, Math.floor(this.ttlMs / 3))).unref()
    return true
  }

  async release (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    await this.drop()
  }
}

/** A lease held as a Redis key shared by every replica. */
export class RedisLease extends RenewedLease {
  constructor (private readonly commands: LeaseCommands, private readonly key: string, options: LeaseOptions = {}) {
    super(options)
  }

  protected async take (): Promise<boolean> {
    return await this.commands.setIfAbsent(this.key, this.owner, this.ttlMs)
  }

  protected async renew (): Promise<void> {
    await this.commands.extendIfHeld(this.key, this.owner, this.ttlMs)
  }

  protected async drop (): Promise<void> {
    await this.commands.deleteIfHeld(this.key, this.owner)
  }
}

interface LeaseRecord {
  owner: string
  expiresAt: number
}

/** A lease held as a small object in storage (`_oci/leases/<task>`), for replicas without Redis. */
export class StorageLease extends RenewedLease {
  private readonly path: string

  constructor (private readonly driver: StorageDriver, task: string, options: LeaseOptions & { settleMs?: number } = {}) {
    super(options)
    this.path = pathFor({ kind: 'lease', task })
    this.settleMs = options.settleMs ?? 500
  }

  private readonly settleMs: number

  private async read (): Promise<LeaseRecord | undefined> {
    try {
      const record = JSON.parse((await this.driver.getContent(this.path)).toString('utf8')) as Partial<LeaseRecord>
      return typeof record.owner === 'string' && typeof record.expiresAt === 'number' ? { owner: record.owner, expiresAt: record.expiresAt } : undefined
    } catch (error) {
      // Absent, or unreadable (torn by hand): free either way.
      if (isPathNotFound(error) || error instanceof SyntaxError) return undefined
      throw error
    }
  }

  private async write (): Promise<void> {
    const record: LeaseRecord = { owner: this.owner, expiresAt: Date.now() + this.ttlMs }
    await this.driver.putContent(this.path, JSON.stringify(record))
  }

  protected async take (): Promise<boolean> {
    const current = await this.read()
    if (current !== undefined && current.owner !== this.owner && current.expiresAt > Date.now()) return false
    await this.write()
    // Two replicas that both found it free both wrote: the last write stands, and only its
    // writer reads its own name back once both writes have landed.
    await new Promise((resolve) => setTimeout(resolve, this.settleMs))
    return (await this.read())?.owner === this.owner
  }

  protected async renew (): Promise<void> {
    if ((await this.read())?.owner === this.owner) await this.write()
  }

  protected async drop (): Promise<void> {
    if ((await this.read())?.owner !== this.owner) return
    try {
      await this.driver.delete(this.path)
    } catch (error) {
      if (!isPathNotFound(error)) throw error
    }
  }
}
