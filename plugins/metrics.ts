/**
 * Prometheus metrics of the registry (the `metrics` option): counts and times every request of
 * the registry's routes by route name, watches the storage base layer, the caches and the
 * write path's events, and serves the text exposition at `path` (unless it is `false`). The
 * metrics object is `app.ociRegistryOperations.metrics`, where other plugins add their figures.
 */

import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { observeStorage } from '../lib/storage/base.js'
import type { ResolvedMetricsOptions } from '../lib/metrics/options.js'
import type { AuthFailureReason, RegistryMetrics } from '../lib/metrics/metrics.js'
import type { RegistryOperations } from './operations.js'

export interface MetricsPluginOptions extends ResolvedMetricsOptions {
  operations: RegistryOperations
}

/** Routes whose requests carry upload bytes. */
const UPLOAD_ROUTES = new Set(['blob-upload', 'blob-upload-chunk'])

/** True for requests of the registry's API (`/v2` and below), not the metrics or health paths. */
function isApiRequest (request: FastifyRequest): boolean {
  const url = request.routeOptions.url ?? ''
  return url.endsWith('/v2') || url.endsWith('/v2/*')
}

function handlerOf (request: FastifyRequest): string {
  return request.ociContext?.route?.name ?? 'unmatched'
}

function declaredLength (value: string | number | string[] | undefined): number | undefined {
  const length = Number(Array.isArray(value) ? value[0] : value)
  return value === undefined || !Number.isSafeInteger(length) || length < 0 ? undefined : length
}

/** The body length answered: nothing for HEAD, 204 and 304; the declared length otherwise. */
function responseLength (request: FastifyRequest, reply: FastifyReply): number | undefined {
  if (request.method === 'HEAD' || reply.statusCode === 204 || reply.statusCode === 304) return 0
  return declaredLength(reply.getHeader('content-length') as string | number | undefined)
}

/** Why access was refused, told apart by what the client sent and the challenge it got. */
function authFailureOf (request: FastifyRequest, reply: FastifyReply): AuthFailureReason | undefined {
  if (reply.statusCode === 403) return 'denied'
  if (reply.statusCode !== 401) return undefined
  if (request.headers.authorization === undefined) return 'missing_credentials'
  return String(reply.getHeader('www-authenticate') ?? '').includes('insufficient_scope') ? 'insufficient_scope' : 'invalid_credentials'
}

function observeRegistry (app: FastifyInstance, metrics: RegistryMetrics): Array<() => void> {
  const registry = app.ociRegistry
  const count = metrics.event.bind(metrics)
  return [
    observeStorage(registry.driver, (event) => { metrics.storageAction(event) }),
    registry.cache.observe((event) => { metrics.cacheLookup(event) }),
    ...(['blob.pushed', 'manifest.pushed', 'gc.completed', 'scrub.completed', 'blob.quarantined'] as const)
      .map((type) => registry.events.on(type, count))
  ]
}

async function metricsPlugin (app: FastifyInstance, options: MetricsPluginOptions): Promise<void> {
  // Loaded only when metrics are on: prom-client costs start-up time.
  const { RegistryMetrics } = await import('../lib/metrics/metrics.js')
  const metrics = new RegistryMetrics({ processMetrics: options.processMetrics })
  options.operations.metrics = metrics
  const stops = observeRegistry(app, metrics)
  app.addHook('onClose', async () => {
    for (const stop of stops) stop()
  })

  app.addHook('onRequest', async function countInFlight (request, reply) {
    if (!isApiRequest(request)) return
    const handler = handlerOf(request)
    const finished = metrics.requestStarted(handler, UPLOAD_ROUTES.has(handler) && request.method !== 'GET' && request.method !== 'DELETE')
    // `close` also comes when the client goes away before the answer, which onResponse misses.
    reply.raw.once('close', finished)
  })

  app.addHook('onResponse', async function countAnswered (request, reply) {
    if (!isApiRequest(request)) return
    const handler = handlerOf(request)
    const responseBytes = responseLength(request, reply)
    metrics.requestFinished({
      handler,
      method: request.method,
      code: reply.statusCode,
      seconds: reply.elapsedTime / 1000,
      requestBytes: declaredLength(request.headers['content-length']),
      responseBytes
    })
    if (request.method === 'GET' && (reply.statusCode === 200 || reply.statusCode === 206) && responseBytes !== undefined) {
      if (handler === 'blob') metrics.bytesPulled('blob', responseBytes)
      else if (handler === 'manifest') metrics.bytesPulled('manifest', responseBytes)
    }
    const failure = authFailureOf(request, reply)
    if (failure !== undefined) metrics.authFailure(failure)
  })

  if (options.path !== false) {
    app.get(options.path, { exposeHeadRoute: false }, async function serveMetrics (_request, reply) {
      return await reply.header('content-type', metrics.contentType).send(await metrics.render())
    })
  }
}

export default fp(metricsPlugin, { fastify: '5.x', name: 'oci-registry-metrics', dependencies: ['oci-registry-context'] })
