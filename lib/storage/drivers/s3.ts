/**
 * A storage driver over an S3 bucket (AWS S3 or any S3-compatible service), on the AWS SDK v3.
 * Driver path `/a/b` is the object `<rootDirectory>/a/b`; directories are implicit prefixes.
 * The tree is CNCF distribution's and what the registry publishes (blobs, links, manifests)
 * are plain objects, so either registry can serve a bucket the other wrote.
 *
 * Appending writers. S3 objects cannot be appended to, and every part of a multipart upload but
 * the last must be at least 5 MiB. A writer streams its bytes into a multipart upload, in parts
 * of `partSize` buffered in memory (two at most). `close` must leave the bytes readable and
 * let any process append, so a closed file that grew over several writers is kept as
 * *segments*: completed objects named `<key>~<id>` (`~` is not a path character, so they are
 * never listed), and at `<key>` a small index object (marked by metadata) naming them. Every
 * segment but the last is at least 5 MiB; an appending writer reads a shorter last segment
 * back into its buffer and rewrites it, so a chunked upload costs no more than its bytes.
 * Reads of a segmented file stream its segments in turn; a move (how the registry publishes an
 * upload) or a commit with new bytes joins them into one plain object with server-side part
 * copies. Segments left by a file replaced in place go when the file or its directory is
 * deleted. Nothing of a writer lives only in memory once `close` returns: the state is the
 * objects in the bucket.
 */

import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type GetObjectCommandOutput,
  type S3ClientConfig,
  type ServerSideEncryption,
  type StorageClass
} from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import {
  InvalidPathError,
  PathNotFoundError,
  StorageDriverError,
  StorageUnavailableError,
  assertPath,
  isValidSegment,
  readRange,
  type FileInfo,
  type FileWriter,
  type ReadOptions,
  type StorageDriver
} from '../driver.js'

const MiB = 1024 * 1024
const GiB = 1024 * MiB
/** S3's smallest part (all but the last of an upload). */
export const S3_MIN_PART_SIZE = 5 * MiB
/** S3's largest part, and its largest single-request copy. */
const MAX_PART_SIZE = 5 * GiB
/** S3's most parts in one upload. */
const MAX_PARTS = 10_000
/** Objects deleted per DeleteObjects request (S3's limit). */
const DELETE_BATCH = 1000
/** User metadata marking an index object; its value is the file's size. */
const SEGMENTED_META = 'registry-segmented-size'
const SEGMENT_SEPARATOR = '~'

const NAME = 's3'

export interface S3DriverLogger {
  warn: (object: Record<string, unknown>, message: string) => void
}

export interface S3DriverOptions {
  bucket: string
  /** Default: `us-east-1` (or AWS_REGION through the SDK when unset there too). */
  region?: string
  /** Endpoint of an S3-compatible service, e.g. `http://127.0.0.1:9000`. */
  endpoint?: string
  /** Path-style URLs (`endpoint/bucket/key`), which most S3-compatible services need. */
  forcePathStyle?: boolean
  /** Static credentials; without them, the SDK's default chain (AWS_* variables, profiles, roles). */
  accessKeyId?: string
  secretAccessKey?: string
  sessionToken?: string
  /** Key prefix of the tree inside the bucket. */
  rootDirectory?: string
  /** Bytes per uploaded part, buffered in memory by each writer (default 10 MiB, at least 5 MiB). */
  partSize?: number
  storageClass?: string
  serverSideEncryption?: 'AES256' | 'aws:kms'
  /** KMS key for `aws:kms`. */
  kmsKeyId?: string
  /** Answer blob GETs with presigned URLs (a 307 from the registry) instead of streaming. */
  redirect?: boolean
  /** Lifetime of a presigned URL in seconds (default 1,200). */
  redirectExpirySeconds?: number
  /** Objects larger than this are copied in parts (default 32 MiB). */
  multipartCopyThresholdSize?: number
  /** Size of each part of a multipart copy (default 32 MiB, at least 5 MiB). */
  multipartCopyChunkSize?: number
  /** Parts copied at once (default 8). */
  multipartCopyMaxConcurrency?: number
  /** Attempts per request, retried with backoff on 5xx, throttling and network errors (default 4). */
  maxAttempts?: number
  /** Milliseconds to establish a connection (default 10,000). */
  connectionTimeoutMs?: number
  /** Milliseconds a connection may stay silent mid-request (default 60,000). */
  socketTimeoutMs?: number
  /** Where best-effort failures (an abort that did not go through) are reported. */
  log?: S3DriverLogger
}

