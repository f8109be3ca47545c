/**
 * What an S3 failure means to the registry: a missing key, a range past the end, a feature the
 * service lacks, a transient fault worth a 503 and a retry, or anything else (a driver error).
 * The SDK's errors carry a name (S3's error code), an HTTP status and request ids; network
 * failures carry Node's error code.
 */

import {
  PathNotFoundError,
  StorageDriverError,
  StorageUnavailableError
} from '../../driver.js'

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

export function isNotFound (error: unknown): boolean {
  const name = nameOf(error)
  return name === 'NoSuchKey' || name === 'NotFound'
}

export function isInvalidRange (error: unknown): boolean {
  return nameOf(error) === 'InvalidRange' || statusOf(error) === 416
}

export function isNotImplemented (error: unknown): boolean {
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

/**
 * A driver error for an SDK failure: PathNotFoundError for a missing key, UNAVAILABLE-class for
 * transient ones. The message names the operation and S3's code, never the endpoint.
 */
export function driverError (driver: string, error: unknown, path: string, operation: string): StorageDriverError {
  if (error instanceof StorageDriverError) return error
  if (isNotFound(error)) return new PathNotFoundError(driver, path)
  const status = statusOf(error)
  const metadata = shapeOf(error).$metadata
  const requestId = metadata?.requestId ?? metadata?.extendedRequestId
  const message = `${operation} failed (${nameOf(error)}${status === undefined ? '' : ` ${status}`})`
  const options = { cause: error, ...(requestId === undefined ? {} : { requestId }) }
  return isTransient(error)
    ? new StorageUnavailableError(driver, path, message, options)
    : new StorageDriverError(driver, path, message, options)
}
