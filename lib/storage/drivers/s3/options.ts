/**
 * The S3 driver's options, checked, and the SDK client built from them so that it works on AWS
 * and on S3-compatible services alike:
 *
 * - checksums only where S3 requires them (`WHEN_REQUIRED`), and where it does (a multi-object
 *   delete) a Content-MD5 instead of the SDK's default CRC32: OpenStack Swift's s3api, Ceph RGW
 *   and older MinIO refuse a DeleteObjects without Content-MD5, and AWS accepts either;
 * - path-style or virtual-host addressing (`forcePathStyle`), any region name, any endpoint.
 */

import { createHash } from 'node:crypto'
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3'

const MiB = 1024 * 1024
const GiB = 1024 * MiB
/** S3's smallest part (all but the last of an upload). */
export const S3_MIN_PART_SIZE = 5 * MiB
/** S3's largest part, and its largest single-request copy. */
export const MAX_PART_SIZE = 5 * GiB

export interface S3DriverLogger {
  warn: (object: Record<string, unknown>, message: string) => void
}

export interface S3DriverOptions {
  bucket: string
  /**
   * Region the requests are signed for. Default: AWS_REGION, else `us-east-1`. An S3-compatible
   * service names its own (Swift s3api: its `location`, `us-east-1` unless configured).
   */
  region?: string
  /** Endpoint of an S3-compatible service, e.g. `http://127.0.0.1:9000`. */
  endpoint?: string
  /**
   * Path-style URLs (`endpoint/bucket/key`) instead of virtual-host ones (`bucket.endpoint/key`).
   * Most S3-compatible services need it unless their DNS resolves bucket names (Swift s3api:
   * path style, or `storage_domain` set for virtual hosts). Default false, as on AWS.
   */
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
  /** Where best-effort failures (an abort or a clean-up that did not go through) are reported. */
  log?: S3DriverLogger
}

/** The options after checks and defaults. */
export interface S3Settings {
  bucket: string
  /** Key prefix: empty, or ending in `/`. */
  prefix: string
  partSize: number
  storageClass: string | undefined
  serverSideEncryption: 'AES256' | 'aws:kms' | undefined
  kmsKeyId: string | undefined
  redirect: boolean
  redirectExpirySeconds: number
  copyThreshold: number
  copyChunk: number
  copyConcurrency: number
  log: S3DriverLogger | undefined
}

export function settingsOf (options: S3DriverOptions): S3Settings {
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
  const root = (options.rootDirectory ?? '').replace(/^\/+|\/+$/g, '')
  return {
    bucket: options.bucket,
    prefix: root === '' ? '' : `${root}/`,
    partSize,
    storageClass: options.storageClass,
    serverSideEncryption: options.serverSideEncryption,
    kmsKeyId: options.kmsKeyId,
    redirect: options.redirect ?? false,
    redirectExpirySeconds: options.redirectExpirySeconds ?? 1200,
    copyThreshold: Math.min(options.multipartCopyThresholdSize ?? 32 * MiB, MAX_PART_SIZE),
    copyChunk,
    copyConcurrency: Math.max(1, options.multipartCopyMaxConcurrency ?? 8),
    log: options.log
  }
}

export function createClient (options: S3DriverOptions): S3Client {
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
  const client = new S3Client(config)
  // After the SDK's checksum step (same step, lower priority), before signing.
  client.middlewareStack.add(contentMd5Instead, { step: 'build', priority: 'low', name: 'registryContentMd5' })
  return client
}

type BuildHandler<Input, Output> = (args: { input: Input, request: unknown }) => Promise<Output>

interface RequestShape { headers: Record<string, string>, body?: unknown }

function isRequest (request: unknown): request is RequestShape {
  return typeof request === 'object' && request !== null && typeof (request as RequestShape).headers === 'object'
}

/**
 * Where the SDK put a checksum on a buffered body (the requests S3 requires one for: here,
 * DeleteObjects), sends Content-MD5 instead: every S3 implementation accepts it, when many
 * S3-compatible ones refuse the newer `x-amz-checksum-*` headers or require Content-MD5.
 */
function contentMd5Instead<Input, Output> (next: BuildHandler<Input, Output>): BuildHandler<Input, Output> {
  return async (args) => {
    const { request } = args
    if (!isRequest(request)) return await next(args)
    const checksums = Object.keys(request.headers).filter((name) => name.toLowerCase().startsWith('x-amz-checksum-'))
    const body = request.body
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body instanceof Uint8Array ? body : undefined
    if (checksums.length === 0 || bytes === undefined) return await next(args)
    for (const name of Object.keys(request.headers)) {
      const lower = name.toLowerCase()
      if (lower.startsWith('x-amz-checksum-') || lower === 'x-amz-sdk-checksum-algorithm') delete request.headers[name]
    }
    request.headers['content-md5'] = createHash('md5').update(bytes).digest('base64')
    return await next(args)
  }
}
