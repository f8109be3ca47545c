/**
 * Liveness, readiness and dependency checks (the `health` option): storage through the driver,
 * when the cache has one, Redis, and distribution's file, HTTP and TCP checks, each on its
 * interval with a threshold of consecutive failures. An unhealthy dependency fails readiness;
 * API requests go on unless `failRequests` asks for distribution's behaviour (503 for every
 * request). The checks are
 * `app.ociRegistryOperations.health`, for a host to serve `/debug/health` elsewhere.
 */

import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { RegistryError } from '../lib/errors.js'
import { isPathNotFound } from '../lib/storage/driver.js'
import { HealthChecks, fileCheck, httpCheck, tcpCheck, type CheckDefinition } from '../lib/health/checks.js'
import type { CheckTiming, ResolvedHealthOptions } from '../lib/health/options.js'
import type { RegistryOperations } from './operations.js'

export interface HealthPluginOptions extends ResolvedHealthOptions {
  operations: RegistryOperations
  /** Whether the cache has a shared store (Redis) to check. */
  redis: ResolvedHealthOptions['redis'] & { configured: boolean }
}

function definitions (app: FastifyInstance, options: HealthPluginOptions): CheckDefinition[] {
  const registry = app.ociRegistry
  const found: CheckDefinition[] = []
  const { storagedriver, redis } = options
  if (storagedriver.enabled) {
    found.push({
      name: `storagedriver_${registry.driver.name}`,
      intervalMs: storagedriver.intervalSeconds * 1000,
      threshold: storagedriver.threshold,
      run: async () => {
        try {
          // As distribution's check: the root answers; an empty store has none yet, which is fine.
          await registry.driver.list('/')
        } catch (error) {
          if (!isPathNotFound(error)) throw error
        }
      }
    })
  }
  if (redis.enabled && redis.configured) {
    found.push({ name: 'redis', intervalMs: redis.intervalSeconds * 1000, threshold: redis.threshold, run: async () => { await registry.cache.ping() } })
  }
  // distribution's other checks, named as it names them: by path, URI and address.
  const timing = (check: CheckTiming): Pick<CheckDefinition, 'intervalMs' | 'timeoutMs' | 'threshold'> =>
    ({ intervalMs: check.intervalSeconds * 1000, timeoutMs: check.timeoutSeconds * 1000, threshold: check.threshold })
  for (const check of options.file) found.push({ name: check.path, ...timing(check), run: async () => { await fileCheck(check.path) } })
  for (const check of options.http) {
    found.push({ name: check.uri, ...timing(check), run: async () => { await httpCheck(check.uri, check.statusCode, check.headers, check.timeoutSeconds * 1000) } })
  }
  for (const check of options.tcp) {
    found.push({ name: check.address, ...timing(check), run: async () => { await tcpCheck(check.address, check.timeoutSeconds * 1000) } })
  }
  return found
}

async function healthPlugin (app: FastifyInstance, options: HealthPluginOptions): Promise<void> {
  const checks = new HealthChecks(definitions(app, options))
  options.operations.health = checks
  app.addHook('onReady', async () => { await checks.start() })
  app.addHook('preClose', async () => { checks.drain() })
  app.addHook('onClose', async () => { checks.stop() })

  if (options.failRequests) {
    app.addHook('onRequest', async function refuseWhileUnhealthy (request) {
      if (request.ociContext?.route === undefined || checks.ready) return
      throw new RegistryError('UNAVAILABLE', { reason: 'a dependency of the registry is unhealthy', checks: checks.failures() }, { headers: { 'Retry-After': '5' } })
    })
  }
  if (options.livePath !== false) {
    app.get(options.livePath, { exposeHeadRoute: true }, async function live () {
      return { live: true }
    })
  }
  if (options.readyPath !== false) {
    app.get(options.readyPath, { exposeHeadRoute: true }, async function ready (_request, reply) {
      const { statusCode, body } = checks.readiness()
      return await reply.code(statusCode).send(body)
    })
  }
}

export default fp(healthPlugin, { fastify: '5.x', name: 'oci-registry-health', dependencies: ['oci-registry-context'] })
