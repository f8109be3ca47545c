/**
 * The storage driver contract: a key/value store of byte streams, shaped after object stores
 * (not a POSIX file system). Keys are absolute slash-separated paths. Drivers know nothing of
 * the registry: the path mapper decides the layout, the services above decide the semantics.
 */

import type { Readable } from 'node:stream'

export interface FileInfo {
  /** The path asked about. */
  path: string
  /** Size in bytes (0 for a directory). */
  size: number
  /** Last modification time. */
  modTime: Date
  isDir: boolean
}

/**
 * A writer for one path. Bytes written are not guaranteed visible to readers until `commit`
 * (or `close`). A writer opened with `append` continues a file left by an earlier writer,
 * possibly from another process.
 */
export interface FileWriter {
  /** Bytes in the file so far, including those of earlier writers when appending. */
  readonly size: number
  /** Appends a chunk; resolves when the driver can take more (backpressure). */
  write (chunk: Uint8Array): Promise<void>
  /** Makes everything written durable and visible; the writer is finished. */
  commit (): Promise<void>
  /** Releases the writer, keeping what was written so that a later writer can append. */
  close (): Promise<void>
  /** Discards the file; the writer is finished. */
  cancel (): Promise<void>
}

export interface ReadOptions {
  /** First byte to read (default 0). */
  offset?: number
  /** Bytes to read from `offset` (default: to the end). */
  length?: number
}

export interface StorageDriver {
  /** Driver name, for logs and errors. */
  readonly name: string
  /**
   * Smallest chunk the driver takes as one part (S3's 5 MiB), when it has such a limit.
   * The registry announces it as `OCI-Chunk-Min-Length`.
   */
  readonly minChunkSize?: number

  /** The whole content of a small file. PathNotFoundError when absent. */
  getContent (path: string): Promise<Buffer>
  /** Writes a small file atomically: readers see the old content or the new, never a mix. */
  putContent (path: string, content: Uint8Array | string): Promise<void>
  /** A stream of a file's bytes from an offset. PathNotFoundError when absent, InvalidOffsetError past the end. */
  reader (path: string, options?: ReadOptions): Promise<Readable>
  /** A writer for a path; `append` continues an existing file (PathNotFoundError when absent). */
  writer (path: string, append: boolean): Promise<FileWriter>
  /** Facts about a file or directory. PathNotFoundError when absent. */
  stat (path: string): Promise<FileInfo>
  /** Full paths of the direct children of a directory, sorted. PathNotFoundError when absent. */
  list (path: string): Promise<string[]>
  /** Moves a file, replacing the destination atomically. PathNotFoundError when the source is absent. */
  move (sourcePath: string, destPath: string): Promise<void>
  /** Deletes a file or a whole subtree. PathNotFoundError when absent. */
  delete (path: string): Promise<void>
  /** Every file and directory below a path, depth first in lexical order. */
  walk (path: string): AsyncIterable<FileInfo>
  /** A URL a client can fetch the file from directly, when the driver offers one. */
  redirectURL? (path: string): Promise<string | undefined>
  /** Releases resources (connections, handles). */
  close? (): Promise<void>
}

export class StorageDriverError extends Error {
  readonly driver: string
  readonly path: string

  constructor (driver: string, path: string, message: string, options?: { cause?: unknown }) {
    super(`${driver}: ${message}: ${path}`, options)
    this.name = 'StorageDriverError'
    this.driver = driver
    this.path = path
  }
}

export class PathNotFoundError extends StorageDriverError {
  constructor (driver: string, path: string) {
    super(driver, path, 'path not found')
    this.name = 'PathNotFoundError'
  }
}

export class InvalidPathError extends StorageDriverError {
  constructor (driver: string, path: string) {
    super(driver, path, 'invalid path')
    this.name = 'InvalidPathError'
  }
}

export class InvalidOffsetError extends StorageDriverError {
  readonly offset: number

  constructor (driver: string, path: string, offset: number) {
    super(driver, path, `invalid offset ${offset}`)
    this.name = 'InvalidOffsetError'
    this.offset = offset
  }
}

const segmentRegex = /^[A-Za-z0-9._-]+$/

/**
 * Paths are absolute, slash-separated, with segments of letters, digits, `.`, `_` and `-`;
 * no empty segments, no trailing slash, no `.` or `..` segments. `/` alone is the root.
 */
export function isValidPath (path: string): boolean {
  if (path === '/') return true
  if (!path.startsWith('/') || path.endsWith('/')) return false
  const segments = path.slice(1).split('/')
  return segments.every((segment) => segmentRegex.test(segment) && segment !== '.' && segment !== '..')
}

/** Throws InvalidPathError unless the path is valid. */
export function assertPath (driver: string, path: string): string {
  if (!isValidPath(path)) throw new InvalidPathError(driver, path)
  return path
}

export function isPathNotFound (error: unknown): error is PathNotFoundError {
  return error instanceof PathNotFoundError
}
