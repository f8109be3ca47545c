/**
 * The durable outbox of the notifications: each endpoint's events, kept in storage (outside
 * distribution's tree, where the path mapper puts them), or in Redis (redis-outbox.ts), from before the request that caused
 * them answers until the endpoint has taken them, so that a crash or a restart loses none.
 *
 * One small file per event, named by a key that sorts in the order the events were appended
 * (time, then a counter, then the process's id): a driver's sorted listing is the queue. An event
 * given up on moves to the endpoint's dead letters, whence an operator replays it. A lease file
 * says which process delivers an endpoint's events, so that replicas sharing the storage do not
 * send them twice or out of order.
 */

import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import type { StorageDriver } from '../storage/driver.js'
import { isPathNotFound } from '../storage/driver.js'
import { pathFor } from '../storage/paths.js'
import type { OutboxEvent } from './envelope.js'

export interface OutboxEntry extends OutboxEvent {
  /** Where the entry sorts in its endpoint's queue. */
  key: string
}

export interface DeadLetter extends OutboxEntry {
  attempts: number
  lastError: string
  /** ISO 8601 time it was given up on. */
  deadAt: string
}

/** Who delivers an endpoint's events, until when. */
export interface Lease {
  owner: string
  host: string
  pid: number
  /** Milliseconds since the epoch. */
  expires: number
}

export interface OutboxStore {
  /** Appends events to an endpoint's queue, in the order given. */
  append: (endpoint: string, events: readonly OutboxEvent[]) => Promise<void>
  /** The oldest entries of an endpoint's queue, at most `limit`, oldest first. */
  pending: (endpoint: string, limit: number) => Promise<OutboxEntry[]>
  /** Removes a delivered entry. */
  remove: (endpoint: string, key: string) => Promise<void>
  /** Moves an entry to the endpoint's dead letters. */
  bury: (endpoint: string, letter: DeadLetter) => Promise<void>
  deadLetters: (endpoint: string) => Promise<DeadLetter[]>
  /** Moves dead letters back into the queue (all, or those of the given event ids); returns how many. */
  replay: (endpoint: string, ids?: ReadonlySet<string>) => Promise<number>
  /** Takes or renews the endpoint's lease for `owner`; false while another live process holds it. */
  acquire: (endpoint: string, owner: string, ttlMs: number) => Promise<boolean>
  /** Gives the lease up, if `owner` holds it. */
  release: (endpoint: string, owner: string) => Promise<void>
  /** Closes connections the store opened. */
  close?: () => Promise<void>
}

/** Keys that sort in append order within a process, and by time across processes. */
export class KeyClock {
  private lastTime = 0
  private counter = 0
  readonly instance = randomBytes(4).toString('hex')

  next (): string {
    // Never backwards, even when the wall clock is set back.
    const now = Math.max(Date.now(), this.lastTime)
    this.counter = now === this.lastTime ? this.counter + 1 : 0
    this.lastTime = now
    return `${String(now).padStart(15, '0')}-${String(this.counter).padStart(9, '0')}-${this.instance}`
  }
}

/** Whether a process of this host is still running (a lease of a dead one is free at once). */
function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it runs, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The lease of another process that may be taken now: expired, or of a dead process of this host. */
export function leaseIsFree (lease: Lease | undefined, owner: string, now: number, host = hostname()): boolean {
  if (lease === undefined || lease.owner === owner || lease.expires <= now) return true
  return lease.host === host && lease.pid !== process.pid && !isAlive(lease.pid)
}

function baseName (path: string): string {
  return path.slice(path.lastIndexOf('/') + 1)
}

async function listNames (driver: StorageDriver, path: string): Promise<string[]> {
  try {
    return (await driver.list(path)).map(baseName).sort()
  } catch (error) {
    if (isPathNotFound(error)) return []
    throw error
  }
}

