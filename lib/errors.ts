/**
 * The error descriptor registry: every error code the registry can answer with, its message,
 * a description for the API reference and the HTTP status it is served with. Registered once;
 * a duplicate code is refused so that two parts of the code base cannot disagree on a status.
 */

export interface ErrorDescriptor {
  /** The spec's code string, e.g. `BLOB_UNKNOWN`. */
  readonly code: string
  /** Short human-readable message sent in the error body. */
  readonly message: string
  /** Longer description for the generated API reference. */
  readonly description: string
  /** HTTP status served when this error is the first of a response. */
  readonly httpStatus: number
}

const descriptors = new Map<string, ErrorDescriptor>()

/** Registers a descriptor; refuses a code that is already registered. */
export function registerError (descriptor: ErrorDescriptor): ErrorDescriptor {
  if (!/^[A-Z][A-Z0-9_]*$/.test(descriptor.code)) {
    throw new TypeError(`error code "${descriptor.code}" must be upper case letters, digits and underscores`)
  }
  if (!Number.isInteger(descriptor.httpStatus) || descriptor.httpStatus < 400 || descriptor.httpStatus > 599) {
    throw new TypeError(`error code ${descriptor.code}: httpStatus ${descriptor.httpStatus} is not an HTTP error status`)
  }
  if (descriptors.has(descriptor.code)) {
    throw new Error(`error code ${descriptor.code} is already registered`)
  }
  const frozen = Object.freeze({ ...descriptor })
  descriptors.set(frozen.code, frozen)
  return frozen
}

/** The descriptor for a code, or undefined when nobody registered it. */
export function errorDescriptor (code: string): ErrorDescriptor | undefined {
  return descriptors.get(code)
}

/** Every registered descriptor, in registration order. */
export function errorDescriptors (): ErrorDescriptor[] {
  return [...descriptors.values()]
}

function define (code: string, message: string, httpStatus: number, description: string): ErrorDescriptor {
  return registerError({ code, message, description, httpStatus })
}

/** The codes of the OCI Distribution Spec and CNCF distribution's extras, with distribution's statuses. */
export const ErrorCodes = {
  BLOB_UNKNOWN: define('BLOB_UNKNOWN', 'blob unknown to registry', 404,
    'The blob is unknown to the registry in the requested repository.'),
  BLOB_UPLOAD_INVALID: define('BLOB_UPLOAD_INVALID', 'blob upload invalid', 400,
    'The blob upload encountered an error and cannot proceed as requested.'),
  BLOB_UPLOAD_UNKNOWN: define('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry', 404,
    'The upload was cancelled, finished, or never started in this repository.'),
  DIGEST_INVALID: define('DIGEST_INVALID', 'provided digest did not match uploaded content', 400,
    'The digest is malformed, or the content does not match it.'),
  MANIFEST_BLOB_UNKNOWN: define('MANIFEST_BLOB_UNKNOWN', 'manifest references a manifest or blob unknown to registry', 400,
    'A manifest references a blob or manifest that is not in the repository.'),
  MANIFEST_INVALID: define('MANIFEST_INVALID', 'manifest invalid', 400,
    'The manifest failed validation; the detail says which check.'),
  MANIFEST_UNKNOWN: define('MANIFEST_UNKNOWN', 'manifest unknown to registry', 404,
    'No manifest with this tag or digest exists in the repository.'),
  NAME_INVALID: define('NAME_INVALID', 'invalid repository name', 400,
    'The repository name does not follow the spec grammar or is too long.'),
  NAME_UNKNOWN: define('NAME_UNKNOWN', 'repository name not known to registry', 404,
    'The repository does not exist.'),
  SIZE_INVALID: define('SIZE_INVALID', 'provided length did not match content length', 400,
    'The declared size does not match the content received.'),
  UNAUTHORIZED: define('UNAUTHORIZED', 'authentication required', 401,
    'The request needs credentials, or the credentials given are not valid.'),
  DENIED: define('DENIED', 'requested access to the resource is denied', 403,
    'The authenticated identity may not perform this operation.'),
  UNSUPPORTED: define('UNSUPPORTED', 'the operation is unsupported', 405,
    'The registry does not support this operation (or it is disabled by configuration).'),
  TOOMANYREQUESTS: define('TOOMANYREQUESTS', 'too many requests', 429,
    'The client sent too many requests; retry later.'),
  UNKNOWN: define('UNKNOWN', 'unknown error', 500,
    'An error the registry did not expect; the details are in the server log.'),
  UNAVAILABLE: define('UNAVAILABLE', 'service unavailable', 503,
    'The registry or its storage is temporarily unavailable.'),
  MANIFEST_UNVERIFIED: define('MANIFEST_UNVERIFIED', 'manifest failed signature verification', 400,
    'A schema 1 manifest is unsigned or its signature does not verify.'),
  TAG_INVALID: define('TAG_INVALID', 'manifest tag did not match URI', 400,
    'The tag does not follow the spec grammar, or does not match the manifest.'),
  RANGE_INVALID: define('RANGE_INVALID', 'invalid content range', 416,
    'The Content-Range of a chunk does not continue the upload, or is malformed.'),
  PAGINATION_NUMBER_INVALID: define('PAGINATION_NUMBER_INVALID', 'invalid number of results requested', 400,
    'The `n` query parameter is not a non-negative integer.')
} as const

