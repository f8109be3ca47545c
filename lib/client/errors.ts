/**
 * The client's own errors: what went wrong before the registry could answer with an error body.
 * With RegistryError (the registry refused), these are the only errors the client throws.
 */

/** Why a request got no usable answer. */
export type ClientErrorCode =
  /** The connection was refused, reset or could not be made (DNS, TLS). */
  | 'CONNECTION_FAILED'
  /** No activity on the socket for the configured `timeoutMs`. */
  | 'TIMEOUT'
  /** The answer is not what the API specifies (e.g. a body that is not JSON). */
  | 'INVALID_RESPONSE'
  /** The server answered `/v2/` without `Docker-Distribution-API-Version`: it is not a registry. */
  | 'NOT_A_REGISTRY'

export class RegistryClientError extends Error {
  readonly code: ClientErrorCode
  /** The URL of the request that failed. */
  readonly url: string

  constructor (code: ClientErrorCode, message: string, url: string, options: { cause?: unknown } = {}) {
    super(message, options)
    this.name = 'RegistryClientError'
    this.code = code
    this.url = url
  }
}

/** True for a RegistryClientError, including one from another copy of this module. */
export function isRegistryClientError (error: unknown): error is RegistryClientError {
  return error instanceof RegistryClientError || (error instanceof Error && error.name === 'RegistryClientError')
}

/** The client error for a failed transport: the error itself when it is one already. */
export function transportError (error: unknown, url: string): RegistryClientError {
  if (isRegistryClientError(error)) return error
  const reason = error instanceof Error ? error.message : String(error)
  return new RegistryClientError('CONNECTION_FAILED', `request to ${url} failed: ${reason}`, url, { cause: error })
}
