/**
 * The storage driver contract over an S3 bucket. Driver path `/a/b` is the object
 * `<rootDirectory>/a/b`; directories are implicit prefixes. The tree is CNCF distribution's, and
 * what the registry publishes (blobs, links, manifests) are plain objects, so either registry
 * can serve a bucket the other wrote. Files that grew over several writers are segmented
 * (segments.ts) until a commit or a move joins them (multipart.ts).
 *
 * What the driver needs of the service: GET with Range, HEAD, PUT and CopyObject (each
 * replacing an object atomically), ListObjectsV2 with a delimiter and continuation tokens,
 * DeleteObjects, multipart uploads, and UploadPartCopy when available (else copies stream
 * through). It does not use conditional writes, object versions, tags or ACLs.
 */

import type { Readable } from 'node:stream'
import type { S3Client } from '@aws-sdk/client-s3'
import { GetObjectCommand } from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
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
} from '../../driver.js'
import { isInvalidRange } from './errors.js'
import { Multipart } from './multipart.js'
import { DRIVER_NAME, S3Objects, emptyStream } from './objects.js'
import { S3_MIN_PART_SIZE, createClient, settingsOf, type S3DriverOptions, type S3Settings } from './options.js'
import { fileOfSegment, infoOf, type Segment } from './segments.js'
import { S3Writer } from './writer.js'

