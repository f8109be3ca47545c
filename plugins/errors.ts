/**
 * The error registry's HTTP face: the one error handler of the registry's context. Every
 * error (a RegistryError from lib code, Fastify's own, a storage failure) leaves here as the
 * spec's body `{"errors":[{"code","message","detail"}]}` with the descriptor's status.
 */

import { Socket } from 'node:net'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { RegistryError, isRegistryError, toErrorBody, type ErrorCode } from '../lib/errors.js'
import { StorageDriverError, StorageUnavailableError } from '../lib/storage/driver.js'

/** Fastify's client errors, mapped to the closest spec code (the status stays Fastify's). */
const fastifyCodes: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'SIZE_INVALID',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'SIZE_INVALID',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MANIFEST_INVALID',
  FST_ERR_CTP_INVALID_JSON_BODY: 'MANIFEST_INVALID'
}

/** Turns anything thrown while serving a request into a RegistryError. */
export function toRegistryError (error: unknown): RegistryError {
  if (isRegistryError(error)) return error
  const fastifyError = error as Partial<FastifyError>
  if (Array.isArray(fastifyError.validation)) {
    return new RegistryError('UNSUPPORTED', { reason: fastifyError.message }, { statusCode: fastifyError.statusCode ?? 400 })
  }
  if (error instanceof StorageUnavailableError) {
    // The storage backend is down or overloaded: the client may retry; the log has the request id.
    return new RegistryError('UNAVAILABLE', undefined, { cause: error, headers: { 'Retry-After': '5' } })
  }
  if (error instanceof StorageDriverError) return new RegistryError('UNKNOWN', undefined, { cause: error })
  const status = fastifyError.statusCode
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code = (fastifyError.code !== undefined ? fastifyCodes[fastifyError.code] : undefined) ?? 'UNSUPPORTED'
    return new RegistryError(code, { reason: fastifyError.message }, { statusCode: status })
  }
  return new RegistryError('UNKNOWN', undefined, { cause: error })
}

export function sendError (reply: FastifyReply, error: RegistryError): FastifyReply {
  return reply
    .code(error.statusCode)
    .headers(error.headers)
    .header('content-type', 'application/json; charset=utf-8')
    .send(JSON.stringify(toErrorBody(error)))
}

/** Largest unread request body read and dropped after an error answer; a larger one closes the connection. */
export const DRAIN_LIMIT = 16 * 1024 * 1024
/** How long the rest of a refused body may take to arrive before the connection is closed. */
export const DRAIN_TIMEOUT_MS = 10_000

/**
 * Whether the rest of a refused request's body can be read and dropped after the answer:
 * a declared length within DRAIN_LIMIT, still arriving. Then the client, still sending, reads
 * the error rather than a reset connection (Node has no lingering close), and the connection
 * stays usable. A chunked or larger body is not read: the answer closes the connection.
 */
function canDrain (request: FastifyRequest): boolean {
  const raw = request.raw
  const declared = Number(raw.headers['content-length'])
  return !raw.destroyed && !raw.readableEnded && Number.isSafeInteger(declared) && declared <= DRAIN_LIMIT
}

/**
 * Reads and drops the rest of the body in the background, the answer already sent, for at
 * most DRAIN_TIMEOUT_MS (its size is bounded by its declared length): a client that stops
 * sending has the connection closed then, long after it could read the answer.
 *
 * When the connection is to close after the answer (the client sent `Connection: close`, as
 * a Node client without an agent does), Node closes it as soon as the answer is out, with the
 * rest of the body unread: the kernel then answers the client's next bytes with a reset, which
 * can erase the answer before the client reads it (RFC 9112 section 9.6). So the close is
 * staged: the answer, then our side's FIN, then the rest of the body read, then the close.
 */