type BuiltinErrorCodes = { readonly [Code in keyof typeof ErrorCodes]: ErrorDescriptor }

/**
 * The registered error codes, as types. A code you register with `registerError` is typed by
 * adding it here (declaration merging), then `new RegistryError('QUOTA_EXCEEDED')` compiles:
 *
 *     declare module 'fastify-oci-registry/errors' {
 *       interface ErrorCodeMap { QUOTA_EXCEEDED: ErrorDescriptor }
 *     }
 */
export interface ErrorCodeMap extends BuiltinErrorCodes {}

/** A registered error code: a misspelt one does not compile. */
export type ErrorCode = keyof ErrorCodeMap & string

/** One entry of an error body, as the spec writes it. */
export interface ErrorBodyEntry {
  /** A registered code, or, in a body read from another server, one this process does not know. */
  code: string
  message: string
  detail?: unknown
}

/** The spec's error body: `{"errors":[...]}`. */
export interface ErrorBody {
  errors: ErrorBodyEntry[]
}

export interface RegistryErrorOptions {
  /** Overrides the message of the descriptor. */
  message?: string
  /**
   * Overrides the descriptor's status. Used only where the spec asks for a status the code's
   * descriptor does not carry (413 for a manifest too large, 414 for too many tags).
   */
  statusCode?: number
  /** Response headers that belong to this error (e.g. `Range` on a 416). */
  headers?: Record<string, string>
  cause?: unknown
}

/**
 * An error with a registered code; what lib code throws and what clients parse back. `code` is
 * an ErrorCode; an error parsed from another server's body keeps that server's code as it was
 * sent, even when this process never registered it.
 */
export class RegistryError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number
  readonly detail: unknown
  readonly headers: Record<string, string>

  constructor (code: ErrorCode | ErrorDescriptor, detail?: unknown, options: RegistryErrorOptions = {}) {
    const descriptor = typeof code === 'string' ? (errorDescriptor(code) ?? ErrorCodes.UNKNOWN) : code
    super(options.message ?? descriptor.message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'RegistryError'
    // A descriptor's code is registered, or is a remote server's code kept as sent (fromErrorBody).
    this.code = (typeof code === 'string' ? code : descriptor.code) as ErrorCode
    this.statusCode = options.statusCode ?? descriptor.httpStatus
    this.detail = detail
    this.headers = options.headers ?? {}
  }

  /** The descriptor of this error's code; UNKNOWN's for a code nobody registered. */
  get descriptor (): ErrorDescriptor {
    return errorDescriptor(this.code) ?? ErrorCodes.UNKNOWN
  }

  toJSON (): ErrorBodyEntry {
    const entry: ErrorBodyEntry = { code: this.code, message: this.message }
    if (this.detail !== undefined) entry.detail = this.detail
    return entry
  }
}

/** Writes errors as the spec's body. */
export function toErrorBody (errors: RegistryError | RegistryError[]): ErrorBody {
  const list = Array.isArray(errors) ? errors : [errors]
  return { errors: list.map((error) => error.toJSON()) }
}

/**
 * Parses an error body back into RegistryErrors (what a client does with a response).
 * Codes nobody registered keep their code string and the response status.
 */
export function fromErrorBody (body: unknown, httpStatus?: number): RegistryError[] {
  if (typeof body !== 'object' || body === null || !Array.isArray((body as ErrorBody).errors)) {
    return [new RegistryError('UNKNOWN', body, httpStatus === undefined ? {} : { statusCode: httpStatus })]
  }
  return (body as ErrorBody).errors.map((entry) => {
    const code = typeof entry?.code === 'string' ? entry.code : 'UNKNOWN'
    const known = errorDescriptor(code)
    const statusCode = httpStatus ?? known?.httpStatus
    // A code this process never registered is kept as the server sent it.
    const descriptor = known ?? { code, message: ErrorCodes.UNKNOWN.message, description: '', httpStatus: statusCode ?? ErrorCodes.UNKNOWN.httpStatus }
    return new RegistryError(descriptor, entry?.detail, {
      ...(typeof entry?.message === 'string' ? { message: entry.message } : {}),
      ...(statusCode === undefined ? {} : { statusCode })
    })
  })
}

/** True for a RegistryError, including one from another copy of this module. */
export function isRegistryError (error: unknown): error is RegistryError {
  return error instanceof RegistryError ||
    (error instanceof Error && error.name === 'RegistryError' && typeof (error as RegistryError).code === 'string')
}
