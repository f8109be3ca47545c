import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { HttpMethod, RouteName } from '../../lib/routes.js'
import { RegistryError } from '../../lib/errors.js'
import type { RegistryRequestContext } from '../context.js'
import type { Repository } from '../../lib/storage/registry.js'

/** A handler: reads `request.registry`, calls lib, writes headers and status. */
export type RouteHandler = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>

export type RouteHandlers = Partial<Record<RouteName, Partial<Record<HttpMethod, RouteHandler>>>>

/** The repository of a route that names one (the matcher guarantees it for those routes). */
export function repositoryOf (context: RegistryRequestContext): Repository {
  if (context.repository === undefined) throw new RegistryError('NAME_INVALID', { reason: 'no repository in path' })
  return context.repository
}

/** A variable the route's path template guarantees. */
export function varOf (context: RegistryRequestContext, key: 'reference' | 'digest' | 'uuid'): string {
  const value = context.vars[key]
  if (value === undefined) throw new TypeError(`route ${context.route?.name ?? '?'} has no ${key}`)
  return value
}

/**
 * The request body as a byte stream; empty when the request has none. A reader that stops
 * early (a size limit, a storage failure) leaves the request open: destroying it would close
 * the socket the error answer has to go out on, and the error would pass for a client gone.
 */
export function bodyOf (request: FastifyRequest): AsyncIterable<Uint8Array> {
  const body = request.body as AsyncIterable<Uint8Array> | undefined
  if (body instanceof Readable) return body.iterator({ destroyOnReturn: false })
  if (body !== undefined && body !== null && typeof (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function') return body
  return (async function * empty () {})()
}

/** True when the request carries a body (Fastify only hands a stream to requests that do). */
export function hasBody (request: FastifyRequest): boolean {
  return request.body !== undefined && request.body !== null
}