interface Segment {
  key: string
  size: number
}

interface ObjectInfo {
  size: number
  modTime: Date
  /** Segments when the key holds an index. */
  segmented: boolean
  etag?: string
}

interface SegmentIndex {
  segments: Array<[string, number]>
}

interface AwsErrorShape {
  name?: unknown
  code?: unknown
  message?: unknown
  $retryable?: unknown
  $metadata?: { httpStatusCode?: number, requestId?: string, extendedRequestId?: string }
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH',
  'ENETUNREACH', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE'
])
const TRANSIENT_NAMES = new Set([
  'TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'SlowDown', 'Throttling', 'ThrottlingException',
  'ServiceUnavailable', 'InternalError', 'TooManyRequestsException', 'RequestThrottled'
])

function shapeOf (error: unknown): AwsErrorShape {
  return typeof error === 'object' && error !== null ? error as AwsErrorShape : {}
}

function statusOf (error: unknown): number | undefined {
  return shapeOf(error).$metadata?.httpStatusCode
}

function nameOf (error: unknown): string {
  const { name, code } = shapeOf(error)
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return code
  return typeof name === 'string' ? name : 'Error'
}

function isNotFound (error: unknown): boolean {
  const name = nameOf(error)
  return name === 'NoSuchKey' || name === 'NotFound'
}

function isInvalidRange (error: unknown): boolean {
  return nameOf(error) === 'InvalidRange' || statusOf(error) === 416
}

function isNotImplemented (error: unknown): boolean {
  return nameOf(error) === 'NotImplemented' || statusOf(error) === 501
}

function isTransient (error: unknown): boolean {
  const status = statusOf(error)
  if (status !== undefined && (status >= 500 || status === 429)) return true
  const { code, $retryable } = shapeOf(error)
  if ($retryable !== undefined) return true
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true
  return TRANSIENT_NAMES.has(nameOf(error))
}

function emptyStream (): Readable {
  return Readable.from([], { objectMode: false })
}

function childPath (parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`
}

/** Orders paths depth first with siblings sorted: `/` sorts before every path character. */
function walkOrder (a: string, b: string): number {
  const x = a.replaceAll('/', '\0')
  const y = b.replaceAll('/', '\0')
  return x < y ? -1 : x > y ? 1 : 0
}

function copySource (bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`
}