function childPath (parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`
}

/** Orders paths depth first with siblings sorted: `/` sorts before every path character. */
function walkOrder (a: string, b: string): number {
  const x = a.replaceAll('/', '\0')
  const y = b.replaceAll('/', '\0')
  return x < y ? -1 : x > y ? 1 : 0
}

export class S3Driver implements StorageDriver {
  readonly name = DRIVER_NAME
  readonly minChunkSize = S3_MIN_PART_SIZE
  readonly client: S3Client
  readonly bucket: string
  readonly partSize: number
  private readonly settings: S3Settings
  private readonly objects: S3Objects
  private readonly multipart: Multipart

  constructor (options: S3DriverOptions) {
    this.settings = settingsOf(options)
    this.client = createClient(options)
    this.bucket = this.settings.bucket
    this.partSize = this.settings.partSize
    this.objects = new S3Objects(this.client, this.settings)
    this.multipart = new Multipart(this.objects)
  }

  /** The object key of a file path. */
  key (path: string): string {
    assertPath(this.name, path)
    return path === '/' ? this.settings.prefix : this.settings.prefix + path.slice(1)
  }

  /** The key prefix of everything below a directory path. */
  private dirPrefix (path: string): string {
    return path === '/' ? this.settings.prefix : `${this.key(path)}/`
  }

  /** A driver error for an SDK failure: PathNotFoundError for a missing key, UNAVAILABLE-class for transient ones. */
  failure (error: unknown, path: string, operation: string): StorageDriverError {
    return this.objects.failure(error, path, operation)
  }

  async getContent (path: string): Promise<Buffer> {
    const key = this.key(path)
    if (path === '/') throw new PathNotFoundError(this.name, path)
    const response = await this.objects.get(path, key)
    const info = infoOf(response.ContentLength, response.LastModified, response.Metadata)
    if (!info.segmented) return await this.objects.readBody(path, response)
    ;(response.Body as Readable).destroy()
    const chunks: Buffer[] = []
    for await (const chunk of this.objects.segmentedStream(path, await this.objects.segmentsOf(path, key), 0, info.size)) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks)
  }

  async putContent (path: string, content: Uint8Array | string): Promise<void> {
    const key = this.key(path)
    if (path === '/') throw new StorageDriverError(this.name, path, 'is a directory')
    await this.objects.put(path, key, typeof content === 'string' ? Buffer.from(content, 'utf8') : content)
  }

  async reader (path: string, options?: ReadOptions): Promise<Readable> {
    const key = this.key(path)
    if (path === '/') throw new PathNotFoundError(this.name, path)
    // Checks the offset and length before any request; the size is known only from the answer.
    readRange(this.name, path, Number.MAX_SAFE_INTEGER, options)
    const start = options?.offset ?? 0
    const length = options?.length
    if (start === 0 && length === undefined) {
      // One GET: the stream is one version of the object, whatever replaces it meanwhile.
      const response = await this.objects.get(path, key)
      const info = infoOf(response.ContentLength, response.LastModified, response.Metadata)
      if (!info.segmented) return response.Body as Readable
      ;(response.Body as Readable).destroy()
      return this.objects.segmentedStream(path, await this.objects.segmentsOf(path, key), 0, info.size)
    }
    if (length !== 0) {
      try {
        const response = await this.client.send(new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Range: `bytes=${start}-${length === undefined ? '' : start + length - 1}`
        }))
        const info = infoOf(response.ContentLength, response.LastModified, response.Metadata)
        if (!info.segmented) return response.Body as Readable
        ;(response.Body as Readable).destroy()
        return await this.readSegmented(path, key, info.size, options)
      } catch (error) {
        // Past the end of the object (or of an index): the size decides below.
        if (!isInvalidRange(error)) throw this.failure(error, path, 'read')
      }
    }
    const info = await this.objects.head(path, key)
    if (info === undefined) throw new PathNotFoundError(this.name, path)
    if (info.segmented) return await this.readSegmented(path, key, info.size, options)
    const range = readRange(this.name, path, info.size, options)
    if (range.start !== range.end) {
      // The object grew between the two requests: read it at its new size.
      return await this.objects.openRange(path, key, range.start, range.end, info.size)
    }
    return emptyStream()
  }

  private async readSegmented (path: string, key: string, size: number, options?: ReadOptions): Promise<Readable> {
    const range = readRange(this.name, path, size, options)
    if (range.start === range.end) return emptyStream()
    return this.objects.segmentedStream(path, await this.objects.segmentsOf(path, key), range.start, range.end)
  }

  async writer (path: string, append: boolean): Promise<FileWriter> {
    const key = this.key(path)
    if (!append) {
      if (path === '/') throw new StorageDriverError(this.name, path, 'is a directory')
      return new S3Writer(this.objects, this.multipart, path, key, [], undefined)
    }
    if (path === '/') throw new PathNotFoundError(this.name, path)
    const info = await this.objects.head(path, key)
    if (info === undefined) throw new PathNotFoundError(this.name, path)
    let segments: Segment[]
    if (info.segmented) segments = await this.objects.segmentsOf(path, key)
    else segments = info.size === 0 ? [] : [{ key, size: info.size }]
    // A short last segment cannot stay in the middle of the file: the writer rewrites it.
    const last = segments.at(-1)
    const tail = last !== undefined && last.size < S3_MIN_PART_SIZE ? last : undefined
    return new S3Writer(this.objects, this.multipart, path, key, tail === undefined ? segments : segments.slice(0, -1), tail)
  }

  async stat (path: string): Promise<FileInfo> {
    const key = this.key(path)
    if (path === '/') return { path, size: 0, modTime: new Date(), isDir: true }
    const info = await this.objects.head(path, key)
    if (info !== undefined) {
      return { path, size: info.size, modTime: info.modTime, isDir: false, ...(info.etag === undefined ? {} : { etag: info.etag }) }
    }
    const first = await this.objects.firstBelow(path, `${key}/`)
    if (first === undefined) throw new PathNotFoundError(this.name, path)
    return { path, size: 0, modTime: first.modTime, isDir: true }
  }

  async list (path: string): Promise<string[]> {
    const names = await this.objects.childNames(path, this.dirPrefix(path))
    const visible = [...names].filter(isValidSegment).sort()
    if (visible.length === 0 && path !== '/') throw new PathNotFoundError(this.name, path)
    return visible.map((name) => childPath(path, name))
  }

  async * walk (path: string): AsyncGenerator<FileInfo> {
    const prefix = this.dirPrefix(path)
    // One flat listing (a request per 1,000 keys, not one per directory), ordered here: S3
    // sorts `a-b` before `a/x`, the walk wants `a` and its subtree first.
    const entries = new Map<string, FileInfo>()
    const segmented = new Set<string>()
    for await (const page of this.objects.below(path, prefix)) {
      for (const object of page) {
        const names = object.key.slice(prefix.length).split('/')
        const last = names.at(-1) as string
        if (!names.every(isValidSegment)) {
          const file = fileOfSegment(last)
          if (file !== undefined && names.slice(0, -1).every(isValidSegment)) {
            segmented.add(childPath(path, [...names.slice(0, -1), file].join('/')))
          }
          continue
        }
        let dir = path
        for (const name of names.slice(0, -1)) {
          dir = childPath(dir, name)
          const known = entries.get(dir)
          if (known === undefined || !known.isDir) entries.set(dir, { path: dir, size: 0, modTime: object.modTime, isDir: true })
          else if (object.modTime > known.modTime) known.modTime = object.modTime
        }
        const file = childPath(dir, last)
        if (!entries.has(file)) entries.set(file, { path: file, size: object.size, modTime: object.modTime, isDir: false })
      }
    }
    if (entries.size === 0 && path !== '/') throw new PathNotFoundError(this.name, path)
    for (const info of [...entries.values()].sort((a, b) => walkOrder(a.path, b.path))) {
      if (!info.isDir && segmented.has(info.path)) {
        // The listing gives the index's size: the file's is in its metadata.
        const head = await this.objects.head(info.path, this.key(info.path))
        if (head === undefined) continue
        info.size = head.size
      }
      yield info
    }
  }

  /**
   * A copy, then a delete of the source. S3 has no rename, so a move is two steps, and the
   * copy publishes: once it is done the move has happened, whatever follows. A failure to
   * delete the source (or segments a former destination left) is reported, not thrown, so
   * the caller never sees an error over a published file; the source is then left to whoever
   * owns it (an upload's data goes with its upload, or with the upload purge).
   */
  async move (sourcePath: string, destPath: string): Promise<void> {
    const source = this.key(sourcePath)
    const dest = this.key(destPath)
    if (sourcePath === '/') throw new InvalidPathError(this.name, sourcePath)
    if (destPath === '/') throw new InvalidPathError(this.name, destPath)
    const info = await this.objects.head(sourcePath, source)
    if (info === undefined) throw new PathNotFoundError(this.name, sourcePath)
    if (sourcePath === destPath) return
    const segments = info.segmented ? await this.objects.segmentsOf(sourcePath, source) : [{ key: source, size: info.size }]
    await this.multipart.join(destPath, dest, segments)
    try {
      await this.objects.deleteKeys(destPath, this.objects.segmentKeys(destPath, dest))
    } catch (error) {
      this.objects.warn(destPath, error, 'delete', 'moved, but could not delete the segments the former file left')
    }
    try {
      await this.objects.deleteKeys(sourcePath, this.objects.fileKeys(sourcePath, source))
    } catch (error) {
      this.objects.warn(sourcePath, error, 'delete', 'moved, but could not delete the source')
    }
  }

  async delete (path: string): Promise<void> {
    const key = this.key(path)
    if (path === '/') throw new InvalidPathError(this.name, path)
    const file = await this.objects.head(path, key)
    let deleted = 0
    if (file !== undefined) deleted += await this.objects.deleteKeys(path, this.objects.fileKeys(path, key))
    deleted += await this.objects.deleteKeys(path, this.objects.keysBelow(path, `${key}/`))
    if (file === undefined && deleted === 0) throw new PathNotFoundError(this.name, path)
  }

  /**
   * Aborts the multipart uploads below the root started before `olderThan` (left by processes
   * that died mid-write); returns how many. Where the bucket has no lifecycle rule
   * (AbortIncompleteMultipartUpload) to do it, run it now and then, with a margin of a day.
   */
  async purgeMultipartUploads (olderThan: Date): Promise<number> {
    return await this.removeTemporaryFiles('/', olderThan)
  }

  /** The driver contract's name for the same: unfinished multipart uploads are this driver's temporary files. */
  async removeTemporaryFiles (path: string, olderThan: Date): Promise<number> {
    return await this.multipart.purge(path, this.dirPrefix(path), olderThan)
  }

  async redirectURL (path: string): Promise<string | undefined> {
    if (!this.settings.redirect) return undefined
    return await getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.key(path) }), {
      expiresIn: this.settings.redirectExpirySeconds
    })
  }

  async close (): Promise<void> {
    this.client.destroy()
  }
}