function drainInBackground (request: FastifyRequest): void {
  const raw = request.raw
  const socket = raw.socket
  let stopped = false
  let closing = false
  const stop = (): void => {
    stopped = true
    clearTimeout(timer)
    raw.off('end', stop)
    raw.off('error', stop)
    raw.off('close', stop)
    if (closing) socket.destroy()
  }
  const timer = setTimeout(() => {
    stop()
    if (!raw.complete) socket?.destroy()
  }, DRAIN_TIMEOUT_MS)
  timer.unref()
  raw.on('end', stop)
  raw.on('error', stop)
  raw.on('close', stop)
  raw.on('data', discard)
  raw.resume()
  if (socket instanceof Socket) {
    // Node's server calls `destroySoon` once the answer to a request asking to close is out.
    const staged = socket as Socket & { destroySoon?: () => void }
    staged.destroySoon = function closeInStages (): void {
      closing = true
      socket.end()
      if (stopped || raw.complete) socket.destroy()
    }
  }
}

function discard (): void {}

async function errorsPlugin (app: FastifyInstance): Promise<void> {
  app.setErrorHandler(function registryErrorHandler (error: unknown, request: FastifyRequest, reply: FastifyReply) {
    const registryError = toRegistryError(error)
    const log = request.ociContext?.log ?? request.log
    if (request.raw.destroyed && !request.raw.complete) {
      // The client went away mid-request: nothing to answer, and not a server fault.
      log.info({ code: (error as { code?: string }).code }, 'client closed the request')
      return
    }
    if (registryError.statusCode >= 500) {
      log.error({ err: error }, 'request failed')
    } else {
      log.info({ code: registryError.code, detail: registryError.detail }, 'request refused')
    }
    if (reply.sent || reply.raw.headersSent) return
    // A refused request may leave body bytes unread: answer at once, then read a small rest,
    // else do not keep a half-read connection. Bodies of callers refused access or slowed
    // down are never read.
    if (!request.raw.complete) {
      const mayDrain = ![401, 403, 429].includes(registryError.statusCode)
      if (mayDrain && canDrain(request)) drainInBackground(request)
      else reply.header('connection', 'close')
    }
    return sendError(reply, registryError)
  })
}

/**
 * Methods Node parses but Fastify does not route (WebDAV's PROPFIND, MKCOL, LOCK...) miss the
 * registry's `/v2/*` route and land in a not-found handler, the host's by default. Registered
 * with the prefix `/v2` after the context hook, this one gives them the hook's answer (405 with
 * `Allow` on a known route, else 404) in the spec's body, and leaves the host's handler alone.
 */
export async function unroutedMethods (v2: FastifyInstance): Promise<void> {
  v2.setNotFoundHandler(async function notRouted (request: FastifyRequest) {
    // The context hook has answered already: this is the last line of defence.
    throw new RegistryError('UNSUPPORTED', { method: request.method, reason: 'method not allowed' }, { statusCode: 405 })
  })
}

/** True for the registry's paths, `<prefix>/v2` and below. */
function isRegistryPath (url: string, prefix: string): boolean {
  const path = url.split('?')[0] ?? ''
  return path === `${prefix}/v2` || path.startsWith(`${prefix}/v2/`)
}

/**
 * A `frameworkErrors` option for the host's Fastify server: errors Fastify finds before any
 * route or plugin runs (a path with bad percent-encoding, `FST_ERR_BAD_URL`; a too long
 * parameter) get the spec's body under `<prefix>/v2/`, and Fastify's own answer elsewhere.
 * It is a server option, out of a plugin's reach: `Fastify({ frameworkErrors: registryFrameworkErrors() })`.
 */
export function registryFrameworkErrors (options: { prefix?: string } = {}) {
  const prefix = (options.prefix ?? '').replace(/\/+$/, '')
  return function frameworkErrors (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
    if (!isRegistryPath(request.raw.url ?? request.url, prefix)) {
      reply.send(error)
      return
    }
    reply.header('docker-distribution-api-version', 'registry/2.0')
    sendError(reply, toRegistryError(error))
  }
}

export default fp(errorsPlugin, { fastify: '5.x', name: 'oci-registry-errors' })