/** Splits `size` bytes into copy ranges of at least `chunk` (and at most 5 GiB) each. */
function copyRanges (size: number, chunk: number): Array<{ start: number, end: number }> {
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

export class S3Driver implements StorageDriver {
  readonly name = NAME
  readonly minChunkSize = S3_MIN_PART_SIZE
  readonly client: S3Client
  readonly bucket: string
  readonly partSize: number
  private readonly prefix: string
  private readonly storageClass: StorageClass | undefined
  private readonly sse: ServerSideEncryption | undefined
  private readonly kmsKeyId: string | undefined
  private readonly redirect: boolean
  private readonly redirectExpiry: number
  private readonly copyThreshold: number
  private readonly copyChunk: number
  private readonly copyConcurrency: number
  private readonly log: S3DriverLogger | undefined
  /** False once the service answered that it cannot copy parts server side (then parts stream through). */
  private partCopy = true

  constructor (options: S3DriverOptions) {
    if (typeof options?.bucket !== 'string' || options.bucket === '') {
      throw new TypeError('s3 driver: bucket must be a non-empty string')
    }
    const partSize = options.partSize ?? 10 * MiB
    if (!Number.isSafeInteger(partSize) || partSize < S3_MIN_PART_SIZE || partSize > MAX_PART_SIZE) {
      throw new TypeError(`s3 driver: partSize must be an integer from ${S3_MIN_PART_SIZE} to ${MAX_PART_SIZE}`)
    }
    const copyChunk = options.multipartCopyChunkSize ?? 32 * MiB
    if (!Number.isSafeInteger(copyChunk) || copyChunk < S3_MIN_PART_SIZE || copyChunk > MAX_PART_SIZE) {
      throw new TypeError(`s3 driver: multipartCopyChunkSize must be an integer from ${S3_MIN_PART_SIZE} to ${MAX_PART_SIZE}`)
    }
    if ((options.accessKeyId === undefined) !== (options.secretAccessKey === undefined)) {
      throw new TypeError('s3 driver: accessKeyId and secretAccessKey go together')
    }
    this.bucket = options.bucket
    this.partSize = partSize
    const root = (options.rootDirectory ?? '').replace(/^\/+|\/+$/g, '')
    this.prefix = root === '' ? '' : `${root}/`
    this.storageClass = options.storageClass as StorageClass | undefined
    this.sse = options.serverSideEncryption
    this.kmsKeyId = options.kmsKeyId
    this.redirect = options.redirect ?? false
    this.redirectExpiry = options.redirectExpirySeconds ?? 1200
    this.copyThreshold = Math.min(options.multipartCopyThresholdSize ?? 32 * MiB, MAX_PART_SIZE)
    this.copyChunk = copyChunk
    this.copyConcurrency = Math.max(1, options.multipartCopyMaxConcurrency ?? 8)
    this.log = options.log
    const config: S3ClientConfig = {
      region: options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      forcePathStyle: options.forcePathStyle ?? false,
      maxAttempts: options.maxAttempts ?? 4,
      retryMode: 'standard',
      // Checksums only where S3 requires them: S3-compatible services differ in what they accept.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: options.connectionTimeoutMs ?? 10_000,
        socketTimeout: options.socketTimeoutMs ?? 60_000
      }
    }
    if (options.endpoint !== undefined) config.endpoint = options.endpoint
    if (options.accessKeyId !== undefined && options.secretAccessKey !== undefined) {
      config.credentials = {
        accessKeyId: options.accessKeyId,
        secretAccessKey: options.secretAccessKey,
        ...(options.sessionToken === undefined ? {} : { sessionToken: options.sessionToken })
      }
    }
    this.client = new S3Client(config)
  }

  // --- keys and errors ---

  /** The object key of a file path. */
  key (path: string): string {
    assertPath(this.name, path)
    return path === '/' ? this.prefix : this.prefix + path.slice(1)
  }

  /** The key prefix of everything below a directory path. */
  private dirPrefix (path: string): string {
    return path === '/' ? this.prefix : `${this.key(path)}/`
  }

  private newSegmentKey (key: string): string {
    return `${key}${SEGMENT_SEPARATOR}${randomBytes(8).toString('hex')}`
  }

  /** A driver error for an SDK failure: PathNotFoundError for a missing key, UNAVAILABLE-class for transient ones. */
  failure (error: unknown, path: string, operation: string): StorageDriverError {
    if (error instanceof StorageDriverError) return error
    if (isNotFound(error)) return new PathNotFoundError(this.name, path)
    const status = statusOf(error)
    const metadata = shapeOf(error).$metadata
    const requestId = metadata?.requestId ?? metadata?.extendedRequestId
    const message = `${operation} failed (${nameOf(error)}${status === undefined ? '' : ` ${status}`})`
    const options = { cause: error, ...(requestId === undefined ? {} : { requestId }) }
    return isTransient(error)
      ? new StorageUnavailableError(this.name, path, message, options)
      : new StorageDriverError(this.name, path, message, options)
  }

  private async send<T> (path: string, operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (error) {
      throw this.failure(error, path, operation)
    }
  }

  private writeParams (): { StorageClass?: StorageClass, ServerSideEncryption?: ServerSideEncryption, SSEKMSKeyId?: string } {
    return {
      ...(this.storageClass === undefined ? {} : { StorageClass: this.storageClass }),
      ...(this.sse === undefined ? {} : { ServerSideEncryption: this.sse }),
      ...(this.kmsKeyId === undefined ? {} : { SSEKMSKeyId: this.kmsKeyId })
    }
  }

  // --- objects ---

  /** HEAD of a key; undefined when absent. */
  private async head (path: string, key: string): Promise<ObjectInfo | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }))
      const info = this.infoOf(head.ContentLength, head.LastModified, head.Metadata)
      if (head.ETag !== undefined) info.etag = head.ETag
      return info
    } catch (error) {
      if (isNotFound(error)) return undefined
      throw this.failure(error, path, 'stat')
    }
  }

  private infoOf (length: number | undefined, modified: Date | undefined, metadata: Record<string, string> | undefined): ObjectInfo {
    const segmented = metadata?.[SEGMENTED_META]
    return {
      size: segmented === undefined ? (length ?? 0) : Number(segmented),
      modTime: modified ?? new Date(),
      segmented: segmented !== undefined
    }
  }

  /** The segments of a segmented file, from its index object. */
  private async segmentsOf (path: string, key: string): Promise<Segment[]> {
    const body = await this.getObjectBytes(path, key)
    let index: SegmentIndex
    try {
      index = JSON.parse(body.toString('utf8')) as SegmentIndex
    } catch (error) {
      throw new StorageDriverError(this.name, path, 'unreadable segment index', { cause: error })
    }
    if (!Array.isArray(index.segments)) throw new StorageDriverError(this.name, path, 'unreadable segment index')
    return index.segments.map(([id, size]) => ({ key: `${key}${SEGMENT_SEPARATOR}${id}`, size }))
  }

  private async getObjectBytes (path: string, key: string): Promise<Buffer> {
    const response = await this.send(path, 'read', () => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key })))
    return await this.readBody(path, response)
  }

  private async readBody (path: string, response: GetObjectCommandOutput): Promise<Buffer> {
    const chunks: Buffer[] = []
    try {
      for await (const chunk of response.Body as Readable) chunks.push(chunk as Buffer)
    } catch (error) {
      throw this.failure(error, path, 'read')
    }
    return Buffer.concat(chunks)
  }

  /** Streams a byte range `[start, end)` of one object of `whole` bytes (a GET without Range when it is all). */
  private async openRange (path: string, key: string, start: number, end: number, whole?: number): Promise<Readable> {
    if (start === end) return emptyStream()
    const range = start === 0 && end === whole ? {} : { Range: `bytes=${start}-${end - 1}` }
    const response = await this.send(path, 'read', () => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, ...range })))
    return response.Body as Readable
  }

  /** Streams the segments of a segmented file over `[start, end)`, one ranged GET after another. */
  private segmentedStream (path: string, segments: Segment[], start: number, end: number): Readable {
    const driver = this
    async function * pieces (): AsyncGenerator<Buffer> {
      let base = 0
      for (const segment of segments) {
        const from = Math.max(start, base)
        const to = Math.min(end, base + segment.size)
        base += segment.size
        if (from >= to) continue
        const body = await driver.openRange(path, segment.key, from - (base - segment.size), to - (base - segment.size), segment.size)
        try {
          for await (const chunk of body) yield chunk as Buffer
        } catch (error) {
          throw driver.failure(error, path, 'read')
        } finally {
          body.destroy()
        }
      }
    }
    return Readable.from(pieces(), { objectMode: false })
  }

  async getContent (path: string): Promise<Buffer> {
    const key = this.key(path)
    if (path === '/') throw new PathNotFoundError(this.name, path)
    const response = await this.send(path, 'read', () => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key })))
    const info = this.infoOf(response.ContentLength, response.LastModified, response.Metadata)
    if (!info.segmented) return await this.readBody(path, response)
    ;(response.Body as Readable).destroy()
    const chunks: Buffer[] = []
    for await (const chunk of this.segmentedStream(path, await this.segmentsOf(path, key), 0, info.size)) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks)
  }

  async putContent (path: string, content: Uint8Array | string): Promise<void> {
    const key = this.key(path)
    if (path === '/') throw new StorageDriverError(this.name, path, 'is a directory')
    const body = typeof content === 'string' ? Buffer.from(content, 'utf8') : content
    await this.putObject(path, key, body)
  }

  private async putObject (path: string, key: string, body: Uint8Array, metadata?: Record<string, string>): Promise<void> {
    await this.send(path, 'write', () => this.client.send(new PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      Body: body,
      ContentLength: body.byteLength,
      ...(metadata === undefined ? {} : { Metadata: metadata }),
      ...this.writeParams()
    })))
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
      const response = await this.send(path, 'read', () => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key })))
      const info = this.infoOf(response.ContentLength, response.LastModified, response.Metadata)
      if (!info.segmented) return response.Body as Readable
      ;(response.Body as Readable).destroy()
      return this.segmentedStream(path, await this.segmentsOf(path, key), 0, info.size)
    }
    if (length !== 0) {
      try {
        const response = await this.client.send(new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Range: `bytes=${start}-${length === undefined ? '' : start + length - 1}`
        }))
        const info = this.infoOf(response.ContentLength, response.LastModified, response.Metadata)
        if (!info.segmented) return response.Body as Readable
        ;(response.Body as Readable).destroy()
        return this.readSegmented(path, key, info.size, options)
      } catch (error) {
        // Past the end of the object (or of an index): the size decides below.
        if (!isInvalidRange(error)) throw this.failure(error, path, 'read')
      }
    }
    const info = await this.head(path, key)
    if (info === undefined) throw new PathNotFoundError(this.name, path)
    if (info.segmented) return await this.readSegmented(path, key, info.size, options)
    const range = readRange(this.name, path, info.size, options)
    if (range.start !== range.end) {
      // The object grew between the two requests: read it at its new size.
      return await this.openRange(path, key, range.start, range.end, info.size)
    }
    return emptyStream()
  }

  private async readSegmented (path: string, key: string, size: number, options?: ReadOptions): Promise<Readable> {
    const range = readRange(this.name, path, size, options)
    if (range.start === range.end) return emptyStream()
    return this.segmentedStream(path, await this.segmentsOf(path, key), range.start, range.end)
  }

  async writer (path: string, append: boolean): Promise<FileWriter> {
    const key = this.key(path)
    if (!append) {
      if (path === '/') throw new StorageDriverError(this.name, path, 'is a directory')
      return new S3Writer(this, path, key, [], undefined)
    }
    if (path === '/') throw new PathNotFoundError(this.name, path)
    const info = await this.head(path, key)
    if (info === undefined) throw new PathNotFoundError(this.name, path)
    let segments: Segment[]
    if (info.segmented) segments = await this.segmentsOf(path, key)
    else segments = info.size === 0 ? [] : [{ key, size: info.size }]
    // A short last segment cannot stay in the middle of the file: the writer rewrites it.
    const last = segments.at(-1)
    const tail = last !== undefined && last.size < S3_MIN_PART_SIZE ? last : undefined
    return new S3Writer(this, path, key, tail === undefined ? segments : segments.slice(0, -1), tail)
  }

  async stat (path: string): Promise<FileInfo> {
    const key = this.key(path)
    if (path === '/') return { path, size: 0, modTime: new Date(), isDir: true }
    const info = await this.head(path, key)
    if (info !== undefined) {
      return { path, size: info.size, modTime: info.modTime, isDir: false, ...(info.etag === undefined ? {} : { etag: info.etag }) }
    }
    const listed = await this.send(path, 'stat', () => this.client.send(new ListObjectsV2Command({
      Bucket: this.bucket, Prefix: `${key}/`, MaxKeys: 1
    })))
    const first = listed.Contents?.[0]
    if (first === undefined) throw new PathNotFoundError(this.name, path)
    return { path, size: 0, modTime: first.LastModified ?? new Date(), isDir: true }
  }

  async list (path: string): Promise<string[]> {
    const prefix = this.dirPrefix(path)
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
    const visible = [...names].filter(isValidSegment).sort()
    if (visible.length === 0 && path !== '/') throw new PathNotFoundError(this.name, path)
    return visible.map((name) => childPath(path, name))
  }

  /** Every key below a prefix, page by page. */
  private async * keysBelow (path: string, prefix: string): AsyncGenerator<Array<{ key: string, size: number, modTime: Date }>> {
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

  async * walk (path: string): AsyncGenerator<FileInfo> {
    const prefix = this.dirPrefix(path)
    // One flat listing (a request per 1,000 keys, not one per directory), ordered here: S3
    // sorts `a-b` before `a/x`, the walk wants `a` and its subtree first.
    const entries = new Map<string, FileInfo>()
    const segmented = new Set<string>()
    for await (const page of this.keysBelow(path, prefix)) {
      for (const object of page) {
        const names = object.key.slice(prefix.length).split('/')
        const last = names.at(-1) as string
        if (!names.every(isValidSegment)) {
          const separator = last.indexOf(SEGMENT_SEPARATOR)
          if (separator > 0 && names.slice(0, -1).every(isValidSegment)) {
            segmented.add(childPath(path, [...names.slice(0, -1), last.slice(0, separator)].join('/')))
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
        const head = await this.head(info.path, this.key(info.path))
        if (head === undefined) continue
        info.size = head.size
      }
      yield info
    }
  }

  async move (sourcePath: string, destPath: string): Promise<void> {
    const source = this.key(sourcePath)
    const dest = this.key(destPath)
    if (sourcePath === '/') throw new InvalidPathError(this.name, sourcePath)
    if (destPath === '/') throw new InvalidPathError(this.name, destPath)
    const info = await this.head(sourcePath, source)
    if (info === undefined) throw new PathNotFoundError(this.name, sourcePath)
    if (sourcePath === destPath) return
    const segments = info.segmented ? await this.segmentsOf(sourcePath, source) : [{ key: source, size: info.size }]
    await this.join(destPath, dest, segments)
    // Segments a former segmented destination left are garbage now; then the source goes.
    await this.deleteKeys(destPath, this.segmentKeysOf(destPath, dest))
    await this.deleteKeys(sourcePath, this.fileKeys(sourcePath, source))
  }

  async delete (path: string): Promise<void> {
    const key = this.key(path)
    if (path === '/') throw new InvalidPathError(this.name, path)
    const file = await this.head(path, key)
    let deleted = 0
    if (file !== undefined) deleted += await this.deleteKeys(path, this.fileKeys(path, key))
    deleted += await this.deleteKeys(path, this.pagesOfKeys(path, `${key}/`))
    if (file === undefined && deleted === 0) throw new PathNotFoundError(this.name, path)
  }

  async redirectURL (path: string): Promise<string | undefined> {
    if (!this.redirect) return undefined
    return await getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.key(path) }), {
      expiresIn: this.redirectExpiry
    })
  }

  async close (): Promise<void> {
    this.client.destroy()
  }

  // --- helpers shared with the writer ---

  private async * pagesOfKeys (path: string, prefix: string): AsyncGenerator<string[]> {
    for await (const page of this.keysBelow(path, prefix)) yield page.map((object) => object.key)
  }

  /** A file's key and its segments' keys. */
  private async * fileKeys (path: string, key: string): AsyncGenerator<string[]> {
    yield [key]
    yield * this.segmentKeysOf(path, key)
  }

  segmentKeysOf (path: string, key: string): AsyncGenerator<string[]> {
    return this.pagesOfKeys(path, `${key}${SEGMENT_SEPARATOR}`)
  }

  /** Deletes keys in batches; returns how many were listed. */
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
          throw new StorageDriverError(this.name, path, `delete failed (${failed.Code ?? 'error'})`)
        }
      }
    }
    return count
  }

  /** Writes the concatenation of segments as one plain object at `destKey`, copying server side. */
  async join (path: string, destKey: string, segments: Segment[]): Promise<void> {
    const size = segments.reduce((sum, segment) => sum + segment.size, 0)
    const only = segments[0]
    if (segments.length === 0) {
      await this.putObject(path, destKey, new Uint8Array(0))
      return
    }
    if (segments.length === 1 && only !== undefined && size <= this.copyThreshold) {
      await this.send(path, 'copy', () => this.client.send(new CopyObjectCommand({
        Bucket: this.bucket, Key: destKey, CopySource: copySource(this.bucket, only.key), ...this.writeParams()
      })))
      return
    }
    const tasks: Array<(uploadId: string) => Promise<CompletedPart>> = []
    for (const [index, segment] of segments.entries()) {
      // Only the last segment may be short: S3 refuses short parts anywhere else.
      const ranges = index === segments.length - 1 || segment.size >= S3_MIN_PART_SIZE
        ? copyRanges(segment.size, this.copyChunk)
        : undefined
      if (ranges === undefined) throw new StorageDriverError(this.name, path, 'a segment shorter than 5 MiB before the end')
      for (const range of ranges) {
        const partNumber = tasks.length + 1
        tasks.push(async (uploadId) => await this.copyPart(path, destKey, uploadId, partNumber, segment.key, range.start, range.end))
      }
    }
    if (tasks.length > MAX_PARTS) throw new StorageDriverError(this.name, path, 'too many parts to copy')
    const upload = await this.createUpload(path, destKey)
    try {
      const parts = await runLimited(tasks.map((task) => async () => await task(upload)), this.copyConcurrency)
      await this.completeUpload(path, destKey, upload, parts)
    } catch (error) {
      await this.abortUpload(path, destKey, upload)
      throw error
    }
  }

  async createUpload (path: string, key: string): Promise<string> {
    const created = await this.send(path, 'write', () => this.client.send(new CreateMultipartUploadCommand({
      Bucket: this.bucket, Key: key, ...this.writeParams()
    })))
    if (created.UploadId === undefined) throw new StorageDriverError(this.name, path, 'no upload id in the answer')
    return created.UploadId
  }

  async uploadPart (path: string, key: string, uploadId: string, partNumber: number, body: Uint8Array | Readable, length: number): Promise<CompletedPart> {
    const result = await this.send(path, 'write', () => this.client.send(new UploadPartCommand({
      Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: body, ContentLength: length
    })))
    return { PartNumber: partNumber, ETag: result.ETag }
  }

  /** Copies `[start, end)` of an object as a part; streams it through when the service cannot copy parts. */
  private async copyPart (path: string, key: string, uploadId: string, partNumber: number, sourceKey: string, start: number, end: number): Promise<CompletedPart> {
    if (this.partCopy) {
      try {
        const result = await this.client.send(new UploadPartCopyCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          CopySource: copySource(this.bucket, sourceKey),
          CopySourceRange: `bytes=${start}-${end - 1}`
        }))
        return { PartNumber: partNumber, ETag: result.CopyPartResult?.ETag }
      } catch (error) {
        if (!isNotImplemented(error)) throw this.failure(error, path, 'copy')
        // Parts copied side by side may all learn it at once: one warning.
        if (this.partCopy) this.log?.warn({ driver: this.name }, 'the S3 service cannot copy parts: copies stream through the registry')
        this.partCopy = false
      }
    }
    const body = await this.openRange(path, sourceKey, start, end)
    return await this.uploadPart(path, key, uploadId, partNumber, body, end - start)
  }

  async completeUpload (path: string, key: string, uploadId: string, parts: CompletedPart[]): Promise<void> {
    await this.send(path, 'write', () => this.client.send(new CompleteMultipartUploadCommand({
      Bucket: this.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts }
    })))
  }

  /** Best effort: an upload left behind costs storage only (a bucket lifecycle rule removes it). */
  async abortUpload (path: string, key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }))
    } catch (error) {
      this.log?.warn({ driver: this.name, path, err: this.failure(error, path, 'abort') }, 'could not abort a multipart upload')
    }
  }

  async readObject (path: string, key: string): Promise<Buffer> {
    return await this.getObjectBytes(path, key)
  }

  async writeObject (path: string, key: string, body: Uint8Array, metadata?: Record<string, string>): Promise<void> {
    await this.putObject(path, key, body, metadata)
  }

  /** Writes the index of a segmented file at its key. */
  async writeIndex (path: string, key: string, segments: Segment[]): Promise<void> {
    const prefix = `${key}${SEGMENT_SEPARATOR}`
    const index: SegmentIndex = { segments: segments.map((segment) => [segment.key.slice(prefix.length), segment.size]) }
    const size = segments.reduce((sum, segment) => sum + segment.size, 0)
    await this.putObject(path, key, Buffer.from(JSON.stringify(index)), { [SEGMENTED_META]: String(size) })
  }

  /** A fresh key for a segment of the file at `key`. */
  segmentKey (key: string): string {
    return this.newSegmentKey(key)
  }
}

