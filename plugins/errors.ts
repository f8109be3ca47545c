/**
 * The error registry's HTTP face: the one error handler of the registry's context. Every
 * error (a RegistryError from lib code, Fastify's own, a storage failure) leaves here as the
 * spec's body `{"errors":[{"code","message","detail"}]}` with the descriptor's status.
 */

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

/** Largest unread request body read and dropped before an error answer; a larger one closes the connection. */
export const DRAIN_LIMIT = 16 * 1024 * 1024
const DRAIN_TIMEOUT_MS = 10_000

/**
 * Reads and drops the rest of a refused request's body when it is small enough, so that a
 * client still sending it reads the error instead of a reset connection (Node has no lingering
 * close). True when the body is now read; false when the connection must be closed instead.
 * Only for callers allowed in: an unauthenticated body is not read at all.
 */
async function drainBody (request: FastifyRequest): Promise<boolean> {
  const raw = request.raw
  if (raw.complete) return true
  const declared = Number(raw.headers['content-length'])
  if (raw.destroyed || raw.readableEnded || !Number.isSafeInteger(declared) || declared > DRAIN_LIMIT) return false
  return await new Promise<boolean>((resolve) => {
    const done = (drained: boolean): void => {
      clearTimeout(timer)
      raw.off('end', onEnd)
      raw.off('error', onError)
      resolve(drained)
    }
    const onEnd = (): void => done(true)
    const onError = (): void => done(false)
    const timer = setTimeout(() => done(false), DRAIN_TIMEOUT_MS)
    raw.on('end', onEnd)
    raw.on('error', onError)
    raw.resume()
  })
}

async function errorsPlugin (app: FastifyInstance): Promise<void> {
  app.setErrorHandler(function registryErrorHandler (error: unknown, request: FastifyRequest, reply: FastifyReply) {
    const registryError = toRegistryError(error)
    const log = request.registry?.log ?? request.log
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
    // A refused request may leave body bytes unread: read a small rest, else do not keep a
    // half-read connection. Bodies of callers refused access or slowed down are never read.
    const mayDrain = ![401, 403, 429].includes(registryError.statusCode)
    return (mayDrain ? drainBody(request) : Promise.resolve(request.raw.complete)).then((drained) => {
      if (!drained) reply.header('connection', 'close')
      return sendError(reply, registryError)
    })
  })
}

export default fp(errorsPlugin, { fastify: '5.x', name: 'oci-registry-errors' })
