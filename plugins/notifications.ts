/**
 * Notifications (webhooks): builds the notifications service from the `notifications` option
 * (distribution's section), attaches it to the registry's events, starts its delivery when the
 * server is ready and stops it before the server closes; serves the dead letters' admin API.
 * Decorates the registry's context with `ociNotifications` (the service, or null when no
 * endpoint is enabled), whose `stats()` gives the queue figures.
 */

import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { hostname } from 'node:os'
import { randomUUID } from 'node:crypto'
import { resolveNotifications, type NotificationFormat, type NotificationsOptions } from '../lib/notifications/options.js'
import { envelopeFormatter, type Formatter } from '../lib/notifications/envelope.js'
import { StorageOutbox } from '../lib/notifications/outbox.js'
import { NotificationService, type EndpointStats } from '../lib/notifications/service.js'
import type { RegistryMetrics } from '../lib/metrics/metrics.js'
import { deadLettersRoute, replayRoute } from '../lib/notifications/routes.js'
import { importOptional } from '../lib/optional.js'
import { extensionRoute } from './routes/types.js'

export interface NotificationsPluginOptions {
  notifications?: NotificationsOptions | undefined
  /** The registry's public base URL: `target.url` of the events is built on it when set. */
  publicUrl?: string | undefined
  /** The shared Redis (`cache.redis`): the outbox is kept there when set, else in storage. */
  redis?: { url: string, keyPrefix: string } | undefined
  /** The Prometheus metrics, when on: the queue figures are added to them. */
  metrics?: RegistryMetrics | undefined
}

/** The queue figures as gauges, one series per endpoint (read at each scrape). */
function registerQueueMetrics (metrics: RegistryMetrics, service: NotificationService): void {
  const figures: Array<[string, string, (stats: EndpointStats) => number]> = [
    ['registry_notifications_pending', 'Events waiting to be delivered to the endpoint (exact on the process that delivers).', (stats) => stats.pending],
    ['registry_notifications_delivered', 'Events delivered to the endpoint since the process started.', (stats) => stats.delivered],
    ['registry_notifications_failures', 'Failed delivery attempts to the endpoint since the process started.', (stats) => stats.failures],
    ['registry_notifications_dead_lettered', 'Events given up on and moved to the dead letters since the process started.', (stats) => stats.deadLettered],
    ['registry_notifications_failing', '1 while the endpoint has failed `threshold` times in a row.', (stats) => stats.failing ? 1 : 0]
  ]
  for (const [name, help, figure] of figures) {
    metrics.registerGauge({
      name,
      help,
      labelNames: ['endpoint'],
      collect: () => service.stats().endpoints.map((stats) => ({ labels: { endpoint: stats.name }, value: figure(stats) }))
    })
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The notifications service, or null when no endpoint is enabled. */
    ociNotifications: NotificationService | null
  }
}

/** `host:port` of this node, as distribution's `source.addr`; the port once listening. */
function sourceAddress (app: FastifyInstance): string {
  const address = app.server.address()
  return typeof address === 'object' && address !== null ? `${hostname()}:${address.port}` : hostname()
}

async function notificationsPlugin (app: FastifyInstance, options: NotificationsPluginOptions): Promise<void> {
  const resolved = resolveNotifications(options.notifications)
  if (resolved.endpoints.length === 0) {
    app.decorate('ociNotifications', null)
    return
  }
  const formatters = new Map<NotificationFormat, Formatter>([['envelope', envelopeFormatter]])
  if (resolved.endpoints.some((endpoint) => endpoint.format === 'cloudevents')) {
    formatters.set('cloudevents', (await importOptional('cloudevents')).cloudEventsFormatter)
  }
  const instanceID = randomUUID()
  const store = options.redis === undefined
    ? new StorageOutbox(app.ociRegistry.driver)
    : new (await importOptional('redisOutbox')).RedisOutbox(options.redis.url, options.redis.keyPrefix)
  const service = new NotificationService({
    store,
    endpoints: resolved.endpoints,
    formatters,
    context: {
      source: () => ({ addr: sourceAddress(app), instanceID }),
      publicUrl: options.publicUrl,
      includeReferences: resolved.includeReferences
    },
    log: app.log
  })
  service.attach(app.ociRegistry.events)
  app.decorate('ociNotifications', service)
  if (options.metrics !== undefined) registerQueueMetrics(options.metrics, service)

  app.ociRegistryRoutes.add(extensionRoute(deadLettersRoute, {
    GET: async (request, reply) => {
      const { endpoint, id } = request.query
      const letters = await service.deadLetters(endpoint)
      return await reply.send({ deadletters: id === undefined ? letters : letters.filter((letter) => letter.event.id === id) })
    }
  }))
  app.ociRegistryRoutes.add(extensionRoute(replayRoute, {
    POST: async (request, reply) => {
      const { endpoint, id } = request.query
      return await reply.send({ replayed: await service.replay(endpoint, id === undefined ? undefined : new Set([id])) })
    }
  }))

  app.addHook('onReady', async () => { service.start() })
  // Before the storage closes: what is not delivered stays in the outbox for the next start.
  app.addHook('preClose', async () => { await service.close() })
}

export default fp(notificationsPlugin, { fastify: '5.x', name: 'oci-registry-notifications' })
