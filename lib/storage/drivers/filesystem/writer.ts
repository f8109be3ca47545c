/**
 * The filesystem driver's writer. Chunks are staged in a buffer and written in large pieces, one
 * write in flight while the next piece fills; past a bound a flush starts in the background. Its
 * lifecycle (what may follow a commit, a close or a cancel) is the shared one.
 */

import { rm, type FileHandle } from 'node:fs/promises'
import type { StorageDriverError } from '../../driver.js'
import { LifecycleWriter } from '../../writer-lifecycle.js'
import { NAME, driverError } from './host.js'

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

export class FilesystemWriter extends LifecycleWriter {
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
    path: string,
    private readonly full: string,
    private readonly handle: FileHandle,
    size: number
  ) {
    super(NAME, path)
    this.written = size
  }

  get size (): number {
    return this.written
  }

  /**
   * Copies the chunk into the staging buffer; a full buffer is written while the next fills.
   * Resolves once the chunk is copied and at most one write is in flight (backpressure).
   */
  protected writeChunk (chunk: Uint8Array): Promise<void> {
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

  protected async commitFile (): Promise<void> {
    try {
      await this.drain()
      await this.handle.sync()
    } catch (error) {
      throw driverError(error, this.path, 'commit')
    } finally {
      await this.handle.close().catch(() => {})
    }
  }

  protected async closeFile (): Promise<void> {
    try {
      await this.drain()
    } finally {
      await this.handle.close()
    }
  }

  protected async discardFile (wasOpen: boolean): Promise<void> {
    if (wasOpen) {
      await this.accepting
      await this.queue
      await this.flushing
      this.releaseBuffers()
      await this.handle.close()
    }
    await rm(this.full, { force: true })
  }
}
