/**
 * Garbage collection while serving: runs on a schedule when `gc.enabled` (in its UTC window,
 * with its grace delay), and on demand through the admin API (`/v2/_oci/admin/gc`). One run at
 * a time across replicas: a lease through Redis when the cache has one, else in storage.
 * Reaches the core only through the RegistryService (its blob use, events and stores) and an
 * extension route.
 */

import type { FastifyInstance } from 'fastify'
import { RegistryError } from '../lib/errors.js'
import type { RegistryService } from '../lib/storage/registry.js'
import type { ResolvedOptions } from '../lib/options.js'
import { GarbageCollector, GcBusyError } from '../lib/lifecycle/gc.js'
import { inWindow, resolveGcOptions, type GcOptions } from '../lib/lifecycle/gc-options.js'
import { RedisLease, StorageLease, type Lease } from '../lib/lifecycle/lease.js'
import { gcRoute } from '../lib/lifecycle/gc-routes.js'
import { importOptional } from '../lib/optional.js'
import { SharedHolds } from '../lib/storage/shared-holds.js'
import { bodyOf, extensionRoute } from './routes/types.js'

/** A lease with what it holds open. */
export type ClosableLease = Lease & { close: () => Promise<void> }

const LEASE_TASK = 'gc'
const EXTEND = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
const DELETE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"

/** The collection's lease: on the cache's Redis when configured, else in storage. */
export async function gcLease (registry: RegistryService, cache: ResolvedOptions['cache']): Promise<ClosableLease> {
  if (cache.redis === undefined) {
    return Object.assign(new StorageLease(registry.driver, LEASE_TASK), { close: async () => {} })
  }
  const { RedisStore } = await importOptional('redis')
  const store = new RedisStore(cache.redis, cache.keyPrefix)
  const { redis } = store
  const lease = new RedisLease({
    setIfAbsent: async (key, value, ttlMs) => await redis.set(key, value, 'PX', ttlMs, 'NX') === 'OK',
    extendIfHeld: async (key, value, ttlMs) => Number(await redis.eval(EXTEND, 1, key, value, String(ttlMs))) === 1,
    deleteIfHeld: async (key, value) => { await redis.eval(DELETE, 1, key, value) }
  }, `${cache.keyPrefix}lease:${LEASE_TASK}`)
  return Object.assign(lease, { close: async () => { await store.close() } })
}

const BODY_LIMIT = 4096

/** `{ dryRun, deleteUntagged }` of a POST's JSON body, if it has one. */
async function bodyFlags (body: AsyncIterable<Uint8Array>): Promise<{ dryRun?: boolean, deleteUntagged?: boolean }> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += chunk.byteLength
    if (size > BODY_LIMIT) throw new RegistryError('PARAMETER_INVALID', { reason: `the body is over ${BODY_LIMIT} bytes` })
    chunks.push(Buffer.from(chunk))
  }
  const text = Buffer.concat(chunks).toString('utf8').trim()
  if (text === '') return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new RegistryError('PARAMETER_INVALID', { reason: 'the body is not JSON' })
  }
  const flags: { dryRun?: boolean, deleteUntagged?: boolean } = {}
  for (const key of ['dryRun', 'deleteUntagged'] as const) {
    const value = (parsed as Record<string, unknown> | null)?.[key]
    if (value === undefined) continue
    if (typeof value !== 'boolean') throw new RegistryError('PARAMETER_INVALID', { reason: `${key} must be true or false` })
    flags[key] = value
  }
  return flags
}

const isTrue = (flag: string | undefined): boolean | undefined => flag === undefined ? undefined : flag === 'true' || flag === '1'

export interface GcPluginOptions {
  gc?: GcOptions
  cache: ResolvedOptions['cache']
}

export default async function gcPlugin (app: FastifyInstance, options: GcPluginOptions): Promise<void> {
  const settings = resolveGcOptions(options.gc)
  const registry = app.ociRegistry
  const lease = await gcLease(registry, options.cache)
  const collector = new GarbageCollector(registry, { log: app.log, lease })
  // Every process of a deployment that collects online announces its holds to the collector.
  if (settings.enabled) registry.blobUse.share(new SharedHolds(registry.driver))

  app.ociRegistryRoutes.add(extensionRoute(gcRoute, {
    GET: async (_request, reply) => await reply.send({ running: collector.running, reports: collector.reports() }),
    POST: async (request, reply) => {
      const fromBody = await bodyFlags(bodyOf(request))
      const { done } = await collector.start({
        trigger: 'admin',
        dryRun: isTrue(request.query.dryRun) ?? fromBody.dryRun ?? false,
        deleteUntagged: isTrue(request.query.deleteUntagged) ?? fromBody.deleteUntagged ?? settings.deleteUntagged,
        delayMs: settings.delayMs
      })
      if (isTrue(request.query.wait) === true) return await reply.send(await done)
      done.catch((error: unknown) => { app.log.error({ err: error }, 'garbage collection failed') })
      return await reply.code(202).send({ started: true })
    }
  }))

  let timer: NodeJS.Timeout | undefined
  if (settings.enabled) {
    const tick = async (): Promise<void> => {
      if (collector.running || registry.readOnly || !inWindow(settings.window, new Date())) return
      try {
        await collector.run({ trigger: 'schedule', deleteUntagged: settings.deleteUntagged, delayMs: settings.delayMs })
      } catch (error) {
        if (error instanceof GcBusyError) app.log.debug('garbage collection skipped: another run holds the lease')
        else app.log.error({ err: error }, 'garbage collection failed')
      }
    }
    app.addHook('onReady', async () => {
      timer = setInterval(() => { tick().catch(() => {}) }, settings.intervalMs).unref()
    })
  }
  app.addHook('onClose', async () => {
    clearInterval(timer)
    await collector.stop()
    await lease.close()
  })
}