async function readJson<T> (driver: StorageDriver, path: string): Promise<T | undefined> {
  try {
    return JSON.parse((await driver.getContent(path)).toString('utf8')) as T
  } catch (error) {
    // Gone meanwhile (delivered by the lease's previous holder): nothing to read.
    if (isPathNotFound(error)) return undefined
    throw error
  }
}

async function deleteIfPresent (driver: StorageDriver, path: string): Promise<void> {
  try {
    await driver.delete(path)
  } catch (error) {
    if (!isPathNotFound(error)) throw error
  }
}

export class StorageOutbox implements OutboxStore {
  private readonly clock = new KeyClock()

  constructor (private readonly driver: StorageDriver) {}

  async append (endpoint: string, events: readonly OutboxEvent[]): Promise<void> {
    // Keys are taken before any write: the order is the order given, whatever the writes' timing.
    const entries = events.map((event): OutboxEntry => ({ key: this.clock.next(), ...event }))
    for (const entry of entries) {
      await this.driver.putContent(pathFor({ kind: 'notificationEntry', endpoint, key: entry.key }), JSON.stringify(entry))
    }
  }

  async pending (endpoint: string, limit: number): Promise<OutboxEntry[]> {
    const keys = (await listNames(this.driver, pathFor({ kind: 'notificationOutbox', endpoint }))).slice(0, limit)
    const entries: OutboxEntry[] = []
    for (const key of keys) {
      const entry = await readJson<OutboxEntry>(this.driver, pathFor({ kind: 'notificationEntry', endpoint, key }))
      if (entry !== undefined) entries.push({ ...entry, key })
    }
    return entries
  }

  async remove (endpoint: string, key: string): Promise<void> {
    await deleteIfPresent(this.driver, pathFor({ kind: 'notificationEntry', endpoint, key }))
  }

  async bury (endpoint: string, letter: DeadLetter): Promise<void> {
    await this.driver.putContent(pathFor({ kind: 'notificationDeadLetter', endpoint, key: letter.key }), JSON.stringify(letter))
    await this.remove(endpoint, letter.key)
  }

  async deadLetters (endpoint: string): Promise<DeadLetter[]> {
    const letters: DeadLetter[] = []
    for (const key of await listNames(this.driver, pathFor({ kind: 'notificationDeadLetters', endpoint }))) {
      const letter = await readJson<DeadLetter>(this.driver, pathFor({ kind: 'notificationDeadLetter', endpoint, key }))
      if (letter !== undefined) letters.push({ ...letter, key })
    }
    return letters
  }

  async replay (endpoint: string, ids?: ReadonlySet<string>): Promise<number> {
    let replayed = 0
    for (const letter of await this.deadLetters(endpoint)) {
      if (ids !== undefined && !ids.has(letter.event.id)) continue
      // Back at the end of the queue, with a new key: events appended since keep their order.
      await this.append(endpoint, [{ type: letter.type, event: letter.event }])
      await deleteIfPresent(this.driver, pathFor({ kind: 'notificationDeadLetter', endpoint, key: letter.key }))
      replayed++
    }
    return replayed
  }

  async acquire (endpoint: string, owner: string, ttlMs: number): Promise<boolean> {
    const path = pathFor({ kind: 'notificationLease', endpoint })
    const now = Date.now()
    if (!leaseIsFree(await readJson<Lease>(this.driver, path), owner, now)) return false
    const lease: Lease = { owner, host: hostname(), pid: process.pid, expires: now + ttlMs }
    await this.driver.putContent(path, JSON.stringify(lease))
    // Two processes may both have found it free: the last write wins, and each reads which.
    return (await readJson<Lease>(this.driver, path))?.owner === owner
  }

  async release (endpoint: string, owner: string): Promise<void> {
    const path = pathFor({ kind: 'notificationLease', endpoint })
    if ((await readJson<Lease>(this.driver, path))?.owner === owner) await deleteIfPresent(this.driver, path)
  }
}
