/**
 * An htpasswd file of bcrypt entries (`htpasswd -B` writes them), read again whenever it
 * changes, and the HTTP Basic credentials checked against it.
 */

import { readFile, stat } from 'node:fs/promises'
import { bcryptCost, isBcryptHash, PasswordVerifier, type PasswordVerifierOptions } from './password.js'

export interface HtpasswdTable {
  users: Map<string, string>
  /** Line numbers of entries skipped because their hash is not bcrypt (as distribution does). */
  skipped: number[]
  /** The cost of the first entry, used for the dummy check of unknown users. */
  cost: number
}

/** Parses `user:hash` lines; blank lines and `#` comments are ignored, non-bcrypt entries skipped. */
export function parseHtpasswd (text: string): HtpasswdTable {
  const users = new Map<string, string>()
  const skipped: number[] = []
  let cost: number | undefined
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const colon = line.indexOf(':')
    const user = colon === -1 ? '' : line.slice(0, colon)
    const hash = colon === -1 ? '' : line.slice(colon + 1)
    if (user === '' || !isBcryptHash(hash)) {
      skipped.push(index + 1)
      return
    }
    users.set(user, hash)
    cost ??= bcryptCost(hash)
  })
  return { users, skipped, cost: cost ?? 10 }
}

export interface Credentials {
  username: string
  password: string
}

/** The credentials of an `Authorization: Basic` header, or undefined when it has none. */
export function parseBasicAuth (header: string | undefined): Credentials | undefined {
  if (header === undefined) return undefined
  const match = /^Basic +([A-Za-z0-9+/]+=*) *$/i.exec(header)
  if (match === null) return undefined
  const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon <= 0) return undefined
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

export interface HtpasswdFileOptions extends PasswordVerifierOptions {
  /** Told when the file is read, skips entries, or cannot be read; never given passwords or hashes. */
  onEvent?: (event: { kind: 'loaded', users: number, skipped: number[] } | { kind: 'error', error: Error }) => void
}

/**
 * The users of an htpasswd file. The file is stat'ed on each check (one concurrent stat at a
 * time) and read again when its size, mtime or inode changed. A file that cannot be read
 * fails closed: nobody authenticates until it can be read again.
 */
export class HtpasswdFile {
  private table: HtpasswdTable = { users: new Map(), skipped: [], cost: 10 }
  private version = ''
  private refreshing: Promise<void> | undefined
  readonly verifier: PasswordVerifier

  constructor (readonly path: string, private readonly options: HtpasswdFileOptions = {}) {
    this.verifier = new PasswordVerifier(options)
  }

  /** Reads the file; throws when it cannot, so a bad path fails at start. */
  async load (): Promise<void> {
    await this.verifier.ready()
    const info = await stat(this.path)
    await this.read(`${info.ino}:${info.size}:${info.mtimeMs}`)
  }

  /** True when `username` and `password` match an entry of the current file. */
  async verify (credentials: Credentials): Promise<boolean> {
    await this.refresh()
    const { users, cost } = this.table
    return await this.verifier.verify(credentials.username, credentials.password, users.get(credentials.username), cost)
  }

  /** The user names of the current file. */
  async users (): Promise<string[]> {
    await this.refresh()
    return [...this.table.users.keys()]
  }

  private async refresh (): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const info = await stat(this.path)
        const version = `${info.ino}:${info.size}:${info.mtimeMs}`
        if (version !== this.version) await this.read(version)
      } catch (error) {
        this.failClosed(error as Error)
      } finally {
        this.refreshing = undefined
      }
    })()
    await this.refreshing
  }

  private async read (version: string): Promise<void> {
    const table = parseHtpasswd(await readFile(this.path, 'utf8'))
    this.table = table
    this.version = version
    this.verifier.clear()
    this.options.onEvent?.({ kind: 'loaded', users: table.users.size, skipped: table.skipped })
  }

  private failClosed (error: Error): void {
    if (this.version !== 'unreadable') this.options.onEvent?.({ kind: 'error', error })
    this.table = { users: new Map(), skipped: [], cost: this.table.cost }
    this.version = 'unreadable'
    this.verifier.clear()
  }
}