/** `failed`: a commit that did not complete, after which the caller may still cancel. */
type WriterState = 'open' | 'committed' | 'failed' | 'closed' | 'cancelled'

/**
 * One writer session. Its bytes (after the rewritten short tail, if any) go to `target`: the
 * file's own key when nothing is kept before them, else a new segment. They are buffered in
 * parts of `partSize`; a full part is uploaded while the next one fills.
 */
class S3Writer implements FileWriter {
  private state: WriterState = 'open'
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
    private readonly driver: S3Driver,
    private readonly path: string,
    private readonly key: string,
    /** Segments kept as they are, before this session's bytes. */
    private readonly base: Segment[],
    /** A short last segment, read back and written again ahead of the new bytes. */
    private readonly tail: Segment | undefined
  ) {
    this.baseSize = base.reduce((sum, segment) => sum + segment.size, 0)
    this.target = base.length === 0 ? key : driver.segmentKey(key)
    this.fresh = base.length === 0 && tail === undefined
  }

  get size (): number {
    return this.baseSize + (this.tail?.size ?? 0) + this.written
  }

  private get partSize (): number {
    // Parts grow past 1,000, so that a file written in one session can reach S3's 10,000 parts.
    return this.driver.partSize * (1 + Math.floor(this.parts.length / 1000))
  }

  write (chunk: Uint8Array): Promise<void> {
    try {
      this.assertOpen()
    } catch (error) {
      return Promise.reject(error)
    }
    // Copied now: the caller may reuse the chunk as soon as this returns.
    const copy = Buffer.from(chunk)
    this.written += copy.byteLength
    const run = this.queue.then(async () => {
      if (this.failure !== undefined) throw this.failure
      try {
        await this.loadTail()
        await this.append(copy)
      } catch (error) {
        this.failure = this.driver.failure(error, this.path, 'write')
        throw this.failure
      }
    })
    this.queue = run.catch(() => {})
    return run
  }

  private async loadTail (): Promise<void> {
    if (this.tailLoaded) return
    this.tailLoaded = true
    if (this.tail !== undefined) await this.append(await this.driver.readObject(this.path, this.tail.key))
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
    this.uploadId ??= await this.driver.createUpload(this.path, this.target)
    const uploadId = this.uploadId
    const partNumber = this.parts.length + 1
    this.parts.push({ PartNumber: partNumber })
    const upload = this.driver.uploadPart(this.path, this.target, uploadId, partNumber, part.subarray(0, length), length)
      .then((done) => { this.parts[partNumber - 1] = done }, (error: unknown) => {
        this.failure ??= this.driver.failure(error, this.path, 'write')
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
      await this.driver.writeObject(this.path, this.target, rest)
    } else {
      if (rest.byteLength > 0) this.parts.push(await this.driver.uploadPart(this.path, this.target, this.uploadId, this.parts.length + 1, rest, rest.byteLength))
      await this.driver.completeUpload(this.path, this.target, this.uploadId, this.parts)
      this.uploadId = undefined
    }
    return bytes
  }

  /** Makes the file this session's result: plain, or an index of segments. */
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
        await this.driver.join(this.path, this.key, [...base, session])
        await this.driver.deleteKeys(this.path, this.driver.segmentKeysOf(this.path, this.key))
        return
      }
      if (first !== undefined && first.key === this.key) {
        // The file was one plain object: it becomes the first segment, since its key takes the index.
        const moved: Segment = { key: this.driver.segmentKey(this.key), size: first.size }
        await this.driver.join(this.path, moved.key, [first])
        base = [moved, ...base.slice(1)]
      }
      await this.driver.writeIndex(this.path, this.key, [...base, session])
    }
    if (this.tail !== undefined && this.tail.key !== this.key) {
      await this.driver.deleteKeys(this.path, [[this.tail.key]])
    }
  }

  async commit (): Promise<void> {
    this.assertOpen()
    this.state = 'committed'
    try {
      await this.finish(true)
    } catch (error) {
      this.state = 'failed'
      await this.abandon()
      throw this.driver.failure(error, this.path, 'commit')
    }
  }

  async close (): Promise<void> {
    if (this.state !== 'open') return
    this.state = 'closed'
    try {
      await this.finish(false)
    } catch (error) {
      // The file stays as the last writer left it; this session's bytes are lost.
      await this.abandon()
      throw this.driver.failure(error, this.path, 'close')
    }
  }

  async cancel (): Promise<void> {
    if (this.state === 'cancelled') return
    const wasOpen = this.state === 'open'
    if (!wasOpen && this.state !== 'failed') this.assertOpen()
    this.state = 'cancelled'
    if (wasOpen) {
      await this.queue
      await this.abandon()
    }
    await this.driver.deleteKeys(this.path, [[this.key]])
    await this.driver.deleteKeys(this.path, this.driver.segmentKeysOf(this.path, this.key))
  }

  /** Drops this session's multipart upload, if one is open. */
  private async abandon (): Promise<void> {
    await this.inflight
    this.part = undefined
    if (this.uploadId !== undefined) {
      const uploadId = this.uploadId
      this.uploadId = undefined
      await this.driver.abortUpload(this.path, this.target, uploadId)
    }
  }

  private assertOpen (): void {
    if (this.state !== 'open') throw new StorageDriverError(NAME, this.path, `writer already ${this.state}`)
  }
}
