/**
 * A storage driver over a local directory: driver path `/a/b` is the file `<root>/a/b`. The tree
 * is CNCF distribution's filesystem driver's, so either registry can serve what the other wrote.
 */

import { randomBytes } from 'node:crypto'
import { stat as statWithCallback, type Stats } from 'node:fs'
import { mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { Readable } from 'node:stream'
import {
  InvalidPathError,
  PathNotFoundError,
  StorageDriverError,
  assertPath,
  isValidSegment,
  readRange,
  type FileInfo,
  type FileWriter,
  type ReadOptions,
  type StorageDriver
} from '../driver.js'

/**
 * `stat` through its callback. The promise API allocates a stats array for every call and, measured
 * here, costs two to four times the CPU per stat: most of a metadata request (one or two each).
 */
async function stat (path: string): Promise<Stats> {
  return await new Promise((resolve, reject) => {
    statWithCallback(path, (error, stats) => { if (error === null) resolve(stats); else reject(error) })
  })
}

export interface FilesystemDriverOptions {
  /** Directory holding the tree; created when missing. */
  root: string
  /**
   * The in-process cache of small files and directory listings, revalidated by a `stat` on
   * every use (so it is never stale, whichever process changed the tree); `false` turns it off.
   */
  cache?: Partial<ReadCacheOptions> | false
}

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

const CACHE_DEFAULTS: ReadCacheOptions = { maxBytes: 16 * 1024 * 1024, maxFileBytes: 256 * 1024, maxNames: 50_000, settleMs: 2000 }

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
interface Listing {
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
class ReadCache {
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

/**
 * Reads of 256 KiB: far fewer system calls and stream turns than the 64 KiB default, while a
 * chunk still fits the socket's buffer (larger reads measured no faster and cost more memory).
 */
const READ_HIGH_WATER_MARK = 256 * 1024
/**
 * Prefix of temporary files. `~` cannot occur in a driver path, so a temporary file never
 * collides with a real one, and `list`/`walk` hide it like any other name outside the grammar.
 */
const TEMP_PREFIX = '.tmp~'
/** Retries when a concurrent delete removes a parent directory between mkdir and use. */
const PARENT_ATTEMPTS = 3

function codeOf (error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' ? code : undefined
}

function isMissing (error: unknown): boolean {
  const code = codeOf(error)
  return code === 'ENOENT' || code === 'ENOTDIR'
}

const NAME = 'filesystem'

/** Maps a file system error to a driver error naming the driver path, never the host path. */
function driverError (error: unknown, path: string, operation: string): StorageDriverError {
  if (error instanceof StorageDriverError) return error
  if (isMissing(error)) return new PathNotFoundError(NAME, path)
  const code = codeOf(error)
  return new StorageDriverError(NAME, path, `${operation} failed${code === undefined ? '' : ` (${code})`}`)
}

function emptyStream (): Readable {
  return new Readable({
    read () {
      this.push(null)
    }
  })
}

export class FilesystemDriver implements StorageDriver {
  readonly name = NAME
  private readonly root: string
  private readonly cache: ReadCache | undefined

  constructor (options: FilesystemDriverOptions) {
    if (typeof options?.root !== 'string' || options.root === '') {
      throw new TypeError('filesystem driver: root must be a non-empty string')
    }
    this.root = resolve(options.root)
    this.cache = options.cache === false ? undefined : new ReadCache({ ...CACHE_DEFAULTS, ...options.cache })
  }

  async getContent (path: string): Promise<Buffer> {
    const full = this.full(path)
    try {
      if (this.cache !== undefined) {
        const cached = this.cache.file(full, await stat(full))
        if (cached !== undefined) return cached
      }
      // Read through one handle, so the identity kept is that of the bytes read.
      const handle = await open(full, 'r')
      try {
        const info = await handle.stat()
        if (info.isDirectory()) throw new PathNotFoundError(this.name, path)
        const content = await handle.readFile()
        this.cache?.keepFile(full, info, content)
        return content
      } finally {
        await handle.close()
      }
    } catch (error) {
      if (codeOf(error) === 'EISDIR') throw new PathNotFoundError(this.name, path)
      throw driverError(error, path, 'read')
    }
  }

  async putContent (path: string, content: Uint8Array | string): Promise<void> {
    const full = this.full(path)
    if (path === '/') throw new StorageDriverError(this.name, path, 'is a directory')
    // Write aside and rename over: readers see the old file or the new one, never a mix.
    const temp = join(dirname(full), `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`)
    try {
      await this.inParent(path, full, async () => {
        const handle = await open(temp, 'wx')
        try {
          await handle.writeFile(content)
          await handle.sync()
        } finally {
          await handle.close()
        }
      })
      await rename(temp, full)
    } catch (error) {
      await rm(temp, { force: true }).catch(() => {})
      throw driverError(error, path, 'write')
    }
  }

  async reader (path: string, options?: ReadOptions): Promise<Readable> {
    const full = this.full(path)
    // Open first and size the open file: a rename over the path after this point cannot make
    // the stream read a different file than the one the range was checked against.
    let handle: FileHandle
    try {
      handle = await open(full, 'r')
    } catch (error) {
      throw driverError(error, path, 'open')
    }
    let range: { start: number, end: number }
    try {
      const info = await handle.stat()
      if (info.isDirectory()) throw new PathNotFoundError(this.name, path)
      range = readRange(this.name, path, info.size, options)
    } catch (error) {
      await handle.close()
      throw error instanceof StorageDriverError ? error : driverError(error, path, 'stat')
    }
    if (range.start === range.end) {
      await handle.close()
      return emptyStream()
    }
    return handle.createReadStream({ start: range.start, end: range.end - 1, highWaterMark: READ_HIGH_WATER_MARK })
  }

  async writer (path: string, append: boolean): Promise<FileWriter> {
    const full = this.full(path)
    if (append) {
      let handle: FileHandle
      try {
        handle = await open(full, 'r+')
      } catch (error) {
        if (codeOf(error) === 'EISDIR') throw new PathNotFoundError(this.name, path)
        throw driverError(error, path, 'open')
      }
      try {
        const info = await handle.stat()
        return new FilesystemWriter(path, full, handle, info.size)
      } catch (error) {
        await handle.close()
        throw driverError(error, path, 'stat')
      }
    }
    if (path === '/') throw new StorageDriverError(this.name, path, 'is a directory')
    try {
      const handle = await this.inParent(path, full, () => open(full, 'w'))
      return new FilesystemWriter(path, full, handle, 0)
    } catch (error) {
      throw driverError(error, path, 'open')
    }
  }

  async stat (path: string): Promise<FileInfo> {
    const full = this.full(path)
    if (path === '/') await this.ensureRoot()
    try {
      const info = await stat(full)
      if (info.isDirectory()) return { path, size: 0, modTime: info.mtime, isDir: true }
      // The inode and the times to the microsecond: a Date has milliseconds only, and a file
      // rewritten with as many bytes in the same millisecond must not look unchanged.
      return { path, size: info.size, modTime: info.mtime, isDir: false, etag: `${info.ino}:${info.mtimeMs}:${info.ctimeMs}` }
    } catch (error) {
      throw driverError(error, path, 'stat')
    }
  }

  async list (path: string): Promise<string[]> {
    return (await this.listing(path)).paths.slice()
  }

  async move (sourcePath: string, destPath: string): Promise<void> {
    const source = this.full(sourcePath)
    const dest = this.full(destPath)
    if (sourcePath === '/') throw new InvalidPathError(this.name, sourcePath)
    if (destPath === '/') throw new InvalidPathError(this.name, destPath)
    await this.assertFile(sourcePath, source)
    if (sourcePath === destPath) return
    try {
      await this.inParent(destPath, dest, async () => {
        try {
          await rename(source, dest)
        } catch (error) {
          // ENOENT is either the source gone or the destination's parent removed meanwhile.
          if (isMissing(error)) await this.assertFile(sourcePath, source)
          throw error
        }
      })
    } catch (error) {
      throw error instanceof StorageDriverError ? error : driverError(error, destPath, 'move')
    }
  }

  async delete (path: string): Promise<void> {
    const full = this.full(path)
    if (path === '/') throw new InvalidPathError(this.name, path)
    try {
      await rm(full, { recursive: true })
    } catch (error) {
      throw driverError(error, path, 'delete')
    }
  }

  async * walk (path: string): AsyncGenerator<FileInfo> {
    yield * this.walkDir(path, await this.children(path))
  }

  private full (path: string): string {
    assertPath(this.name, path)
    return path === '/' ? this.root : join(this.root, path)
  }

  private async ensureRoot (): Promise<void> {
    await mkdir(this.root, { recursive: true })
  }

  /** Runs an operation that creates `full`, after creating its parent directories. */
  private async inParent<T> (path: string, full: string, operation: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        await mkdir(dirname(full), { recursive: true })
      } catch (error) {
        const code = codeOf(error)
        if (code === 'EEXIST' || code === 'ENOTDIR') throw new StorageDriverError(this.name, path, 'a parent is a file')
        throw error
      }
      try {
        return await operation()
      } catch (error) {
        if (codeOf(error) !== 'ENOENT' || attempt >= PARENT_ATTEMPTS) throw error
      }
    }
  }

  private async assertFile (path: string, full: string): Promise<void> {
    try {
      if ((await stat(full)).isDirectory()) throw new PathNotFoundError(this.name, path)
    } catch (error) {
      throw driverError(error, path, 'stat')
    }
  }

  /** Sorted names of a directory's children, without temporary or foreign names. */
  private async children (path: string): Promise<string[]> {
    return (await this.listing(path)).names.slice()
  }

  /** The listing of a directory, from the cache when the directory has not changed. */
  private async listing (path: string): Promise<Listing> {
    const full = this.full(path)
    if (path === '/') await this.ensureRoot()
    const read = async (): Promise<Listing> => {
      const names = visible(await readdir(full))
      return { names, paths: names.map((name) => childPath(path, name)) }
    }
    try {
      if (this.cache === undefined) return await read()
      // Stat before reading: a change in between makes the kept identity older, never newer.
      const info = await stat(full)
      const cached = this.cache.list(full, info)
      if (cached !== undefined) return cached
      const listing = await read()
      this.cache.keepList(full, info, listing)
      return listing
    } catch (error) {
      throw driverError(error, path, 'list')
    }
  }

  private async * walkDir (path: string, names: string[]): AsyncGenerator<FileInfo> {
    for (const name of names) {
      const child = childPath(path, name)
      const full = join(this.root, child)
      let info: Stats
      try {
        info = await stat(full)
      } catch (error) {
        // Deleted since the directory was read: a walk is not a snapshot.
        if (isMissing(error)) continue
        throw driverError(error, child, 'walk')
      }
      const isDir = info.isDirectory()
      yield { path: child, size: isDir ? 0 : info.size, modTime: info.mtime, isDir }
      if (!isDir) continue
      let below: string[]
      try {
        below = visible(await readdir(full))
      } catch (error) {
        if (isMissing(error)) continue
        throw driverError(error, child, 'walk')
      }
      yield * this.walkDir(child, below)
    }
  }
}

function childPath (parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`
}

function visible (names: string[]): string[] {
  return names.filter(isValidSegment).sort()
}

/** `failed`: a commit that did not complete, after which the caller may still cancel. */
type WriterState = 'open' | 'committed' | 'failed' | 'closed' | 'cancelled'

/**
 * Chunks are copied into a staging buffer and written this much at a time: a request body
 * arrives in pieces of 16 to 64 KiB, and one system call (one trip through libuv's thread pool)
 * per piece costs more than the copy.
 */
const WRITE_BUFFER = 256 * 1024
/**
 * Staging buffers of finished writers, reused by the next ones: many uploads at once would
 * otherwise allocate (and leave to the garbage collector) two buffers each.
 */
const freeBuffers: Buffer[] = []
const MAX_FREE_BUFFERS = 16

function takeBuffer (): Buffer {
  return freeBuffers.pop() ?? Buffer.allocUnsafe(WRITE_BUFFER)
}

function returnBuffer (buffer: Buffer | undefined): void {
  if (buffer !== undefined && buffer.length === WRITE_BUFFER && freeBuffers.length < MAX_FREE_BUFFERS) freeBuffers.push(buffer)
}
/**
 * Past this many bytes since the last flush, a flush starts in the background, so that the
 * disk works while more bytes arrive and the commit's fsync has little left to do.
 */
const EARLY_FLUSH_BYTES = 64 * 1024 * 1024

class FilesystemWriter implements FileWriter {
  private state: WriterState = 'open'
  private written: number
  /** The write in flight (one at a time, in order). */
  private queue: Promise<void> = Promise.resolve()
  /** The chunk being staged. */
  private accepting: Promise<void> = Promise.resolve()
  private failure: StorageDriverError | undefined
  /** Bytes accepted but not yet handed to a write. */
  private staging: Buffer | undefined
  private staged = 0
  /** A buffer whose write finished, ready to stage into again. */
  private spare: Buffer | undefined
  private unflushed = 0
  private flushing: Promise<void> | undefined

  constructor (
    private readonly path: string,
    private readonly full: string,
    private readonly handle: FileHandle,
    size: number
  ) {
    this.written = size
  }

  get size (): number {
    return this.written
  }

  /**
   * Copies the chunk into the staging buffer; a full buffer is written while the next fills.
   * Resolves once the chunk is copied and at most one write is in flight (backpressure).
   */
  write (chunk: Uint8Array): Promise<void> {
    try {
      this.assertOpen()
    } catch (error) {
      return Promise.reject(error)
    }
    // Chunks are staged one after another, even when a caller does not wait for the previous one.
    const run = this.accepting.then(async () => { await this.stage(chunk) })
    this.accepting = run.catch(() => {})
    return run
  }

  private async stage (chunk: Uint8Array): Promise<void> {
    if (this.failure !== undefined) throw this.failure
    let offset = 0
    while (offset < chunk.byteLength) {
      if (this.staging === undefined) {
        this.staging = this.spare ?? takeBuffer()
        this.spare = undefined
        this.staged = 0
      }
      const take = Math.min(chunk.byteLength - offset, this.staging.length - this.staged)
      this.staging.set(chunk.subarray(offset, offset + take), this.staged)
      this.staged += take
      this.written += take
      offset += take
      if (this.staged === this.staging.length) await this.flushStaging()
    }
  }

  /** Hands the staging buffer to a write, after the previous write has finished. */
  private async flushStaging (): Promise<void> {
    const buffer = this.staging
    if (buffer === undefined || this.staged === 0) return
    const length = this.staged
    const position = this.written - length
    this.staging = undefined
    this.staged = 0
    // One write in flight: wait for the previous one, then start this one without waiting.
    await this.queue
    if (this.failure !== undefined) throw this.failure
    const run = this.writeAt(buffer, length, position).then(() => {
      if (this.spare === undefined) this.spare = buffer
      else returnBuffer(buffer)
    })
    this.queue = run.catch(() => {})
  }

  private async writeAt (buffer: Buffer, length: number, position: number): Promise<void> {
    try {
      let done = 0
      while (done < length) {
        const { bytesWritten } = await this.handle.write(buffer, done, length - done, position + done)
        done += bytesWritten
      }
      this.unflushed += length
      if (this.unflushed >= EARLY_FLUSH_BYTES && this.flushing === undefined) {
        this.unflushed = 0
        this.flushing = this.handle.datasync().catch((error: unknown) => {
          this.failure ??= driverError(error, this.path, 'flush')
        }).finally(() => { this.flushing = undefined })
      }
    } catch (error) {
      // Later writes would leave a hole: the writer is unusable from here on.
      this.failure = driverError(error, this.path, 'write')
      throw this.failure
    }
  }

  /** Writes what is staged and waits for every write and background flush. */
  private async drain (): Promise<void> {
    await this.accepting
    await this.flushStaging()
    await this.queue
    await this.flushing
    this.releaseBuffers()
    if (this.failure !== undefined) throw this.failure
  }

  /** Gives the staging buffers back once no write uses them. */
  private releaseBuffers (): void {
    returnBuffer(this.spare)
    returnBuffer(this.staging)
    this.spare = undefined
    this.staging = undefined
  }

  async commit (): Promise<void> {
    this.assertOpen()
    this.state = 'committed'
    try {
      await this.drain()
      await this.handle.sync()
    } catch (error) {
      this.state = 'failed'
      throw driverError(error, this.path, 'commit')
    } finally {
      await this.handle.close().catch(() => {})
    }
  }

  async close (): Promise<void> {
    if (this.state !== 'open') return
    this.state = 'closed'
    try {
      await this.drain()
    } finally {
      await this.handle.close()
    }
  }

  async cancel (): Promise<void> {
    if (this.state === 'cancelled') return
    const wasOpen = this.state === 'open'
    if (!wasOpen && this.state !== 'failed') this.assertOpen()
    this.state = 'cancelled'
    if (wasOpen) {
      await this.accepting
      await this.queue
      await this.flushing
      this.releaseBuffers()
      await this.handle.close()
    }
    await rm(this.full, { force: true })
  }

  private assertOpen (): void {
    if (this.state !== 'open') throw new StorageDriverError(NAME, this.path, `writer already ${this.state}`)
  }
}
