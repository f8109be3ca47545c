import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest, RawRequestDefaultExpression, RawServerDefault, RouteGenericInterface } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { TObject } from '@sinclair/typebox'
import type { HttpMethod, RouteDescriptor, SpecRoutes } from '../../lib/routes.js'
import { RegistryError } from '../../lib/errors.js'
import type { RegistryRequestContext } from '../context.js'
import type { Repository } from '../../lib/storage/registry.js'

/** The methods a route describes. */
export type MethodOf<Route extends RouteDescriptor> = keyof Route['methods'] & HttpMethod

type Described<Route extends RouteDescriptor, Method extends MethodOf<Route>> = NonNullable<Route['methods'][Method]>
type ParamsSchema<Route extends RouteDescriptor, Method extends MethodOf<Route>> =
  Described<Route, Method> extends { params: infer Params extends TObject } ? Params : Route['params']
type SchemaOf<Route extends RouteDescriptor, Method extends MethodOf<Route>, Key extends 'query' | 'headers'> =
  Described<Route, Method> extends { [key in Key]: infer Schema extends TObject } ? Schema : undefined

/**
 * The request a handler of `Method` on `Route` receives: params, query and headers typed from
 * the descriptor's TypeBox schemas through the TypeBox type provider. The dispatcher validates
 * them against the same schemas before the handler runs.
 */
export type RouteRequest<Route extends RouteDescriptor, Method extends MethodOf<Route>> = FastifyRequest<
RouteGenericInterface,
RawServerDefault,
RawRequestDefaultExpression,
{ params: ParamsSchema<Route, Method>, querystring: SchemaOf<Route, Method, 'query'>, headers: SchemaOf<Route, Method, 'headers'> },
TypeBoxTypeProvider
>

/** A handler: reads its typed request and `request.ociContext`, calls lib, writes headers and status. */
export type RouteHandler<Route extends RouteDescriptor, Method extends MethodOf<Route>> =
  (request: RouteRequest<Route, Method>, reply: FastifyReply) => Promise<unknown>

/** A handler for each method a route describes. */
export type RouteMethodHandlers<Route extends RouteDescriptor> = { [Method in MethodOf<Route>]: RouteHandler<Route, Method> }

/** Handlers of the spec's routes, by route name (each file provides some). */
export type RouteHandlers = { [Name in keyof SpecRoutes]?: Partial<RouteMethodHandlers<SpecRoutes[Name]>> }

/**
 * A route of an extension: a descriptor under `/v2/_oci/` and a handler for each of its
 * methods. It gets the registry's context, access checks, validation, error answers, URL
 * building and documentation like the spec's routes.
 */
export interface ExtensionRoute {
  readonly route: RouteDescriptor
  readonly handlers: MethodHandlers
}

/**
 * A handler as the dispatcher stores it: its request type is its route's, which the
 * dispatcher guarantees by validating against the same descriptor before calling it.
 */
export type StoredHandler = (request: never, reply: FastifyReply) => Promise<unknown>
export type MethodHandlers = Readonly<Partial<Record<HttpMethod, StoredHandler>>>

/** An extension route, with the handlers typed from its descriptor. */
export function extensionRoute<const Route extends RouteDescriptor> (route: Route, handlers: RouteMethodHandlers<Route>): ExtensionRoute {
  return { route, handlers }
}

/** The repository of a route that names one (the matcher guarantees it for those routes). */
export function repositoryOf (context: RegistryRequestContext): Repository {
  if (context.repository === undefined) throw new RegistryError('NAME_INVALID', { reason: 'no repository in path' })
  return context.repository
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
