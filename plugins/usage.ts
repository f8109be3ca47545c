/**
 * Storage usage: keeps each repository's usage record current from the write path's events and
 * serves `GET /v2/_oci/admin/usage` (see lib/lifecycle/usage.ts).
 */

import type { FastifyInstance } from 'fastify'
import { UsageTracker, readUsage } from '../lib/lifecycle/usage.js'
import { usageRoute } from '../lib/lifecycle/admin-routes.js'
import { extensionRoute } from './routes/types.js'

export default async function usagePlugin (app: FastifyInstance): Promise<void> {
  const registry = app.ociRegistry
  const tracker = new UsageTracker(registry, { log: app.log })
  app.ociRegistryRoutes.add(extensionRoute(usageRoute, {
    GET: async (_request, reply) => {
      // Updates still being written in this process first.
      await tracker.flush()
      return await reply.send(await readUsage(registry))
    }
  }))
  app.addHook('onClose', async () => { await tracker.close() })
}
