/**
 * bcrypt password checks, kept off the event loop and bounded.
 *
 * - bcrypt runs in the native `bcrypt` addon on libuv's thread pool, never on the event loop
 *   (a cost-10 check takes tens of milliseconds; pure-JS bcrypt stalls the loop that long).
 * - At most `maxConcurrent` checks run at once, so a flood of wrong passwords cannot take every
 *   pool thread from file system I/O; at most `maxQueued` wait, past that the check is refused.
 * - A successful check is remembered for `cacheSeconds` as an HMAC of the password and its hash
 *   under a per-process random key, compared in constant time: clients that send Basic
 *   credentials on every request (docker does) pay for bcrypt once. A changed hash (a new
 *   password in the file) no longer matches the remembered HMAC.
 * - An unknown user is checked against a dummy hash of the same cost, so the time taken does
 *   not tell whether the user exists.
 * - A password longer than 72 bytes is refused: bcrypt reads only the first 72, so such a
 *   password would admit every other password sharing them.
 */

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { importOptional } from '../optional.js'

export type BcryptCompare = (password: string, hash: string) => Promise<boolean>
export type BcryptHash = (password: string, cost: number) => Promise<string>

export interface PasswordVerifierOptions {
  /** How long a successful check is remembered, in seconds; 0 turns the cache off. Default 60. */
  cacheSeconds?: number
  /** Most bcrypt checks running at once. Default 2. */
  maxConcurrent?: number
  /** Most checks waiting for a turn; past that `verify` throws TooManyChecksError. Default 256. */
  maxQueued?: number
  /** Most remembered users. Default 10000. */
  maxCached?: number
  /** Replaced in tests to count or delay checks. */
  compare?: BcryptCompare
  hash?: BcryptHash
  now?: () => number
}

/** Too many password checks are waiting; the caller should answer 429. */
export class TooManyChecksError extends Error {
  constructor () {
    super('too many password checks in progress')
    this.name = 'TooManyChecksError'
  }
}

/** Constant-time equality of two byte strings (false for different lengths, without a shortcut on content). */
export function safeEqual (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) {
    // Still compare something of the same length, so the time does not depend on where they differ.
    timingSafeEqual(a, a)
    return false
  }
  return timingSafeEqual(a, b)
}

/** bcrypt reads at most this many bytes of a password and ignores the rest. */
export const BCRYPT_MAX_PASSWORD_BYTES = 72

/** True when bcrypt would ignore part of `password` (more than 72 bytes of UTF-8). */
export function tooLongForBcrypt (password: string): boolean {
  return Buffer.byteLength(password, 'utf8') > BCRYPT_MAX_PASSWORD_BYTES
}

/** Why credentials were refused, as told to the client: a too long password is named as such. */
export function refusedPassword (password: string): string {
  return tooLongForBcrypt(password)
    ? `password longer than ${BCRYPT_MAX_PASSWORD_BYTES} bytes, which bcrypt cannot check`
    : 'wrong user name or password'
}

const BCRYPT_HASH = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/

/** True for the bcrypt hashes `htpasswd -B` and bcrypt libraries write (`$2y$`, `$2b$`, `$2a$`). */
export function isBcryptHash (hash: string): boolean {
  return BCRYPT_HASH.test(hash)
}

/** The cost factor of a bcrypt hash. */
export function bcryptCost (hash: string): number {
  const match = BCRYPT_HASH.exec(hash)
  if (match === null) throw new TypeError('not a bcrypt hash')
  return Number(match[1])
}

/** The native addon knows `$2b$` and `$2a$`; `$2y$` (PHP's and htpasswd's name for the fixed algorithm) is the same as `$2b$`. */
const nativeCompare: BcryptCompare = async (password, hash) => await (await loadBcrypt()).compare(password, hash.replace(/^\$2y\$/, '$2b$'))
const nativeHash: BcryptHash = async (password, cost) => await (await loadBcrypt()).hash(password, cost)

/** bcrypt is an optional peer dependency: imported at the first need, so only htpasswd users install it. */
async function loadBcrypt (): Promise<typeof import('bcrypt')> {
  return await importOptional('bcrypt')
}

export class PasswordVerifier {
  private readonly cacheMs: number
  private readonly maxConcurrent: number
  private readonly maxQueued: number
  private readonly maxCached: number
  private readonly compare: BcryptCompare
  private readonly hash: BcryptHash
  private readonly now: () => number
  private readonly key = randomBytes(32)
  private readonly cache = new Map<string, { mac: Buffer, expires: number }>()
  private readonly dummies = new Map<number, Promise<string>>()
  private running = 0
  private readonly waiting: Array<() => void> = []

  constructor (options: PasswordVerifierOptions = {}) {
    this.cacheMs = (options.cacheSeconds ?? 60) * 1000
    this.maxConcurrent = options.maxConcurrent ?? 2
    this.maxQueued = options.maxQueued ?? 256
    this.maxCached = options.maxCached ?? 10000
    this.compare = options.compare ?? nativeCompare
    this.hash = options.hash ?? nativeHash
    this.now = options.now ?? Date.now
  }

  /** Loads the native bcrypt addon unless checks were replaced; fails when it is not installed. */
  async ready (): Promise<void> {
    if (this.compare === nativeCompare || this.hash === nativeHash) await loadBcrypt()
  }

  /**
   * Checks `password` against `hash`, the user's bcrypt hash, or against a dummy hash of
   * `dummyCost` when the user is unknown (`hash` undefined), which always fails. A password
   * longer than bcrypt reads always fails too, for every user alike.
   */
  async verify (user: string, password: string, hash: string | undefined, dummyCost = 10): Promise<boolean> {
    if (tooLongForBcrypt(password)) return false
    if (hash === undefined) {
      await this.bounded(async () => await this.compare(password, await this.dummy(dummyCost)))
      return false
    }
    const mac = createHmac('sha256', this.key).update(hash).update('\u0000').update(password).digest()
    const cached = this.cache.get(user)
    if (cached !== undefined && cached.expires > this.now() && safeEqual(cached.mac, mac)) return true
    const ok = await this.bounded(async () => await this.compare(password, hash))
    if (ok && this.cacheMs > 0) this.remember(user, mac)
    return ok
  }

  /** Forgets every remembered check (the user table changed). */
  clear (): void {
    this.cache.clear()
  }

  private remember (user: string, mac: Buffer): void {
    this.cache.delete(user)
    if (this.cache.size >= this.maxCached) {
      const oldest = this.cache.keys().next().value
      if (oldest !== undefined) this.cache.delete(oldest)
    }
    this.cache.set(user, { mac, expires: this.now() + this.cacheMs })
  }

  private async dummy (cost: number): Promise<string> {
    let dummy = this.dummies.get(cost)
    if (dummy === undefined) {
      dummy = this.hash(randomBytes(18).toString('base64'), cost)
      this.dummies.set(cost, dummy)
    }
    return await dummy
  }

  private async bounded<T> (work: () => Promise<T>): Promise<T> {
    if (this.running >= this.maxConcurrent) {
      if (this.waiting.length >= this.maxQueued) throw new TooManyChecksError()
      await new Promise<void>((resolve) => this.waiting.push(resolve))
    } else {
      this.running++
    }
    try {
      return await work()
    } finally {
      // Hands the slot to the next waiter directly, so the count never dips below the bound.
      const next = this.waiting.shift()
      if (next !== undefined) next()
      else this.running--
    }
  }
}
