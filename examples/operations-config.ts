/**
 * Settings of the operations features in the example server: the debug listener (CNCF
 * distribution's `http.debug`: Prometheus metrics and `/debug/health`), liveness and readiness
 * with distribution's `health.storagedriver` checks, and rate limits (our `ratelimit` section).
 * OPERATIONS_SETTINGS is spread into SETTINGS (config.ts); `operationsConfig` turns what was set
 * into plugin options and the debug listener's address.
 */

import { resolveOptions, type RegistryOptions } from '../lib/options.js'
import { ConfigError, type FileSections } from '../lib/config/file.js'
import { parseDuration } from '../lib/config/duration.js'
import { HealthOptionsSchema, type HealthOptions } from '../lib/health/options.js'
import { MetricsOptionsSchema } from '../lib/metrics/options.js'
import { RateLimitOptionsSchema } from '../lib/ratelimit/options.js'
import { duration, flag, integer, text } from './settings.js'

const health = HealthOptionsSchema.properties
const storageCheck = health.storagedriver.properties
const limits = RateLimitOptionsSchema.properties
const limitOf = (key: 'pull' | 'push' | 'delete' | 'catalog' | 'admin' | 'base'): number => limits[key].default as number

const rateLimit = (key: 'pull' | 'push' | 'delete' | 'catalog' | 'admin' | 'base', what: string) => integer({
  flag: `--rate-limit-${key}`,
  placeholder: '<n>',
  file: `ratelimit.${key}`,
  ours: true,
  description: `Requests that ${what}, per client and window; 0 sets no limit.`
}, 0, 1_000_000_000, limitOf(key))

export const OPERATIONS_SETTINGS = {
  debugAddr: text({
    flag: '--debug-addr',
    placeholder: '<host:port>',
    file: 'http.debug.addr',
    defaultText: '(the main host, port + 1; a free port when the port is 0)',
    description: 'Address of the debug listener, serving Prometheus metrics and /debug/health; `none` turns it off. With --workers, every worker serves it and a scrape sees the whole cluster.'
  }),
  metrics: flag({
    flag: '--metrics',
    file: 'http.debug.prometheus.enabled',
    description: 'Serve Prometheus metrics on the debug listener.'
  }, true),
  metricsPath: text({
    flag: '--metrics-path',
    placeholder: '<path>',
    file: 'http.debug.prometheus.path',
    description: 'Path of the metrics on the debug listener.'
  }, MetricsOptionsSchema.properties.path.default as string),
  health: flag({
    flag: '--health',
    file: 'health.endpoints.enabled',
    ours: true,
    description: 'Serve /livez and /readyz on the main listener (readiness: the checks below are healthy).'
  }, true),
  healthStorage: flag({ file: 'health.storagedriver.enabled', description: 'Check that storage answers through the driver.' }, storageCheck.enabled.default),
  healthStorageInterval: duration({ file: 'health.storagedriver.interval', description: 'Time between storage checks; a slower answer fails.' }, 1000 * (storageCheck.intervalSeconds.default as number), 1000),
  healthStorageThreshold: integer({ file: 'health.storagedriver.threshold', description: 'Consecutive failed storage checks that make storage unhealthy.' }, 1, 1000, storageCheck.threshold.default as number),
  healthRedis: flag({ file: 'health.redis.enabled', ours: true, description: 'Check that the Redis of the cache answers, when there is one.' }, storageCheck.enabled.default),
  healthRedisInterval: duration({ file: 'health.redis.interval', ours: true, description: 'Time between Redis checks.' }, 1000 * (storageCheck.intervalSeconds.default as number), 1000),
  healthRedisThreshold: integer({ file: 'health.redis.threshold', ours: true, description: 'Consecutive failed Redis checks that make Redis unhealthy.' }, 1, 1000, storageCheck.threshold.default as number),
  healthFailRequests: flag({
    flag: '--health-fail-requests',
    file: 'health.failrequests',
    ours: true,
    description: 'Answer every API request 503 while a check is unhealthy, as distribution does (by default only readiness fails).'
  }, health.failRequests.default),
  rateLimit: flag({
    flag: '--rate-limit',
    file: 'ratelimit.enabled',
    ours: true,
    description: 'Limit requests per client (the user, else the IP address) and route class; over it, 429 TOOMANYREQUESTS with Retry-After. Shared through Redis when the cache has one.'
  }, limits.enabled.default),
  rateLimitWindow: duration({
    flag: '--rate-limit-window',
    placeholder: '<duration>',
    file: 'ratelimit.window',
    ours: true,
    description: 'Window the rate limits count in.'
  }, 1000 * (limits.windowSeconds.default as number), 1000),
  rateLimitPull: rateLimit('pull', 'read manifests, blobs, tags and referrers'),
  rateLimitPush: rateLimit('push', 'upload blobs or push manifests'),
  rateLimitDelete: rateLimit('delete', 'delete manifests, tags or blobs'),
  rateLimitCatalog: rateLimit('catalog', 'list the catalog'),
  rateLimitAdmin: rateLimit('admin', 'use the admin API'),
  rateLimitBase: rateLimit('base', 'ask the version check /v2/'),
  rateLimitAllowList: text({
    flag: '--rate-limit-allow',
    placeholder: '<ip,...>',
    file: 'ratelimit.allowlist',
    ours: true,
    defaultText: '(none)',
    description: 'Client addresses never limited: comma-separated, or a list in the file.'
  })
}

export type OperationsKey = keyof typeof OPERATIONS_SETTINGS

/** A value as the configuration has it, and where it came from. */
export interface RawSetting {
  value: string
  source: string
  fromFile?: { value: unknown }
}

