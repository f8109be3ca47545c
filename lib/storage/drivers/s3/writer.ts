/**
 * The S3 driver's appending writer. S3 objects cannot be appended to, and every part of a
 * multipart upload but the last must be at least 5 MiB. A writer session streams its bytes into
 * a multipart upload, in parts of `partSize` buffered in memory (two at most: one filling, one
 * uploading). `close` leaves the bytes readable and lets any process append, so a file that grew
 * over several sessions is kept as segments (segments.ts). A session appending to a file whose
 * last segment is short reads that segment back into its buffer and rewrites it, so a chunked
 * upload costs no more than its bytes. `commit` joins everything into one plain object.
 * Nothing of a writer lives only in memory once `close` returns: the state is the objects in
 * the bucket.
 */

import type { CompletedPart } from '@aws-sdk/client-s3'
import type { StorageDriverError } from '../../driver.js'
import { LifecycleWriter } from '../../writer-lifecycle.js'
import type { Multipart } from './multipart.js'
import { DRIVER_NAME, type S3Objects } from './objects.js'
import { newSegmentKey, totalSize, type Segment } from './segments.js'

/**
 * One writer session. Its bytes (after the rewritten short tail, if any) go to `target`: the
 * file's own key when nothing is kept before them, else a new segment.
 */
export class S3Writer extends LifecycleWriter {
  private written = 0
  private readonly target: string
  private part: Buffer | undefined
  private filled = 0
  private tailLoaded = false
  private uploadId: string | undefined
  private readonly parts: CompletedPart[] = []
  /** The part upload in flight, if any: at most one, so a writer holds two parts at most. */
  private inflight: Promise<void> = Promise.resolve()
  /** Writes run one after another, even when a caller does not wait for the previous one. */
  private queue: Promise<void> = Promise.resolve()
  private failure: StorageDriverError | undefined
  private readonly baseSize: number
  /** No earlier bytes: a writer without append, or appending to an empty file. */
  private readonly fresh: boolean

  constructor (
    private readonly objects: S3Objects,
    private readonly multipart: Multipart,
    path: string,
    private readonly key: string,
    /** Segments kept as they are, before this session's bytes. */
    private readonly base: Segment[],
    /** A short last segment, read back and written again ahead of the new bytes. */
    private readonly tail: Segment | undefined
  ) {
    super(DRIVER_NAME, path)
    this.baseSize = totalSize(base)
    this.target = base.length === 0 ? key : newSegmentKey(key)
    this.fresh = base.length === 0 && tail === undefined
  }

  get size (): number {
    return this.baseSize + (this.tail?.size ?? 0) + this.written
  }

  private get partSize (): number {
    // Parts grow past 1,000, so that a file written in one session can reach S3's 10,000 parts.
    return this.objects.settings.partSize * (1 + Math.floor(this.parts.length / 1000))
  }

  protected async writeChunk (chunk: Uint8Array): Promise<void> {
    // Copied now: the caller may reuse the chunk as soon as this returns.
    const copy = Buffer.from(chunk)
    this.written += copy.byteLength
    const run = this.queue.then(async () => {
      if (this.failure !== undefined) throw this.failure
      try {
        await this.loadTail()
        await this.append(copy)
      } catch (error) {
        this.failure = this.objects.failure(error, this.path, 'write')
        throw this.failure
      }
    })
    this.queue = run.catch(() => {})
    return run
  }

  private async loadTail (): Promise<void> {
    if (this.tailLoaded) return
    this.tailLoaded = true
    if (this.tail !== undefined) await this.append(await this.objects.getBytes(this.path, this.tail.key))
  }

  private async append (bytes: Buffer): Promise<void> {
    let offset = 0
    while (offset < bytes.byteLength) {
      this.part ??= Buffer.allocUnsafe(this.partSize)
      const copied = bytes.copy(this.part, this.filled, offset)
      this.filled += copied
      offset += copied
      if (this.filled === this.part.byteLength) await this.flush()
    }
  }

