/**
 * The `health` option of the registry plugin: liveness and readiness paths, and the periodic
 * checks of the dependencies readiness depends on, with CNCF distribution's threshold of
 * consecutive failures (`health.storagedriver`: `enabled`, `interval`, `threshold`), and
 * distribution's `health.file`, `health.http` and `health.tcp` checks.
 */

import { Type, type Static } from '@sinclair/typebox'

const checkSchema = (what: string) => Type.Object({
  enabled: Type.Optional(Type.Boolean({ default: true, description: `Check ${what} (default true).` })),
  intervalSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600, default: 10, description: 'Seconds between checks; a check taking longer fails (default 10).' })),
  threshold: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 3, description: 'Consecutive failures that make it unhealthy (default 3).' }))
}, { additionalProperties: false })

const Path = Type.String({ pattern: '^/[^\\s?#]*$' })

const Interval = Type.Number({ exclusiveMinimum: 0, maximum: 3600, default: 10, description: 'Seconds between checks (default 10).' })
const Timeout = Type.Number({ exclusiveMinimum: 0, maximum: 3600, description: 'Seconds to wait for an answer (default: the interval).' })
const Threshold = Type.Integer({ minimum: 1, maximum: 1000, default: 1, description: 'Consecutive failures that make it unhealthy (default 1, as distribution).' })

/** distribution's `health.file`: unhealthy while the file exists (to take a replica out of rotation). */
export const FileCheckSchema = Type.Object({
  path: Type.String({ minLength: 1, description: 'The file whose existence fails the check.' }),
  intervalSeconds: Type.Optional(Interval),
  threshold: Type.Optional(Threshold)
}, { additionalProperties: false })

/** distribution's `health.http`: a HEAD of the URI must answer the status code. */
export const HttpCheckSchema = Type.Object({
  uri: Type.String({ pattern: '^https?://', description: 'The URI to send HEAD requests to.' }),
  headers: Type.Optional(Type.Record(Type.String(), Type.Array(Type.String()), { description: 'Headers of each request, each with a list of values.' })),
  statusCode: Type.Optional(Type.Integer({ minimum: 100, maximum: 599, default: 200, description: 'The status expected (default 200).' })),
  timeoutSeconds: Type.Optional(Timeout),
  intervalSeconds: Type.Optional(Interval),
  threshold: Type.Optional(Threshold)
}, { additionalProperties: false })

/** distribution's `health.tcp`: a connection to the address must open. */
export const TcpCheckSchema = Type.Object({
  address: Type.String({ pattern: '^\\S+:[0-9]{1,5}$', description: 'host:port to connect to.' }),
  timeoutSeconds: Type.Optional(Timeout),
  intervalSeconds: Type.Optional(Interval),
  threshold: Type.Optional(Threshold)
}, { additionalProperties: false })

export const HealthOptionsSchema = Type.Object({
  enabled: Type.Optional(Type.Boolean({ default: false, description: 'Run the checks and serve the paths (default false).' })),
  livePath: Type.Optional(Type.Union([Path, Type.Literal(false)], { default: '/livez', description: 'Liveness: 200 while the process serves.' })),
  readyPath: Type.Optional(Type.Union([Path, Type.Literal(false)], { default: '/readyz', description: 'Readiness: 200 while every check is healthy, else 503.' })),
  storagedriver: Type.Optional(checkSchema('that storage answers through the driver')),
  redis: Type.Optional(checkSchema('that the Redis of `cache.redis` answers, when there is one')),
  file: Type.Optional(Type.Array(FileCheckSchema, { description: 'Files whose existence makes the registry unhealthy.' })),
  http: Type.Optional(Type.Array(HttpCheckSchema, { description: 'HTTP services that must answer.' })),
  tcp: Type.Optional(Type.Array(TcpCheckSchema, { description: 'TCP services that must accept connections.' })),
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
  file: Array<{ path: string } & CheckTiming>
  http: Array<{ uri: string, headers: Record<string, string[]>, statusCode: number } & CheckTiming>
  tcp: Array<{ address: string } & CheckTiming>
  failRequests: boolean
}

/** The timing of a file, HTTP or TCP check, defaults applied. */
export interface CheckTiming {
  intervalSeconds: number
  /** The interval when not given. */
  timeoutSeconds: number
  threshold: number
}

function resolveTiming (check: { intervalSeconds?: number, timeoutSeconds?: number, threshold?: number }): CheckTiming {
  const intervalSeconds = check.intervalSeconds ?? Interval.default as number
  return { intervalSeconds, timeoutSeconds: check.timeoutSeconds ?? intervalSeconds, threshold: check.threshold ?? Threshold.default as number }
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
    file: (options.file ?? []).map((check) => ({ path: check.path, ...resolveTiming(check) })),
    http: (options.http ?? []).map((check) => ({
      uri: check.uri,
      headers: check.headers ?? {},
      statusCode: check.statusCode ?? HttpCheckSchema.properties.statusCode.default as number,
      ...resolveTiming(check)
    })),
    tcp: (options.tcp ?? []).map((check) => ({ address: check.address, ...resolveTiming(check) })),
    failRequests: options.failRequests ?? props.failRequests.default as boolean
  }
}
