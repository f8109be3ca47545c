/**
 * The bucket's objects, one S3 request each: HEAD, GET (whole or a range), PUT, listings page by
 * page, batched deletes, and the reads and writes of segmented files (segments.ts). Every
 * failure becomes a driver error for the path the caller works on.
 */

import { Readable } from 'node:stream'
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type GetObjectCommandOutput,
  type S3Client,
  type ServerSideEncryption,
  type StorageClass
} from '@aws-sdk/client-s3'
import { StorageDriverError } from '../../driver.js'
import { driverError, isNotFound } from './errors.js'
import type { S3Settings } from './options.js'
import { decodeIndex, encodeIndex, infoOf, segmentPrefix, type ObjectInfo, type Segment } from './segments.js'

export const DRIVER_NAME = 's3'
/** Objects deleted per DeleteObjects request (S3's limit). */
const DELETE_BATCH = 1000

export interface ListedObject {
  key: string
  size: number
  modTime: Date
}

export interface WriteParams {
  StorageClass?: StorageClass
  ServerSideEncryption?: ServerSideEncryption
  SSEKMSKeyId?: string
}

export function emptyStream (): Readable {
  return Readable.from([], { objectMode: false })
}

export class S3Objects {
  readonly bucket: string
  readonly writeParams: WriteParams

  constructor (readonly client: S3Client, readonly settings: S3Settings) {
    this.bucket = settings.bucket
    this.writeParams = {
      ...(settings.storageClass === undefined ? {} : { StorageClass: settings.storageClass as StorageClass }),
      ...(settings.serverSideEncryption === undefined ? {} : { ServerSideEncryption: settings.serverSideEncryption }),
      ...(settings.kmsKeyId === undefined ? {} : { SSEKMSKeyId: settings.kmsKeyId })
    }
  }

  failure (error: unknown, path: string, operation: string): StorageDriverError {
    return driverError(DRIVER_NAME, error, path, operation)
  }

  async send<T> (path: string, operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (error) {
      throw this.failure(error, path, operation)
    }
  }

  /** Reports a best-effort step that failed (its leftovers cost storage only). */
  warn (path: string, error: unknown, operation: string, message: string): void {
    this.settings.log?.warn({ driver: DRIVER_NAME, path, err: this.failure(error, path, operation) }, message)
  }

