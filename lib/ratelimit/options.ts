/**
 * The `rateLimit` option of the registry plugin: requests per client (the authenticated user,
 * else the IP address) and per route class in a time window, counted in process or, when the
 * cache has Redis, in Redis, shared by every replica.
 */

import { Type, type Static } from '@sinclair/typebox'
import type { Access } from '../routes.js'

/** Route classes: what a method needs of the caller (its descriptor's `access`). */
export const RATE_LIMIT_CLASSES = ['pull', 'push', 'delete', 'catalog', 'admin', 'base'] as const
export type RateLimitClass = typeof RATE_LIMIT_CLASSES[number]

const DEFAULT_LIMITS: Record<RateLimitClass, number> = { pull: 3000, push: 1000, delete: 100, catalog: 60, admin: 60, base: 600 }

const limit = (kind: RateLimitClass, what: string) => Type.Optional(Type.Integer({
  minimum: 0,
  default: DEFAULT_LIMITS[kind],
  description: `Requests that ${what} per client and window; 0 sets no limit (default ${DEFAULT_LIMITS[kind]}).`
}))

export const RateLimitOptionsSchema = Type.Object({
  enabled: Type.Optional(Type.Boolean({ default: false, description: 'Limit requests per client and route class (default false).' })),
  windowSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86400, default: 60, description: 'Length of the window the limits count in (default 60).' })),
  pull: limit('pull', 'read manifests, blobs, tags and referrers'),
  push: limit('push', 'upload blobs or push manifests'),
  delete: limit('delete', 'delete manifests, tags or blobs'),
  catalog: limit('catalog', 'list the catalog'),
  admin: limit('admin', 'use the admin API'),
  base: limit('base', 'ask the version check `/v2/`'),
  allowList: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Client IP addresses never limited (default none).' }))
}, { additionalProperties: false, description: 'Rate limits per client and route class; see [Rate limits](#rate-limits).' })

export type RateLimitOptions = Static<typeof RateLimitOptionsSchema>

export interface ResolvedRateLimitOptions {
  enabled: boolean
  windowSeconds: number
  limits: Record<RateLimitClass, number>
  allowList: string[]
}

const props = RateLimitOptionsSchema.properties

export function resolveRateLimitOptions (options: RateLimitOptions = {}): ResolvedRateLimitOptions {
  return {
    enabled: options.enabled ?? props.enabled.default as boolean,
    windowSeconds: options.windowSeconds ?? props.windowSeconds.default as number,
    limits: Object.fromEntries(RATE_LIMIT_CLASSES.map((kind) => [kind, options[kind] ?? DEFAULT_LIMITS[kind]])) as Record<RateLimitClass, number>,
    allowList: options.allowList ?? []
  }
}

/** The class of a method, from the access its descriptor declares. */
export function rateLimitClass (access: Access | undefined): RateLimitClass {
  return access === undefined || access === 'none' ? 'base' : access
}
