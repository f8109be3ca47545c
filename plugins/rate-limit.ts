/**
 * Rate limits (the `rateLimit` option) through @fastify/rate-limit: each client (the
 * authenticated user, else the IP address) has a budget per route class and window. Over it,
 * the answer is the spec's 429 TOOMANYREQUESTS with `Retry-After`. With Redis in the cache,
 * the counts live there and every replica shares them; when Redis does not answer, requests
 * are let through rather than refused.
 *
 * The limit is checked after access control (the user must be known) and before the body is read.
 */

import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { RegistryError } from '../lib/errors.js'
import { importOptional } from '../lib/optional.js'
import { rateLimitClass, type RateLimitClass, type ResolvedRateLimitOptions } from '../lib/ratelimit/options.js'

export interface RateLimitPluginOptions extends ResolvedRateLimitOptions {
  /** The cache's Redis, whose counts every replica shares. */
  redis: { url: string, keyPrefix: string } | undefined
}

function classOf (request: FastifyRequest): RateLimitClass {
  return rateLimitClass(request.ociContext?.method?.access)
}

async function rateLimitPlugin (app: FastifyInstance, options: RateLimitPluginOptions): Promise<void> {
  let redis
  if (options.redis !== undefined) {
    const { RedisStore } = await importOptional('redis')
    const store = new RedisStore(options.redis.url, options.redis.keyPrefix, app.log)
    app.addHook('onClose', async () => { await store.close() })
    redis = store.redis
  }
  const allowed = new Set(options.allowList)
  // Loaded only when limits are on.
  const { default: rateLimit } = await import('@fastify/rate-limit')
  await app.register(rateLimit, {
    global: true,
    timeWindow: options.windowSeconds * 1000,
    max: (request) => options.limits[classOf(request)],
    keyGenerator: (request) => `${classOf(request)}:${request.ociContext?.user === undefined ? `ip:${request.ip}` : `user:${request.ociContext.user}`}`,
    // A class with no limit, and the clients the operator trusts, are not counted.
    allowList: (request) => options.limits[classOf(request)] === 0 || allowed.has(request.ip),
    skipOnError: true,
    ...(redis === undefined ? {} : { redis, nameSpace: `${options.redis?.keyPrefix ?? ''}rate-limit:` }),
    errorResponseBuilder: (request, context) => new RegistryError('TOOMANYREQUESTS', {
      reason: 'rate limit exceeded',
      class: classOf(request),
      limit: context.max,
      windowSeconds: options.windowSeconds
    }, { statusCode: context.statusCode })
  })
}

export default fp(rateLimitPlugin, { fastify: '5.x', name: 'oci-registry-rate-limit', dependencies: ['oci-registry-auth'] })
