/**
 * The storage driver contract: a key/value store of byte streams, shaped after object stores
 * (not a POSIX file system). Keys are absolute slash-separated paths. Drivers know nothing of
 * the registry: the path mapper decides the layout, the services above decide the semantics.
 *
 * Directories are implicit: a path is a directory when some file lies below it. Whether an
 * emptied directory lingers after a delete or move differs between drivers (a file system
 * keeps it, an object store cannot), so callers must not rely on either. The root `/` always
 * exists and is a directory: deleting or moving it is an InvalidPathError.
 *
 * Drivers trust the paths they get: `StorageBase` (./base.ts) validates every path once before a
 * driver sees it, and `createDriver` puts every driver behind it. Use a driver through it.
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
  /**
   * A token that changes whenever the file's content does (S3's ETag), when the driver has one:
   * with size and modTime, it tells whether a file is still the one seen before.
   */
  etag?: string
}

/**
 * A writer for one path. Bytes written are not guaranteed visible to readers until `commit`
 * (or `close`). A writer opened with `append` continues a file left by an earlier writer,
 * possibly from another process.
 *
 * `commit`, `close` and `cancel` each finish the writer. Once finished, `write` and `commit`
 * reject and `close` does nothing (so it is safe in a `finally`); `cancel` rejects after a
 * `commit` or `close`, since what they kept is no longer this writer's to discard, but still
 * discards after a `commit` that failed.
 */
export interface FileWriter {
  /** Bytes in the file so far, including those of earlier writers when appending. */
  readonly size: number
  /**
   * Appends a chunk; resolves when the driver can take more (backpressure). The driver keeps
   * no reference to the chunk once the promise resolves, so the caller may reuse it.
   */
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
  /** Bytes to read from `offset` (default: to the end); a range past the end stops at the end. */
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
  /**
   * A stream of a file's bytes from an offset; `offset` equal to the size gives an empty stream.
   * PathNotFoundError when absent or a directory, InvalidOffsetError past the end. The stream
   * reads what the file held when it was opened, even if the file is replaced meanwhile. Consume
   * or destroy it: it may hold a handle.
   */
  reader (path: string, options?: ReadOptions): Promise<Readable>
  /** A writer for a path; `append` continues an existing file (PathNotFoundError when absent). */
  writer (path: string, append: boolean): Promise<FileWriter>
  /** Facts about a file or directory. PathNotFoundError when absent. */
  stat (path: string): Promise<FileInfo>
  /**
   * Full paths of the direct children of a directory, files and directories, sorted.
   * PathNotFoundError when absent or a file.
   */
  list (path: string): Promise<string[]>
  /**
   * Moves a file, creating the destination's parents and replacing the destination atomically.
   * PathNotFoundError when the source is absent or a directory (object stores cannot rename a
   * prefix cheaply, so no driver offers it); InvalidPathError when either path is `/`.
   */
  move (sourcePath: string, destPath: string): Promise<void>
  /** Deletes a file or a whole subtree. PathNotFoundError when absent, InvalidPathError for `/`. */
  delete (path: string): Promise<void>
  /**
   * Every file and directory below a directory (not the directory itself), depth first: each
   * directory's children in sorted order, each child directory followed by its own subtree.
   * PathNotFoundError (on the first step) when absent or a file.
   */
  walk (path: string): AsyncIterable<FileInfo>
  /** A URL a client can fetch the file from directly, when the driver offers one. */
  redirectURL? (path: string): Promise<string | undefined>
  /**
   * Removes the driver's own temporary files below a directory (those of atomic writes cut short
   * by a crash) last changed before `olderThan`; resolves to how many it removed, 0 when the
   * directory is absent. Only drivers that write aside have it; such files are never listed.
   */
  removeTemporaryFiles? (path: string, olderThan: Date): Promise<number>
  /** Releases resources (connections, handles). */
  close? (): Promise<void>
}

export interface StorageDriverErrorOptions {
  cause?: unknown
  /** The backend's id of the failed request (S3's request id), for logs and support tickets. */
  requestId?: string
}

export class StorageDriverError extends Error {
  readonly driver: string
  readonly path: string
  readonly requestId: string | undefined

  constructor (driver: string, path: string, message: string, options?: StorageDriverErrorOptions) {
    super(`${driver}: ${message}: ${path}`, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'StorageDriverError'
    this.driver = driver
    this.path = path
    this.requestId = options?.requestId
  }
}

/**
 * The backend could not be reached or kept failing (network, 5xx, throttling) after the
 * driver's retries: the registry answers UNAVAILABLE (503) and the client may try again.
 * Any other StorageDriverError is a fault of the setup or the driver: UNKNOWN (500).
 */
export class StorageUnavailableError extends StorageDriverError {
  constructor (driver: string, path: string, message: string, options?: StorageDriverErrorOptions) {
    super(driver, path, message, options)
    this.name = 'StorageUnavailableError'
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

/** Whether a name can be one segment of a path: what drivers may list. */
export function isValidSegment (name: string): boolean {
  return segmentRegex.test(name) && name !== '.' && name !== '..'
}

/** One or more `/segment`s; `.` and `..` segments are refused apart (one test each, no split). */
const pathRegex = /^(?:\/[A-Za-z0-9._-]+)+$/
const dotSegmentRegex = /\/\.\.?(?:\/|$)/

/**
 * Paths are absolute, slash-separated, with segments of letters, digits, `.`, `_` and `-`;
 * no empty segments, no trailing slash, no `.` or `..` segments. `/` alone is the root.
 */
export function isValidPath (path: string): boolean {
  return path === '/' || (pathRegex.test(path) && !dotSegmentRegex.test(path))
}

/** Throws InvalidPathError unless the path is valid. */
export function assertPath (driver: string, path: string): string {
  if (!isValidPath(path)) throw new InvalidPathError(driver, path)
  return path
}

export function isPathNotFound (error: unknown): error is PathNotFoundError {
  return error instanceof PathNotFoundError
}

/**
 * The byte range `[start, end)` a read covers, from a file's size and the read options:
 * InvalidOffsetError when the offset is not an integer from 0 to the size; a length running
 * past the end stops at the end.
 */
export function readRange (driver: string, path: string, size: number, options: ReadOptions = {}): { start: number, end: number } {
  const start = options.offset ?? 0
  if (!Number.isSafeInteger(start) || start < 0 || start > size) throw new InvalidOffsetError(driver, path, start)
  const length = options.length
  if (length === undefined) return { start, end: size }
  if (!Number.isSafeInteger(length) || length < 0) throw new StorageDriverError(driver, path, `invalid length ${length}`)
  return { start, end: Math.min(size, start + length) }
}

/** Names (last segments) of a directory's children; none when the directory does not exist. */
export async function childNames (driver: StorageDriver, path: string): Promise<string[]> {
  try {
    return (await driver.list(path)).map((child) => child.slice(child.lastIndexOf('/') + 1))
  } catch (error) {
    if (isPathNotFound(error)) return []
    throw error
  }
}
