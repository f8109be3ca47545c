/**
 * The example server's debug listener, as CNCF distribution's `http.debug.addr`: Prometheus
 * metrics (at `http.debug.prometheus.path`), distribution's `/debug/health`, and `/livez` and
 * `/readyz`, on an address of its own that the registry's clients never see. In a cluster,
 * every worker serves it and the metrics are the whole cluster's.
 */

import cluster from 'node:cluster'
import Fastify, { type FastifyInstance } from 'fastify'
import type { DebugListener } from './operations-config.js'

/**
 * The debug listener of `app`, not listening yet; it closes with `app`. Call before `app` is
 * ready (it adds a hook), and `listen` it once `app` listens.
 */
export function debugListener (app: FastifyInstance, debug: DebugListener): FastifyInstance {
  const server = Fastify({ loggerInstance: app.log.child({ listener: 'debug' }) }) as unknown as FastifyInstance
  let clusterMetrics: (() => Promise<string>) | undefined
  app.addHook('onReady', async () => {
    const metrics = app.ociRegistryOperations.metrics
    if (cluster.isWorker && metrics !== undefined) {
      const { shareWithCluster } = await import('../lib/metrics/cluster.js')
      clusterMetrics = await shareWithCluster(metrics.registry)
    }
  })
  app.addHook('onClose', async () => { await server.close() })

  if (debug.metricsPath !== false) {
    server.get(debug.metricsPath, async (_request, reply) => {
      const metrics = app.ociRegistryOperations.metrics
      if (metrics === undefined) return await reply.code(404).send({ error: 'metrics are off' })
      const text = clusterMetrics === undefined ? await metrics.render() : await clusterMetrics()
      return await reply.header('content-type', metrics.contentType).send(text)
    })
  }
  server.get('/debug/health', async (_request, reply) => {
    const answer = app.ociRegistryOperations.health?.debugHealth() ?? { statusCode: 200, body: {} }
    return await reply.code(answer.statusCode).send(answer.body)
  })
  server.get('/livez', async () => ({ live: true }))
  server.get('/readyz', async (_request, reply) => {
    const health = app.ociRegistryOperations.health
    if (health === undefined) return { ready: true, checks: {} }
    const { statusCode, body } = health.readiness()
    return await reply.code(statusCode).send(body)
  })
  return server
}

/** Listens on the debug address; logs where. */
export async function listenDebug (server: FastifyInstance, debug: DebugListener): Promise<void> {
  await server.listen({ host: debug.host, port: debug.port, listenTextResolver: (address) => `debug listener at ${address}` })
}