/** config.ts's readers of one setting, each naming its source in errors. */
export interface SettingReaders {
  get: (key: OperationsKey) => RawSetting | undefined
  boolean: (raw: RawSetting) => boolean
  integer: (key: OperationsKey, raw: RawSetting) => number
  durationMs: (key: OperationsKey, raw: RawSetting) => number
}

/** Where the debug listener listens and what it serves. */
export interface DebugListener {
  host: string
  port: number
  /** The metrics path, or false when metrics are off. */
  metricsPath: string | false
}

export interface OperationsConfig {
  /** The plugin's options of the operations. */
  options: Pick<RegistryOptions, 'metrics' | 'health' | 'rateLimit'>
  /** Absent when turned off (`none`). */
  debug?: DebugListener
}

/** Splits `host:port`, `[v6]:port` or `:port`; the host defaults to `host`. */
function parseAddr (raw: RawSetting, host: string): { host: string, port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]\s/]*)):([0-9]{1,5})$/.exec(raw.value)
  if (match === null || Number(match[3]) > 65535) throw new ConfigError(`${raw.source}: "${raw.value}" is not host:port, :port or none`)
  const named = match[1] ?? match[2] ?? ''
  return { host: named === '' ? host : named, port: Number(match[3]) }
}

function allowList (raw: RawSetting): string[] {
  const value = raw.fromFile?.value
  const list = Array.isArray(value) ? value : raw.value.split(',')
  const addresses = list.map((item) => typeof item === 'string' ? item.trim() : '')
  if (addresses.some((address) => address === '' || /\s/.test(address))) throw new ConfigError(`${raw.source}: expected IP addresses, comma-separated or a list`)
  return addresses
}

/** The value without its undefined members. */
const defined = <T extends object>(value: T): T => Object.fromEntries(Object.entries(value).filter(([, item]) => item !== undefined)) as T

/** distribution's lists of health checks from the config file, as the plugin's `health` option has them. */
function healthChecksOf (sections: FileSections): Pick<HealthOptions, 'file' | 'http' | 'tcp'> {
  // The file's schema admits only durations here.
  const seconds = (duration: string | undefined): number | undefined => duration === undefined ? undefined : (parseDuration(duration) ?? 0) / 1000
  return defined({
    file: sections.healthFile?.map((check) => defined({ path: check.file, intervalSeconds: seconds(check.interval), threshold: check.threshold })),
    http: sections.healthHttp?.map((check) => defined({
      uri: check.uri, headers: check.headers, statusCode: check.statuscode, timeoutSeconds: seconds(check.timeout), intervalSeconds: seconds(check.interval), threshold: check.threshold
    })),
    tcp: sections.healthTcp?.map((check) => defined({ address: check.addr, timeoutSeconds: seconds(check.timeout), intervalSeconds: seconds(check.interval), threshold: check.threshold }))
  })
}

/** The operations' plugin options and debug listener, from the settings; `main` is the main listener. */
export function operationsConfig (read: SettingReaders, main: { host: string, port: number }, sections: FileSections = {}): OperationsConfig {
  const bool = (key: OperationsKey): boolean | undefined => {
    const raw = read.get(key)
    return raw === undefined ? undefined : read.boolean(raw)
  }
  const int = (key: OperationsKey): number | undefined => {
    const raw = read.get(key)
    return raw === undefined ? undefined : read.integer(key, raw)
  }
  const seconds = (key: OperationsKey): number | undefined => {
    const raw = read.get(key)
    return raw === undefined ? undefined : Math.ceil(read.durationMs(key, raw) / 1000)
  }

  const metricsOn = bool('metrics') ?? true
  const pathRaw = read.get('metricsPath')
  if (pathRaw !== undefined && !/^\/[^\s?#]*$/.test(pathRaw.value)) throw new ConfigError(`${pathRaw.source}: "${pathRaw.value}" is not a path such as /metrics`)
  const addrRaw = read.get('debugAddr')
  let debug: DebugListener | undefined
  if (addrRaw?.value.toLowerCase() !== 'none') {
    const address = addrRaw === undefined
      ? { host: main.host, port: main.port === 0 || main.port === 65535 ? 0 : main.port + 1 }
      : parseAddr(addrRaw, main.host)
    debug = { ...address, metricsPath: metricsOn ? pathRaw?.value ?? MetricsOptionsSchema.properties.path.default as string : false }
  }
  const allowRaw = read.get('rateLimitAllowList')
  const options: OperationsConfig['options'] = {
    // Collected when served: on the debug listener only, never on the registry's own port.
    metrics: { enabled: debug !== undefined && metricsOn, path: false },
    health: {
      enabled: true,
      ...(bool('health') === false ? { livePath: false, readyPath: false } : {}),
      storagedriver: defined({ enabled: bool('healthStorage'), intervalSeconds: seconds('healthStorageInterval'), threshold: int('healthStorageThreshold') }),
      redis: defined({ enabled: bool('healthRedis'), intervalSeconds: seconds('healthRedisInterval'), threshold: int('healthRedisThreshold') }),
      ...defined({ failRequests: bool('healthFailRequests') }),
      ...healthChecksOf(sections)
    },
    rateLimit: defined({
      enabled: bool('rateLimit'),
      windowSeconds: seconds('rateLimitWindow'),
      pull: int('rateLimitPull'),
      push: int('rateLimitPush'),
      delete: int('rateLimitDelete'),
      catalog: int('rateLimitCatalog'),
      admin: int('rateLimitAdmin'),
      base: int('rateLimitBase'),
      allowList: allowRaw === undefined ? undefined : allowList(allowRaw)
    })
  }
  // The plugin's own validation, so that the server and the plugin can never disagree.
  try {
    resolveOptions(options)
  } catch (error) {
    throw new ConfigError((error as Error).message)
  }
  return { options, ...(debug === undefined ? {} : { debug }) }
}
