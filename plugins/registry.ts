/**
 * The umbrella plugin a user registers. Encapsulated on purpose (its routes live in a child
 * context): its error handler, content-type parser, hooks and request decorator stay inside,
 * so the host app is untouched outside `/v2/` (its one decorator is below).
 *
 * Fastify's router cannot capture a multi-segment name mid-path, so the plugin registers
 * `/v2` and `/v2/*` for every method and dispatches from the route descriptors: the context
 * hook resolves the route (404 or 405 with `Allow` when there is none), this dispatcher
 * validates path variables, query and headers against the descriptor's schemas and calls the
 * route's handler with the typed request. Extension routes (`/v2/_oci/...`) go through the
 * same table, so they get context, access checks, validation, errors and URLs alike.
 */

import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { RegistryService } from '../lib/storage/registry.js'
import { resolveOptions, type RegistryOptions, type ResolvedOptions } from '../lib/options.js'
import { RouteTable, paramsSchema, routes, validateInput, type HttpMethod, type RouteDescriptor } from '../lib/routes.js'
import errorsPlugin, { unroutedMethods } from './errors.js'
import storagePlugin from './storage.js'
import contextPlugin from './context.js'
import authPlugin from './auth.js'
import usagePlugin from './usage.js'
import scrubPlugin from './scrub.js'
import notificationsPlugin from './notifications.js'
import gcPlugin from './gc.js'
import metricsPlugin from './metrics.js'
import healthPlugin from './health.js'
import maintenancePlugin from './maintenance.js'
import rateLimitPlugin from './rate-limit.js'
import type { RegistryOperations } from './operations.js'
import { resolveMetricsOptions } from '../lib/metrics/options.js'
import { resolveHealthOptions } from '../lib/health/options.js'
import { resolveRateLimitOptions } from '../lib/ratelimit/options.js'
import type { ExtensionRoute, MethodHandlers, RouteHandlers, StoredHandler } from './routes/types.js'
import { baseHandlers } from './routes/base.js'
import { blobHandlers } from './routes/blobs.js'
import { uploadHandlers } from './routes/uploads.js'
import { manifestHandlers } from './routes/manifests.js'
import { discoveryHandlers } from './routes/discovery.js'

export type { RegistryOptions } from '../lib/options.js'
export type { RegistryOperations } from './operations.js'
export type { ExtensionRoute, RouteHandler, RouteRequest, RouteMethodHandlers } from './routes/types.js'
export { extensionRoute } from './routes/types.js'

/** The plugin's options: the registry's configuration, plus extension routes. */
export type RegistryPluginOptions = RegistryOptions & {
  /** Routes under `/v2/_oci/` served like the spec's (see `extensionRoute`). */
  extensions?: readonly ExtensionRoute[]
}

/** Adds extension routes from a plugin registered inside the registry's context, before it is ready. */
export interface RegistryRoutes {
  add: (extension: ExtensionRoute) => void
  /** Every route served: the spec's and the extensions' (for docs and clients). */
  readonly routes: readonly RouteDescriptor[]
}

declare module 'fastify' {
  interface FastifyInstance {
    ociRegistryRoutes: RegistryRoutes
  }
}

/** Every method Fastify routes: a method no route describes still gets the spec's 405 body. */
function routedMethods (app: FastifyInstance): string[] {
  return [...app.supportedMethods]
}

/** The routes and their handlers, looked up by descriptor. */
class Dispatch {
  readonly table = new RouteTable()
  private readonly handlers = new Map<RouteDescriptor, MethodHandlers>()
  private sealed = false

  add (route: RouteDescriptor, handlers: MethodHandlers, options: { extension?: boolean } = {}): void {
    if (this.sealed) throw new Error(`route ${route.name}: routes are added before the registry is ready`)
    const described = Object.keys(route.methods).sort()
    const handled = Object.keys(handlers).sort()
    if (described.join() !== handled.join()) {
      throw new TypeError(`route ${route.name}: handlers for ${handled.join(', ') || 'no method'}, but it describes ${described.join(', ')}`)
    }
    this.table.add(route, options)
    this.handlers.set(route, handlers)
  }

