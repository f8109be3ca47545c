/**
 * Multipart uploads: a writer's parts, and joins, which write the concatenation of objects as
 * one new object with server-side part copies (UploadPartCopy). A service that cannot copy
 * parts (it answers NotImplemented) is noticed once, and its copies stream through the
 * registry instead. Single objects up to the copy threshold are copied with one CopyObject.
 *
 * Every upload that does not complete is aborted. An abort that fails leaves parts the bucket
 * keeps (and bills) until a lifecycle rule (AbortIncompleteMultipartUpload) removes them: they
 * are reported through the driver's log.
 */

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart
} from '@aws-sdk/client-s3'
import type { Readable } from 'node:stream'
import { StorageDriverError } from '../../driver.js'
import { isNotImplemented } from './errors.js'
import { DRIVER_NAME, type S3Objects } from './objects.js'
import { MAX_PART_SIZE, S3_MIN_PART_SIZE } from './options.js'
import { totalSize, type Segment } from './segments.js'

export type { CompletedPart }

/** S3's most parts in one upload. */
const MAX_PARTS = 10_000

function copySource (bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`
}

/** Splits `size` bytes into copy ranges of at least `chunk` (and at most 5 GiB) each. */
export function copyRanges (size: number, chunk: number): Array<{ start: number, end: number }> {
  const count = Math.max(1, Math.ceil(size / MAX_PART_SIZE), Math.floor(size / chunk))
  const ranges: Array<{ start: number, end: number }> = []
  for (let i = 0; i < count; i++) {
    ranges.push({ start: Math.floor(size * i / count), end: Math.floor(size * (i + 1) / count) })
  }
  return ranges
}

/** Runs tasks with at most `limit` at once; rejects with the first failure once all settled. */
async function runLimited<T> (tasks: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const results: T[] = new Array<T>(tasks.length)
  let next = 0
  let failure: unknown
  const worker = async (): Promise<void> => {
    while (next < tasks.length && failure === undefined) {
      const index = next++
      try {
        results[index] = await (tasks[index] as () => Promise<T>)()
      } catch (error) {
        failure ??= error
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker))
  if (failure !== undefined) throw failure
  return results
}

export class Multipart {
  /** False once the service answered that it cannot copy parts server side (then parts stream through). */
  private partCopy = true

  constructor (private readonly objects: S3Objects) {}

  async create (path: string, key: string): Promise<string> {
    const { client, bucket, writeParams } = this.objects
    const created = await this.objects.send(path, 'write', () => client.send(new CreateMultipartUploadCommand({
      Bucket: bucket, Key: key, ...writeParams
    })))
    if (created.UploadId === undefined) throw new StorageDriverError(DRIVER_NAME, path, 'no upload id in the answer')
    return created.UploadId
  }

  async uploadPart (path: string, key: string, uploadId: string, partNumber: number, body: Uint8Array | Readable, length: number): Promise<CompletedPart> {
    const { client, bucket } = this.objects
    const result = await this.objects.send(path, 'write', () => client.send(new UploadPartCommand({
      Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: body, ContentLength: length
    })))
    return { PartNumber: partNumber, ETag: result.ETag }
  }

  async complete (path: string, key: string, uploadId: string, parts: CompletedPart[]): Promise<void> {
    const { client, bucket } = this.objects
    await this.objects.send(path, 'write', () => client.send(new CompleteMultipartUploadCommand({
      Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts }
    })))
  }

  /** Best effort: an upload left behind costs storage only, and is reported. */
  async abort (path: string, key: string, uploadId: string): Promise<void> {
    const { client, bucket } = this.objects
    try {
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
    } catch (error) {
      this.objects.warn(path, error, 'abort', 'could not abort a multipart upload')
    }
  }

  /**
   * Aborts the multipart uploads below `prefix` started before `olderThan`: those of processes
   * that died mid-write, which nothing else removes on services without lifecycle rules (Swift's
   * s3api has none). Returns how many it aborted.
   */
  async purge (path: string, prefix: string, olderThan: Date): Promise<number> {
    const { client, bucket } = this.objects
    let aborted = 0
    let keyMarker: string | undefined
    let uploadIdMarker: string | undefined
    do {
      const page = await this.objects.send(path, 'list', () => client.send(new ListMultipartUploadsCommand({
        Bucket: bucket,
        Prefix: prefix,
        ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
        ...(uploadIdMarker === undefined ? {} : { UploadIdMarker: uploadIdMarker })
      }))).catch((error: unknown) => {
        // A service that cannot list them cannot have them purged this way (its lifecycle rules must).
        if (error instanceof Error && isNotImplemented(error.cause)) return undefined
        throw error
      })
      if (page === undefined) return aborted
      for (const upload of page.Uploads ?? []) {
        if (upload.Key === undefined || upload.UploadId === undefined || upload.Initiated === undefined) continue
        if (upload.Initiated.getTime() >= olderThan.getTime()) continue
        await this.objects.send(path, 'abort', () => client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId })))
        aborted++
      }
      const more = page.IsTruncated === true
      keyMarker = more ? page.NextKeyMarker : undefined
      uploadIdMarker = more ? page.NextUploadIdMarker : undefined
    } while (keyMarker !== undefined)
    return aborted
  }

  /** Copies `[start, end)` of an object as a part; streams it through when the service cannot copy parts. */
  private async copyPart (path: string, key: string, uploadId: string, partNumber: number, sourceKey: string, start: number, end: number): Promise<CompletedPart> {
    const { client, bucket } = this.objects
    if (this.partCopy) {
      try {
        const result = await client.send(new UploadPartCopyCommand({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          CopySource: copySource(bucket, sourceKey),
          CopySourceRange: `bytes=${start}-${end - 1}`
        }))
        return { PartNumber: partNumber, ETag: result.CopyPartResult?.ETag }
      } catch (error) {
        if (!isNotImplemented(error)) throw this.objects.failure(error, path, 'copy')
        // Parts copied side by side may all learn it at once: one warning.
        if (this.partCopy) this.objects.settings.log?.warn({ driver: DRIVER_NAME }, 'the S3 service cannot copy parts: copies stream through the registry')
        this.partCopy = false
      }
    }
    const body = await this.objects.openRange(path, sourceKey, start, end)
    return await this.uploadPart(path, key, uploadId, partNumber, body, end - start)
  }

  /**
   * Writes the concatenation of segments as one plain object at `destKey`, copying server
   * side. The object appears whole or not at all (a CopyObject, or a multipart upload that
   * completes or is aborted).
   */
  async join (path: string, destKey: string, segments: Segment[]): Promise<void> {
    const { client, bucket, writeParams, settings } = this.objects
    const only = segments[0]
    if (only === undefined) {
      await this.objects.put(path, destKey, new Uint8Array(0))
      return
    }
    if (segments.length === 1 && only.size <= settings.copyThreshold) {
      await this.objects.send(path, 'copy', () => client.send(new CopyObjectCommand({
        Bucket: bucket, Key: destKey, CopySource: copySource(bucket, only.key), ...writeParams
      })))
      return
    }
    const tasks: Array<(uploadId: string) => Promise<CompletedPart>> = []
    for (const [index, segment] of segments.entries()) {
      // Only the last segment may be short: S3 refuses short parts anywhere else.
      if (index < segments.length - 1 && segment.size < S3_MIN_PART_SIZE) {
        throw new StorageDriverError(DRIVER_NAME, path, 'a segment shorter than 5 MiB before the end')
      }
      for (const range of copyRanges(segment.size, settings.copyChunk)) {
        const partNumber = tasks.length + 1
        tasks.push(async (uploadId) => await this.copyPart(path, destKey, uploadId, partNumber, segment.key, range.start, range.end))
      }
    }
    if (tasks.length > MAX_PARTS) throw new StorageDriverError(DRIVER_NAME, path, `too many parts to copy (${totalSize(segments)} bytes)`)
    const upload = await this.create(path, destKey)
    try {
      const parts = await runLimited(tasks.map((task) => async () => await task(upload)), settings.copyConcurrency)
      await this.complete(path, destKey, upload, parts)
    } catch (error) {
      await this.abort(path, destKey, upload)
      throw error
    }
  }
}