  /** Starts uploading the full part; waits for the one before it first. */
  private async flush (): Promise<void> {
    const part = this.part as Buffer
    const length = this.filled
    this.part = undefined
    this.filled = 0
    await this.inflight
    if (this.failure !== undefined) throw this.failure
    this.uploadId ??= await this.multipart.create(this.path, this.target)
    const uploadId = this.uploadId
    const partNumber = this.parts.length + 1
    this.parts.push({ PartNumber: partNumber })
    const upload = this.multipart.uploadPart(this.path, this.target, uploadId, partNumber, part.subarray(0, length), length)
      .then((done) => { this.parts[partNumber - 1] = done }, (error: unknown) => {
        this.failure ??= this.objects.failure(error, this.path, 'write')
      })
    this.inflight = upload
  }

  /** Waits for every write and upload; the session's bytes are then at `target`. */
  private async persistSession (): Promise<number> {
    await this.queue
    await this.inflight
    if (this.failure !== undefined) throw this.failure
    const bytes = (this.tail?.size ?? 0) + this.written
    const rest = this.part?.subarray(0, this.filled) ?? Buffer.alloc(0)
    this.part = undefined
    if (this.uploadId === undefined) {
      await this.objects.put(this.path, this.target, rest)
    } else {
      if (rest.byteLength > 0) this.parts.push(await this.multipart.uploadPart(this.path, this.target, this.uploadId, this.parts.length + 1, rest, rest.byteLength))
      await this.multipart.complete(this.path, this.target, this.uploadId, this.parts)
      this.uploadId = undefined
    }
    return bytes
  }

  /**
   * Makes the file this session's result: plain, or an index of segments. The last step that
   * changes what readers see (a join, or the index) decides: once it is done, clean-up failures
   * only leave unreferenced segments, which go with the file or its directory.
   */
  private async finish (joinSegments: boolean): Promise<void> {
    if (!this.fresh && this.written === 0) {
      // Nothing new: the file stays as it was (a segmented one is already whole to readers).
      await this.queue
      return
    }
    const bytes = await this.persistSession()
    if (this.target !== this.key) {
      const session: Segment = { key: this.target, size: bytes }
      let base = this.base
      const first = base[0]
      if (joinSegments) {
        await this.multipart.join(this.path, this.key, [...base, session])
        await this.dropGarbage(this.objects.segmentKeys(this.path, this.key))
        return
      }
      if (first !== undefined && first.key === this.key) {
        // The file was one plain object: it becomes the first segment, since its key takes the index.
        const moved: Segment = { key: newSegmentKey(this.key), size: first.size }
        await this.multipart.join(this.path, moved.key, [first])
        base = [moved, ...base.slice(1)]
      }
      await this.objects.writeIndex(this.path, this.key, [...base, session])
    }
    if (this.tail !== undefined && this.tail.key !== this.key) await this.dropGarbage([[this.tail.key]])
  }

  /** Deletes segments nothing refers to any more; a failure is reported, not thrown. */
  private async dropGarbage (pages: AsyncIterable<string[]> | Iterable<string[]>): Promise<void> {
    try {
      await this.objects.deleteKeys(this.path, pages)
    } catch (error) {
      this.objects.warn(this.path, error, 'delete', 'could not delete unreferenced segments (they go with the file)')
    }
  }

  protected async commitFile (): Promise<void> {
    try {
      await this.finish(true)
    } catch (error) {
      await this.abandon()
      throw this.objects.failure(error, this.path, 'commit')
    }
  }

  protected async closeFile (): Promise<void> {
    try {
      await this.finish(false)
    } catch (error) {
      // The file stays as the last writer left it; this session's bytes are lost.
      await this.abandon()
      throw this.objects.failure(error, this.path, 'close')
    }
  }

  protected async discardFile (wasOpen: boolean): Promise<void> {
    if (wasOpen) {
      await this.queue
      await this.abandon()
    }
    await this.objects.deleteKeys(this.path, [[this.key]])
    await this.objects.deleteKeys(this.path, this.objects.segmentKeys(this.path, this.key))
  }

  /** Drops this session's multipart upload, if one is open. */
  private async abandon (): Promise<void> {
    await this.inflight
    this.part = undefined
    if (this.uploadId !== undefined) {
      const uploadId = this.uploadId
      this.uploadId = undefined
      await this.multipart.abort(this.path, this.target, uploadId)
    }
  }
}
