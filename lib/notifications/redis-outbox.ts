/**
 * The notifications' outbox in Redis, used when `cache.redis` is configured: the replicas share
 * it without touching storage. Per endpoint, a sorted set orders the keys (all of score 0, so
 * by the keys themselves, which sort in append order) and a hash holds the entries; dead
 * letters likewise; the lease is a key that expires. Each change is one MULTI: an entry is in
 * the queue and its hash, or in neither. Loaded only when configured (ioredis is optional).
 */

import { hostname } from 'node:os'
import { Redis } from 'ioredis'
import type { OutboxEvent } from './envelope.js'
import { KeyClock, leaseIsFree, type DeadLetter, type Lease, type OutboxEntry, type OutboxStore } from './outbox.js'

export class RedisOutbox implements OutboxStore {
  private readonly redis: Redis
  private readonly clock = new KeyClock()

  constructor (url: string, private readonly keyPrefix: string) {
    // Appends wait for a connection, but not long: a push is never held by an absent Redis.
    this.redis = new Redis(url, { maxRetriesPerRequest: 1, commandTimeout: 2000, connectTimeout: 2000 })
    // Failures surface on the commands (logged by the service); ioredis reports every reconnection too.
    this.redis.on('error', () => {})
  }

  private key (endpoint: string, part: 'outbox' | 'entries' | 'deadletters' | 'dead' | 'lease'): string {
    return `${this.keyPrefix}notifications:${encodeURIComponent(endpoint)}:${part}`
  }

  private async exec (transaction: ReturnType<Redis['multi']>): Promise<void> {
    const results = await transaction.exec()
    const failed = results?.find(([error]) => error !== null)
    if (results === null || failed !== undefined) throw failed?.[0] ?? new Error('redis transaction discarded')
  }

  async append (endpoint: string, events: readonly OutboxEvent[]): Promise<void> {
    const transaction = this.redis.multi()
    for (const event of events) {
      const entry: OutboxEntry = { key: this.clock.next(), ...event }
      transaction.hset(this.key(endpoint, 'entries'), entry.key, JSON.stringify(entry))
      transaction.zadd(this.key(endpoint, 'outbox'), 0, entry.key)
    }
    await this.exec(transaction)
  }

  private async read<T> (keys: string[], hash: string): Promise<T[]> {
    if (keys.length === 0) return []
    const values = await this.redis.hmget(hash, ...keys)
    return values.flatMap((value) => value === null ? [] : [JSON.parse(value) as T])
  }

  async pending (endpoint: string, limit: number): Promise<OutboxEntry[]> {
    const keys = await this.redis.zrange(this.key(endpoint, 'outbox'), '0', String(limit - 1))
    return await this.read<OutboxEntry>(keys, this.key(endpoint, 'entries'))
  }

  async remove (endpoint: string, key: string): Promise<void> {
    await this.exec(this.redis.multi().zrem(this.key(endpoint, 'outbox'), key).hdel(this.key(endpoint, 'entries'), key))
  }

  async bury (endpoint: string, letter: DeadLetter): Promise<void> {
    await this.exec(this.redis.multi()
      .hset(this.key(endpoint, 'dead'), letter.key, JSON.stringify(letter))
      .zadd(this.key(endpoint, 'deadletters'), 0, letter.key)
      .zrem(this.key(endpoint, 'outbox'), letter.key)
      .hdel(this.key(endpoint, 'entries'), letter.key))
  }

  async deadLetters (endpoint: string): Promise<DeadLetter[]> {
    const keys = await this.redis.zrange(this.key(endpoint, 'deadletters'), '0', '-1')
    return await this.read<DeadLetter>(keys, this.key(endpoint, 'dead'))
  }

  async replay (endpoint: string, ids?: ReadonlySet<string>): Promise<number> {
    let replayed = 0
    for (const letter of await this.deadLetters(endpoint)) {
      if (ids !== undefined && !ids.has(letter.event.id)) continue
      const entry: OutboxEntry = { key: this.clock.next(), type: letter.type, event: letter.event }
      await this.exec(this.redis.multi()
        .hset(this.key(endpoint, 'entries'), entry.key, JSON.stringify(entry))
        .zadd(this.key(endpoint, 'outbox'), 0, entry.key)
        .zrem(this.key(endpoint, 'deadletters'), letter.key)
        .hdel(this.key(endpoint, 'dead'), letter.key))
      replayed++
    }
    return replayed
  }

  async acquire (endpoint: string, owner: string, ttlMs: number): Promise<boolean> {
    const key = this.key(endpoint, 'lease')
    const current = await this.redis.get(key)
    const now = Date.now()
    if (!leaseIsFree(current === null ? undefined : JSON.parse(current) as Lease, owner, now)) return false
    const lease: Lease = { owner, host: hostname(), pid: process.pid, expires: now + ttlMs }
    await this.redis.set(key, JSON.stringify(lease), 'PX', ttlMs)
    // Two processes may both have found it free: the last write wins, and each reads which.
    const after = await this.redis.get(key)
    return after !== null && (JSON.parse(after) as Lease).owner === owner
  }

  async release (endpoint: string, owner: string): Promise<void> {
    const key = this.key(endpoint, 'lease')
    const current = await this.redis.get(key)
    if (current !== null && (JSON.parse(current) as Lease).owner === owner) await this.redis.del(key)
  }

  async close (): Promise<void> {
    await this.redis.quit().catch(() => { this.redis.disconnect() })
  }
}
