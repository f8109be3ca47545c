/**
 * A storage driver over a local directory: driver path `/a/b` is the file `<root>/a/b`. The tree
 * is CNCF distribution's filesystem driver's, so either registry can serve what the other wrote.
 */

import { randomBytes } from 'node:crypto'
import type { Stats } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises'
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

export interface FilesystemDriverOptions {
  /** Directory holding the tree; created when missing. */
  root: string
}

/** Large reads: fewer system calls and stream turns on blobs of hundreds of megabytes. */
const READ_HIGH_WATER_MARK = 1024 * 1024
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

  constructor (options: FilesystemDriverOptions) {
    if (typeof options?.root !== 'string' || options.root === '') {
      throw new TypeError('filesystem driver: root must be a non-empty string')
    }
    this.root = resolve(options.root)
  }

  async getContent (path: string): Promise<Buffer> {
    const full = this.full(path)
    try {
      return await readFile(full)
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
      const isDir = info.isDirectory()
      return { path, size: isDir ? 0 : info.size, modTime: info.mtime, isDir }
    } catch (error) {
      throw driverError(error, path, 'stat')
    }
  }

  async list (path: string): Promise<string[]> {
    return (await this.children(path)).map((name) => childPath(path, name))
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
    const full = this.full(path)
    if (path === '/') await this.ensureRoot()
    try {
      return visible(await readdir(full))
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

class FilesystemWriter implements FileWriter {
  private state: WriterState = 'open'
  private written: number
  /** Writes run one after another, even when a caller does not wait for the previous one. */
  private queue: Promise<void> = Promise.resolve()
  private failure: StorageDriverError | undefined

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

  write (chunk: Uint8Array): Promise<void> {
    try {
      this.assertOpen()
    } catch (error) {
      return Promise.reject(error)
    }
    const position = this.written
    this.written += chunk.byteLength
    const run = this.queue.then(async () => {
      if (this.failure !== undefined) throw this.failure
      try {
        let done = 0
        while (done < chunk.byteLength) {
          const { bytesWritten } = await this.handle.write(chunk, done, chunk.byteLength - done, position + done)
          done += bytesWritten
        }
      } catch (error) {
        // Later writes would leave a hole: the writer is unusable from here on.
        this.failure = driverError(error, this.path, 'write')
        throw this.failure
      }
    })
    this.queue = run.catch(() => {})
    return run
  }

  async commit (): Promise<void> {
    this.assertOpen()
    this.state = 'committed'
    try {
      await this.queue
      if (this.failure !== undefined) throw this.failure
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
    await this.queue
    await this.handle.close()
  }

  async cancel (): Promise<void> {
    if (this.state === 'cancelled') return
    const wasOpen = this.state === 'open'
    if (!wasOpen && this.state !== 'failed') this.assertOpen()
    this.state = 'cancelled'
    if (wasOpen) {
      await this.queue
      await this.handle.close()
    }
    await rm(this.full, { force: true })
  }

  private assertOpen (): void {
    if (this.state !== 'open') throw new StorageDriverError(NAME, this.path, `writer already ${this.state}`)
  }
}
