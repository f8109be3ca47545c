/**
 * The umbrella plugin a user registers. Encapsulated on purpose (not wrapped in
 * fastify-plugin): its error handler, content-type parser, hooks and request decorator stay
 * inside, so the host app is untouched outside `/v2/` (its one decorator is below).
 *
 * Fastify's router cannot capture a multi-segment name mid-path, so the plugin registers
 * `/v2/` and `/v2/*` and dispatches from the route descriptors: the context hook resolves
 * the route, this dispatcher checks the method, validates query and headers against the
 * descriptor's schemas and calls the route's handler.
 */

import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Registry } from '../lib/storage/registry.js'
import { resolveOptions, type RegistryOptions, type ResolvedOptions } from '../lib/options.js'
import { RegistryError } from '../lib/errors.js'
import { validateInput, type HttpMethod } from '../lib/routes.js'
import errorsPlugin from './errors.js'
import storagePlugin from './storage.js'
import contextPlugin from './context.js'
import authPlugin from './auth.js'
import type { RouteHandler, RouteHandlers } from './routes/types.js'
import { baseHandlers } from './routes/base.js'
import { blobHandlers } from './routes/blobs.js'
import { uploadHandlers } from './routes/uploads.js'
import { manifestHandlers } from './routes/manifests.js'
import { discoveryHandlers } from './routes/discovery.js'

export type { RegistryOptions } from '../lib/options.js'

const METHODS: HttpMethod[] = ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE']

function handlerTable (options: ResolvedOptions): RouteHandlers {
  const tables: RouteHandlers[] = [baseHandlers, blobHandlers, uploadHandlers(), manifestHandlers(options), discoveryHandlers]
  const merged: RouteHandlers = {}
  for (const table of tables) {
    for (const [route, methods] of Object.entries(table) as Array<[keyof RouteHandlers, Partial<Record<HttpMethod, RouteHandler>>]>) {
      merged[route] = { ...merged[route], ...methods }
    }
  }
  return merged
}

function dispatcher (handlers: RouteHandlers) {
  return async function dispatch (request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const { route, method } = request.registry
    if (route === undefined) {
      throw new RegistryError('UNSUPPORTED', { path: request.url.split('?')[0], reason: 'no such endpoint' }, { statusCode: 404 })
    }
    const handler = handlers[route.name]?.[request.method as HttpMethod]
    if (method === undefined || handler === undefined) {
      const allowed = Object.keys(route.methods).filter((name) => handlers[route.name]?.[name as HttpMethod] !== undefined)
      throw new RegistryError('UNSUPPORTED', { method: request.method, reason: 'method not allowed' }, {
        statusCode: 405, headers: { Allow: allowed.join(', ') }
      })
    }
    if (method.query !== undefined) validateInput(method.query, request.query, 'UNSUPPORTED')
    if (method.headers !== undefined) validateInput(method.headers, request.headers, 'UNSUPPORTED')
    return await handler(request, reply)
  }
}

/** Handed to the encapsulated part: shows the registry's services to the host once built. */
interface ExposeOption {
  expose?: (services: Registry) => void
}

const registryContext: FastifyPluginAsync<RegistryOptions & ExposeOption> = async function registryContext (app: FastifyInstance, options: RegistryOptions & ExposeOption) {
  const { expose, ...registryOptions } = options
  const resolved = resolveOptions(registryOptions)
  await app.register(errorsPlugin)
  await app.register(storagePlugin, resolved)
  expose?.(app.ociRegistry)
  await app.register(contextPlugin, resolved)
  // After the context, before any body is read: a refused request never reaches a handler.
  await app.register(authPlugin, resolved)

  // Bodies reach handlers as streams: blobs are never buffered, manifests are read with a limit.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', function passThrough (_request, payload, done) {
    done(null, payload)
  })

  const dispatch = dispatcher(handlerTable(resolved))
  app.route({ method: METHODS, url: '/v2', handler: dispatch, exposeHeadRoute: false })
  app.route({ method: METHODS, url: '/v2/*', handler: dispatch, exposeHeadRoute: false })
}

/**
 * The plugin a user registers. Everything it adds (routes, error handler, parsers, hooks) lives
 * in an encapsulated child context; the host gets one decorator, `ociRegistry`: the services,
 * where embedders subscribe to events (`app.ociRegistry.events.on(...)`) and add policy hooks
 * (`app.ociRegistry.policies.add(...)`). A host that registers the plugin twice (two prefixes)
 * keeps the first registration's decorator. Fastify does not apply `prefix` to a plugin wrapped
 * in fastify-plugin, so it is handed on to the child.
 */
const registry = fp(async function registry (host: FastifyInstance, options: RegistryOptions) {
  const { prefix } = options as RegistryOptions & { prefix?: string }
  await host.register(registryContext, {
    ...options,
    ...(prefix === undefined ? {} : { prefix }),
    expose: (services) => {
      if (!host.hasDecorator('ociRegistry')) host.decorate('ociRegistry', services)
    }
  })
}, { fastify: '5.x', name: 'fastify-oci-registry' })

export default registry
export { registry }
export { RegistryError, ErrorCodes, registerError, errorDescriptors } from '../lib/errors.js'
export { routes } from '../lib/routes.js'
export { UrlBuilder } from '../lib/urls.js'
export type { RegistryEvent, RegistryEventMap, RegistryEventType, EventOrigin, EventListener, ListenOptions } from '../lib/events.js'
export type { RepositoryChange, ChangeAction, PolicyHook } from '../lib/policies.js'
