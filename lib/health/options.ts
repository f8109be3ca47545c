/**
 * The `health` option of the registry plugin: liveness and readiness paths, and the periodic
 * checks of the dependencies readiness depends on, with CNCF distribution's threshold of
 * consecutive failures (`health.storagedriver`: `enabled`, `interval`, `threshold`).
 */

import { Type, type Static } from '@sinclair/typebox'

const checkSchema = (what: string) => Type.Object({
  enabled: Type.Optional(Type.Boolean({ default: true, description: `Check ${what} (default true).` })),
  intervalSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600, default: 10, description: 'Seconds between checks; a check taking longer fails (default 10).' })),
  threshold: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 3, description: 'Consecutive failures that make it unhealthy (default 3).' }))
}, { additionalProperties: false })

const Path = Type.String({ pattern: '^/[^\\s?#]*$' })

export const HealthOptionsSchema = Type.Object({
  enabled: Type.Optional(Type.Boolean({ default: false, description: 'Run the checks and serve the paths (default false).' })),
  livePath: Type.Optional(Type.Union([Path, Type.Literal(false)], { default: '/livez', description: 'Liveness: 200 while the process serves.' })),
  readyPath: Type.Optional(Type.Union([Path, Type.Literal(false)], { default: '/readyz', description: 'Readiness: 200 while every check is healthy, else 503.' })),
  storagedriver: Type.Optional(checkSchema('that storage answers through the driver')),
  redis: Type.Optional(checkSchema('that the Redis of `cache.redis` answers, when there is one')),
  failRequests: Type.Optional(Type.Boolean({ default: false, description: 'Answer every API request 503 UNAVAILABLE while a check is unhealthy, as distribution does (default false: only readiness fails).' }))
}, { additionalProperties: false, description: 'Liveness, readiness and dependency checks; see [Health and readiness](#health-and-readiness).' })

export type HealthOptions = Static<typeof HealthOptionsSchema>

export interface CheckSettings {
  enabled: boolean
  intervalSeconds: number
  threshold: number
}

export interface ResolvedHealthOptions {
  enabled: boolean
  livePath: string | false
  readyPath: string | false
  storagedriver: CheckSettings
  redis: CheckSettings
  failRequests: boolean
}

const props = HealthOptionsSchema.properties
const checkProps = props.storagedriver.properties

function resolveCheck (options: HealthOptions['storagedriver']): CheckSettings {
  return {
    enabled: options?.enabled ?? checkProps.enabled.default as boolean,
    intervalSeconds: options?.intervalSeconds ?? checkProps.intervalSeconds.default as number,
    threshold: options?.threshold ?? checkProps.threshold.default as number
  }
}

/** The options with their defaults (validated already by the registry's schema). */
export function resolveHealthOptions (options: HealthOptions = {}): ResolvedHealthOptions {
  return {
    enabled: options.enabled ?? props.enabled.default as boolean,
    livePath: options.livePath ?? props.livePath.default as string,
    readyPath: options.readyPath ?? props.readyPath.default as string,
    storagedriver: resolveCheck(options.storagedriver),
    redis: resolveCheck(options.redis),
    failRequests: options.failRequests ?? props.failRequests.default as boolean
  }
}