  /** HEAD of a key; undefined when absent. */
  async head (path: string, key: string): Promise<ObjectInfo | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }))
      const info = infoOf(head.ContentLength, head.LastModified, head.Metadata)
      if (head.ETag !== undefined) info.etag = head.ETag
      return info
    } catch (error) {
      if (isNotFound(error)) return undefined
      throw this.failure(error, path, 'stat')
    }
  }

  /** A GET, whole or of a `Range` header's bytes. */
  async get (path: string, key: string, range?: string): Promise<GetObjectCommandOutput> {
    return await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, ...(range === undefined ? {} : { Range: range }) }))
      .catch((error: unknown) => { throw this.failure(error, path, 'read') })
  }

  async getBytes (path: string, key: string): Promise<Buffer> {
    return await this.readBody(path, await this.get(path, key))
  }

  async readBody (path: string, response: GetObjectCommandOutput): Promise<Buffer> {
    const chunks: Buffer[] = []
    try {
      for await (const chunk of response.Body as Readable) chunks.push(chunk as Buffer)
    } catch (error) {
      throw this.failure(error, path, 'read')
    }
    return Buffer.concat(chunks)
  }

  /** Streams a byte range `[start, end)` of one object of `whole` bytes (a GET without Range when it is all). */
  async openRange (path: string, key: string, start: number, end: number, whole?: number): Promise<Readable> {
    if (start === end) return emptyStream()
    const response = await this.get(path, key, start === 0 && end === whole ? undefined : `bytes=${start}-${end - 1}`)
    return response.Body as Readable
  }

  async put (path: string, key: string, body: Uint8Array, metadata?: Record<string, string>): Promise<void> {
    await this.send(path, 'write', () => this.client.send(new PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      Body: body,
      ContentLength: body.byteLength,
      ...(metadata === undefined ? {} : { Metadata: metadata }),
      ...this.writeParams
    })))
  }

  /** Every object below a prefix, page by page (S3 pages hold 1,000 keys at most). */
  async * below (path: string, prefix: string): AsyncGenerator<ListedObject[]> {
    let token: string | undefined
    do {
      const page = await this.send(path, 'list', () => this.client.send(new ListObjectsV2Command({
        Bucket: this.bucket, Prefix: prefix, ...(token === undefined ? {} : { ContinuationToken: token })
      })))
      yield (page.Contents ?? []).flatMap((object) => object.Key === undefined
        ? []
        : [{ key: object.Key, size: object.Size ?? 0, modTime: object.LastModified ?? new Date() }])
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (token !== undefined)
  }

  /** The names right below a prefix (objects and common prefixes, without the prefix or a trailing `/`). */
  async childNames (path: string, prefix: string): Promise<Set<string>> {
    const names = new Set<string>()
    let token: string | undefined
    do {
      const page = await this.send(path, 'list', () => this.client.send(new ListObjectsV2Command({
        Bucket: this.bucket, Prefix: prefix, Delimiter: '/', ...(token === undefined ? {} : { ContinuationToken: token })
      })))
      for (const common of page.CommonPrefixes ?? []) {
        if (common.Prefix !== undefined) names.add(common.Prefix.slice(prefix.length, -1))
      }
      for (const object of page.Contents ?? []) {
        if (object.Key !== undefined) names.add(object.Key.slice(prefix.length))
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (token !== undefined)
    return names
  }

  /** The first object below a prefix, if any. */
  async firstBelow (path: string, prefix: string): Promise<ListedObject | undefined> {
    const listed = await this.send(path, 'stat', () => this.client.send(new ListObjectsV2Command({
      Bucket: this.bucket, Prefix: prefix, MaxKeys: 1
    })))
    const first = listed.Contents?.[0]
    if (first?.Key === undefined) return undefined
    return { key: first.Key, size: first.Size ?? 0, modTime: first.LastModified ?? new Date() }
  }

  async * keysBelow (path: string, prefix: string): AsyncGenerator<string[]> {
    for await (const page of this.below(path, prefix)) yield page.map((object) => object.key)
  }

  /** The keys of a file's segments, page by page. */
  segmentKeys (path: string, key: string): AsyncGenerator<string[]> {
    return this.keysBelow(path, segmentPrefix(key))
  }

  /** A file's key and its segments' keys. */
  async * fileKeys (path: string, key: string): AsyncGenerator<string[]> {
    yield [key]
    yield * this.segmentKeys(path, key)
  }

  /** Deletes keys in batches (one DeleteObjects per 1,000); returns how many were listed. */
  async deleteKeys (path: string, pages: AsyncIterable<string[]> | Iterable<string[]>): Promise<number> {
    let count = 0
    for await (const page of pages) {
      for (let i = 0; i < page.length; i += DELETE_BATCH) {
        const batch = page.slice(i, i + DELETE_BATCH)
        count += batch.length
        const result = await this.send(path, 'delete', () => this.client.send(new DeleteObjectsCommand({
          Bucket: this.bucket, Delete: { Objects: batch.map((key) => ({ Key: key })), Quiet: true }
        })))
        const failed = result.Errors?.[0]
        if (failed !== undefined) {
          throw new StorageDriverError(DRIVER_NAME, path, `delete failed (${failed.Code ?? 'error'})`)
        }
      }
    }
    return count
  }

  /** The segments of a segmented file, from its index object. */
  async segmentsOf (path: string, key: string): Promise<Segment[]> {
    const segments = decodeIndex(key, await this.getBytes(path, key))
    if (segments === undefined) throw new StorageDriverError(DRIVER_NAME, path, 'unreadable segment index')
    return segments
  }

  /** Writes the index of a segmented file at its key. */
  async writeIndex (path: string, key: string, segments: Segment[]): Promise<void> {
    const { body, metadata } = encodeIndex(key, segments)
    await this.put(path, key, body, metadata)
  }

  /** Streams the segments of a segmented file over `[start, end)`, one ranged GET after another. */
  segmentedStream (path: string, segments: Segment[], start: number, end: number): Readable {
    const objects = this
    async function * pieces (): AsyncGenerator<Buffer> {
      let base = 0
      for (const segment of segments) {
        const from = Math.max(start, base)
        const to = Math.min(end, base + segment.size)
        base += segment.size
        if (from >= to) continue
        const offset = base - segment.size
        const body = await objects.openRange(path, segment.key, from - offset, to - offset, segment.size)
        try {
          for await (const chunk of body) yield chunk as Buffer
        } catch (error) {
          throw objects.failure(error, path, 'read')
        } finally {
          body.destroy()
        }
      }
    }
    return Readable.from(pieces(), { objectMode: false })
  }
}