  seal (): void {
    this.sealed = true
  }

  handler (route: RouteDescriptor, method: string): StoredHandler | undefined {
    const handlers = this.handlers.get(route)
    return handlers !== undefined && Object.hasOwn(handlers, method) ? handlers[method as HttpMethod] : undefined
  }
}

function specHandlers (options: ResolvedOptions): Map<RouteDescriptor, MethodHandlers> {
  const tables: RouteHandlers[] = [baseHandlers, blobHandlers, uploadHandlers(), manifestHandlers(options), discoveryHandlers]
  const merged = new Map<RouteDescriptor, MethodHandlers>(routes.map((route) => [route, {}]))
  for (const table of tables) {
    for (const route of routes) {
      const methods: MethodHandlers | undefined = table[route.name as keyof RouteHandlers]
      if (methods !== undefined) merged.set(route, { ...merged.get(route), ...methods })
    }
  }
  return merged
}

/**
 * The one route handler: the context hook has resolved the route and method (or answered
 * 404/405); validates the request against the descriptor, then calls the route's handler.
 */
function dispatcher (dispatch: Dispatch) {
  return async function dispatchRequest (request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const { route, method, vars } = request.ociContext
    const handler = route === undefined ? undefined : dispatch.handler(route, request.method)
    if (route === undefined || method === undefined || handler === undefined) {
      throw new Error(`no handler for ${request.method} ${request.url}: the context hook resolves routes first`)
    }
    request.params = validateInput(paramsSchema(route, method), vars, 'UNSUPPORTED')
    if (method.query !== undefined) validateInput(method.query, request.query, 'UNSUPPORTED')
    if (method.headers !== undefined) validateInput(method.headers, request.headers, 'UNSUPPORTED')
    // The request now has the types the handler's descriptor gives it (checked just above).
    return await (handler as (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>)(request, reply)
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The registry's services: storage, the write path's events (`events.on(...)`) and policy
     * hooks (`policies.add(...)`), read-only mode. On the host and inside the plugin alike.
     */
    ociRegistry: RegistryService
  }
}

/** Handed to the encapsulated part: shows the registry's services to the host once built. */
interface ExposeOption {
  expose?: (services: RegistryService) => void
  /** Filled by the operations plugins that are on; the host's `ociRegistryOperations`. */
  operations?: RegistryOperations
}

const registryContext: FastifyPluginAsync<RegistryPluginOptions & ExposeOption> = async function registryContext (app: FastifyInstance, options: RegistryPluginOptions & ExposeOption) {
  const { expose, operations = {}, extensions = [], ...registryOptions } = options
  const resolved = resolveOptions(registryOptions)
  const dispatch = new Dispatch()
  for (const [route, handlers] of specHandlers(resolved)) dispatch.add(route, handlers)
  for (const extension of extensions) dispatch.add(extension.route, extension.handlers, { extension: true })
  app.decorate('ociRegistryRoutes', {
    add: (extension: ExtensionRoute) => dispatch.add(extension.route, extension.handlers, { extension: true }),
    get routes () { return dispatch.table.routes }
  })
  app.addHook('onReady', async function sealRoutes () {
    dispatch.seal()
  })

  await app.register(errorsPlugin)
  await app.register(storagePlugin, resolved)
  expose?.(app.ociRegistry)
  await app.register(contextPlugin, { ...resolved, routes: dispatch.table })
  // Operations, each from its option; metrics before auth, so refused requests are counted in flight too.
  const metrics = resolveMetricsOptions(registryOptions.metrics)
  if (metrics.enabled) await app.register(metricsPlugin, { ...metrics, operations })
  const health = resolveHealthOptions(registryOptions.health)
  if (health.enabled) await app.register(healthPlugin, { ...health, redis: { ...health.redis, configured: resolved.cache.redis !== undefined }, operations })
  // After the context, before any body is read: a refused request never reaches a handler.
  await app.register(authPlugin, resolved)
  // After auth, before any body is read: read-only mode refuses changes of callers it knows.
  await app.register(maintenancePlugin)
  // Before the routes below: it hooks every route added after it.
  const rateLimit = resolveRateLimitOptions(registryOptions.rateLimit)
  if (rateLimit.enabled) {
    const { redis, keyPrefix } = resolved.cache
    await app.register(rateLimitPlugin, { ...rateLimit, redis: redis === undefined ? undefined : { url: redis, keyPrefix } })
  }
  // The storage lifecycle and notifications: listeners of the write path, with admin routes.
  await app.register(usagePlugin, { operations })
  await app.register(scrubPlugin, resolved.scrub)
  await app.register(notificationsPlugin, {
    notifications: registryOptions.notifications,
    publicUrl: resolved.publicUrl,
    redis: resolved.cache.redis === undefined ? undefined : { url: resolved.cache.redis, keyPrefix: resolved.cache.keyPrefix },
    metrics: operations.metrics
  })
  await app.register(gcPlugin, { ...(registryOptions.gc === undefined ? {} : { gc: registryOptions.gc }), cache: resolved.cache })

  // Bodies reach handlers as streams: blobs are never buffered, manifests are read with a limit.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', function passThrough (_request, payload, done) {
    done(null, payload)
  })

  const handler = dispatcher(dispatch)
  const methods = routedMethods(app)
  app.route({ method: methods, url: '/v2', handler, exposeHeadRoute: false })
  app.route({ method: methods, url: '/v2/*', handler, exposeHeadRoute: false })
  // After the context hook: methods Fastify does not route get its answer too.
  await app.register(unroutedMethods, { prefix: '/v2' })
}

