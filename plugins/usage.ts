/**
 * Storage usage: keeps each repository's usage record current from the write path's events and
 * serves `GET /v2/_oci/admin/usage` (see lib/lifecycle/usage.ts).
 */

import type { FastifyInstance } from 'fastify'
import { UsageTracker, readUsage } from '../lib/lifecycle/usage.js'
import { usageRoute } from '../lib/lifecycle/admin-routes.js'
import { topWithRest } from '../lib/metrics/metrics.js'
import type { RegistryOperations } from './operations.js'
import { extensionRoute } from './routes/types.js'

export interface UsagePluginOptions {
  /** Gets the tracker as `usage`; its metrics, when on, get usage per repository. */
  operations: RegistryOperations
}

/** Repositories with a series of their own; the rest are summed in one (bounded cardinality). */
const TOP_REPOSITORIES = 20
/** Usage is read from storage at most this often, however often Prometheus scrapes. */
const USAGE_FRESH_MS = 30_000

export default async function usagePlugin (app: FastifyInstance, options: UsagePluginOptions): Promise<void> {
  const registry = app.ociRegistry
  const tracker = new UsageTracker(registry, { log: app.log })
  options.operations.usage = tracker
  const metrics = options.operations.metrics
  if (metrics !== undefined) {
    let read: { at: number, usage: Promise<Awaited<ReturnType<typeof readUsage>>> } | undefined
    const usage = async (): Promise<Awaited<ReturnType<typeof readUsage>>> => {
      if (read === undefined || Date.now() - read.at > USAGE_FRESH_MS) read = { at: Date.now(), usage: readUsage(registry) }
      return await read.usage
    }
    metrics.registerGauge({
      name: 'registry_storage_usage_bytes',
      help: `Bytes of manifests and linked blobs per repository (the ${TOP_REPOSITORIES} largest; the rest summed as "(other)").`,
      labelNames: ['repository'],
      collect: async () => topWithRest((await usage()).repositories.map((entry) => [entry.repository, entry.totalBytes] as const), TOP_REPOSITORIES)
        .map(([repository, value]) => ({ labels: { repository }, value }))
    })
    metrics.registerGauge({
      name: 'registry_storage_stored_bytes',
      help: 'Bytes the store holds, each blob and manifest counted once.',
      collect: async () => (await usage()).totalBytes
    })
  }
  app.ociRegistryRoutes.add(extensionRoute(usageRoute, {
    GET: async (_request, reply) => {
      // Updates still being written in this process first.
      await tracker.flush()
      return await reply.send(await readUsage(registry))
    }
  }))
  app.addHook('onClose', async () => { await tracker.close() })
}
