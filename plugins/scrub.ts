/**
 * The integrity scrub in a server: `POST/GET /v2/_oci/admin/scrub`, and a scheduled run every
 * `scrub.intervalSeconds` when `scrub.enabled` (see lib/lifecycle/scrub.ts). One run at a time
 * in a process; a POST while one runs names it.
 */

import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { readScrubReports, scrub, type ResolvedScrubOptions, type ScrubRunOptions } from '../lib/lifecycle/scrub.js'
import { scrubRoute } from '../lib/lifecycle/admin-routes.js'
import type { ScrubReport } from '../lib/lifecycle/reports.js'
import { readOnlyError } from '../lib/policies.js'
import { extensionRoute } from './routes/types.js'

export default async function scrubPlugin (app: FastifyInstance, options: ResolvedScrubOptions): Promise<void> {
  const registry = app.ociRegistry
  let running: { id: string, startedAt: string, done: Promise<ScrubReport | undefined> } | undefined

  const start = (run: Omit<ScrubRunOptions, 'log' | 'bytesPerSecond' | 'reverifySeconds'>): { id: string, startedAt: string, started: boolean } => {
    if (running !== undefined) return { id: running.id, startedAt: running.startedAt, started: false }
    const startedAt = new Date().toISOString()
    const current = { id: randomUUID(), startedAt, done: Promise.resolve<ScrubReport | undefined>(undefined) }
    current.done = scrub(registry, { ...run, id: current.id, log: app.log, bytesPerSecond: options.bytesPerSecond, reverifySeconds: options.reverifySeconds })
      .catch((error: unknown) => {
        app.log.error({ err: error }, 'scrub failed')
        return undefined
      })
      .finally(() => { if (running === current) running = undefined })
    running = current
    return { id: current.id, startedAt, started: true }
  }

  app.ociRegistryRoutes.add(extensionRoute(scrubRoute, {
    GET: async (_request, reply) => await reply.send({
      running: running === undefined ? null : { id: running.id, startedAt: running.startedAt },
      reports: await readScrubReports(registry)
    }),
    POST: async (request, reply) => {
      // A scrub writes (verification records, quarantine): refused while read-only, as every change.
      if (registry.readOnly) throw readOnlyError('scrub')
      const { repository, full } = request.query
      const user = request.ociContext.user
      const started = start({
        trigger: 'admin',
        ...(repository === undefined ? {} : { repository }),
        full: full === 'true',
        origin: { ...(user === undefined ? {} : { actor: user }), request: { id: String(request.id), method: request.method } }
      })
      return await reply.code(202).send(started)
    }
  }))

  let timer: NodeJS.Timeout | undefined
  if (options.enabled) {
    app.addHook('onReady', async () => {
      timer = setInterval(() => { if (!registry.readOnly) start({ trigger: 'schedule' }) }, options.intervalSeconds * 1000).unref()
    })
  }
  app.addHook('onClose', async () => {
    clearInterval(timer)
    await running?.done
  })
}