/**
 * The plugin a user registers. Everything it adds (routes, error handler, parsers, hooks) lives
 * in an encapsulated child context; the host gets decorators: `ociRegistry`, the RegistryService,
 * where embedders subscribe to events (`app.ociRegistry.events.on(...)`) and add policy hooks
 * (`app.ociRegistry.policies.add(...)`), and `ociRegistryOperations`, what the operations
 * plugins that are on expose (metrics, health), for a host to serve elsewhere. A host that registers the plugin twice (two prefixes)
 * keeps the first registration's decorators. Fastify does not apply `prefix` to a plugin wrapped
 * in fastify-plugin, so it is handed on to the child.
 */
const ociRegistry = fp(async function ociRegistry (host: FastifyInstance, options: RegistryPluginOptions) {
  const { prefix } = options as RegistryPluginOptions & { prefix?: string }
  const operations: RegistryOperations = {}
  if (!host.hasDecorator('ociRegistryOperations')) host.decorate('ociRegistryOperations', operations)
  await host.register(registryContext, {
    ...options,
    ...(prefix === undefined ? {} : { prefix }),
    operations,
    expose: (services) => {
      if (!host.hasDecorator('ociRegistry')) host.decorate('ociRegistry', services)
    }
  })
}, { fastify: '5.x', name: 'fastify-oci-registry' })

export default ociRegistry
export { ociRegistry }
export { RegistryError, ErrorCodes, registerError, errorDescriptors } from '../lib/errors.js'
export { routes, defineRoute, EXTENSION_PREFIX } from '../lib/routes.js'
export { UrlBuilder } from '../lib/urls.js'
export { registryFrameworkErrors } from './errors.js'
export type { RegistryEvent, RegistryEventMap, RegistryEventType, EventOrigin, EventListener, ListenOptions } from '../lib/events.js'
export type { RepositoryChange, ChangeAction, PolicyHook } from '../lib/policies.js'
