/** The shared cache's store on Redis (ioredis); loaded only when a Redis URL is configured. */

import { Redis } from 'ioredis'
import type { CacheLogger, SharedStore } from './cache.js'

export class RedisStore implements SharedStore {
  readonly redis: Redis
  /** A second connection for subscriptions (a subscribed connection runs no other command). */
  private subscriber: Redis | undefined

  constructor (url: string, private readonly keyPrefix: string, log?: CacheLogger) {
    this.redis = new Redis(url, {
      // Commands wait for a connection (the first ones at start) but not long: when Redis is
      // away, a read falls back to storage and a write fails instead of hanging.
      maxRetriesPerRequest: 1,
      commandTimeout: 2000,
      connectTimeout: 2000
    })
    let reported = false
    this.redis.on('error', (error: Error) => {
      // Once per outage: ioredis reports every reconnection attempt.
      if (!reported) log?.warn({ err: error }, 'redis cache unreachable; reading storage directly')
      reported = true
    })
    this.redis.on('ready', () => { reported = false })
  }

  async get (key: string): Promise<string | null> {
    return await this.redis.get(this.keyPrefix + key)
  }

  async fill (key: string, value: string, ttlSeconds: number): Promise<void> {
    await this.redis.set(this.keyPrefix + key, value, 'EX', ttlSeconds, 'NX')
  }

  async replace (keys: string[], value: string, ttlSeconds: number): Promise<void> {
    const pipeline = this.redis.multi()
    for (const key of keys) pipeline.set(this.keyPrefix + key, value, 'EX', ttlSeconds)
    const results = await pipeline.exec()
    const failed = results?.find(([error]) => error !== null)
    if (results === null || failed !== undefined) throw failed?.[0] ?? new Error('redis transaction discarded')
  }

  async ping (): Promise<void> {
    await this.redis.ping()
  }

  async announce (channel: string, message: string): Promise<void> {
    await this.redis.publish(this.keyPrefix + channel, message)
  }

  async listen (channel: string, handler: (message: string) => void): Promise<void> {
    const name = this.keyPrefix + channel
    if (this.subscriber === undefined) {
      this.subscriber = this.redis.duplicate()
      // Errors are reported by the main connection; this one only reconnects.
      this.subscriber.on('error', () => {})
    }
    this.subscriber.on('message', (from: string, message: string) => { if (from === name) handler(message) })
    await this.subscriber.subscribe(name)
  }

  async close (): Promise<void> {
    for (const connection of [this.subscriber, this.redis]) {
      if (connection === undefined) continue
      try {
        await connection.quit()
      } catch {
        connection.disconnect()
      }
    }
  }
}
