/**
 * A storage driver over a local directory: driver path `/a/b` is the file `<root>/a/b`. The tree
 * is CNCF distribution's filesystem driver's, so either registry can serve what the other wrote.
 * Paths are trusted: the storage base layer validates them before they get here.
 *
 * Beside this file: the read cache (`read-cache.ts`), the writer (`writer.ts`), temporary files
 * of atomic writes (`temporary-files.ts`) and the shared file system helpers (`host.ts`).
 */

import type { Stats } from 'node:fs'
import { mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { Readable } from 'node:stream'
import {
  InvalidPathError,
  PathNotFoundError,
  StorageDriverError,
  readRange,
  type FileInfo,
  type FileWriter,
  type ReadOptions,
  type StorageDriver
} from '../../driver.js'
import { NAME, childPath, codeOf, driverError, isMissing, stat, visible } from './host.js'
import { CACHE_DEFAULTS, ReadCache, type Listing, type ReadCacheOptions } from './read-cache.js'
import { removeTemporaryFiles, temporaryPath } from './temporary-files.js'
import { FilesystemWriter } from './writer.js'

export interface FilesystemDriverOptions {
  /** Directory holding the tree; created when missing. */
  root: string
  /**
   * The in-process cache of small files and directory listings, revalidated by a `stat` on
   * every use (so it is never stale, whichever process changed the tree); `false` turns it off.
   */
  cache?: Partial<ReadCacheOptions> | false
}

/**
 * Reads of 256 KiB: far fewer system calls and stream turns than the 64 KiB default, while a
 * chunk still fits the socket's buffer (larger reads measured no faster and cost more memory).
 */
const READ_HIGH_WATER_MARK = 256 * 1024
/** Retries when a concurrent delete removes a parent directory between mkdir and use. */
const PARENT_ATTEMPTS = 3

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
    const temp = temporaryPath(dirname(full))
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

  async removeTemporaryFiles (path: string, olderThan: Date): Promise<number> {
    try {
      return await removeTemporaryFiles(this.full(path), olderThan)
    } catch (error) {
      throw driverError(error, path, 'remove temporary files')
    }
  }

  /** The host path of a driver path (valid: the base layer checked it). */
  private full (path: string): string {
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
