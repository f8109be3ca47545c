/**
 * The configuration file: CNCF distribution's `config.yml`, read as it is for every key that maps,
 * plus our own sections in the same lower-case style. This module turns the YAML into key paths
 * (`storage.delete.enabled`) with their values, the storage driver and auth provider it names, the
 * sections kept for later plugins (`notifications`, `proxy`), and the keys
 * it does not know, so that the caller can warn about them once.
 */

import { parse as parseYaml } from 'yaml'
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { DURATION_HINT, DURATION_PATTERN } from './duration.js'
import { NotificationsOptionsSchema } from '../notifications/options.js'

/** A configuration problem; its message names the key, flag or variable at fault. */
export class ConfigError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

export const FILE_STORAGE_DRIVERS = ['inmemory', 'filesystem', 's3'] as const
export const FILE_AUTH_PROVIDERS = ['htpasswd', 'token'] as const

/** Children of `storage` that are settings, not drivers. */
const STORAGE_SETTINGS = new Set(['delete', 'redirect', 'maintenance', 'cache', 'tag', 'scrub', 'gc'])

/** Keys whose silent omission would weaken security: refused rather than ignored. A Map: the keys come from the file. */
const REFUSED = new Map([
  ['http.tls.clientcas', 'client certificate checks are not supported; terminate TLS in a proxy that checks them'],
  ['http.tls.clientauth', 'client certificate checks are not supported; terminate TLS in a proxy that checks them'],
  ['auth.token.autoredirect', 'not supported; give the token service\'s realm']
])

const Duration = Type.String({ pattern: DURATION_PATTERN })

/** `notifications`: webhook endpoints, the notifications plugin's option as it is. */
export const NotificationsSectionSchema = NotificationsOptionsSchema

/** `proxy`: a pull-through cache of another registry, kept for the proxy plugin. */
export const ProxySectionSchema = Type.Object({
  remoteurl: Type.String({ pattern: '^https?://' }),
  username: Type.Optional(Type.String()),
  password: Type.Optional(Type.String()),
  ttl: Type.Optional(Duration),
  exec: Type.Optional(Type.Object({ command: Type.String({ minLength: 1 }), lifetime: Type.Optional(Duration) }))
})

const CheckTiming = {
  interval: Type.Optional(Duration),
  threshold: Type.Optional(Type.Integer({ minimum: 1 }))
}

/** `health.file`, `health.http`, `health.tcp`: distribution's lists of checks, its keys as they are. */
export const HealthFileSectionSchema = Type.Array(Type.Object({ file: Type.String({ minLength: 1 }), ...CheckTiming }, { additionalProperties: false }))
export const HealthHttpSectionSchema = Type.Array(Type.Object({
  uri: Type.String({ pattern: '^https?://' }),
  headers: Type.Optional(Type.Record(Type.String(), Type.Array(Type.String()))),
  statuscode: Type.Optional(Type.Integer({ minimum: 100, maximum: 599 })),
  timeout: Type.Optional(Duration),
  ...CheckTiming
}, { additionalProperties: false }))
export const HealthTcpSectionSchema = Type.Array(Type.Object({ addr: Type.String({ minLength: 1 }), timeout: Type.Optional(Duration), ...CheckTiming }, { additionalProperties: false }))

export interface FileSections {
  notifications?: Static<typeof NotificationsSectionSchema>
  proxy?: Static<typeof ProxySectionSchema>
  healthFile?: Static<typeof HealthFileSectionSchema>
  healthHttp?: Static<typeof HealthHttpSectionSchema>
  healthTcp?: Static<typeof HealthTcpSectionSchema>
}

const SECTIONS: Array<[string, keyof FileSections, TSchema]> = [
  ['notifications', 'notifications', NotificationsSectionSchema],
  ['proxy', 'proxy', ProxySectionSchema],
  ['health.file', 'healthFile', HealthFileSectionSchema],
  ['health.http', 'healthHttp', HealthHttpSectionSchema],
  ['health.tcp', 'healthTcp', HealthTcpSectionSchema]
]

export interface ConfigFile {
  /** Values of the known keys, by key path. */
  values: Map<string, unknown>
  /** The storage driver the file names, if any. */
  driver?: typeof FILE_STORAGE_DRIVERS[number]
  /** The auth provider the file names, if any. */
  auth?: typeof FILE_AUTH_PROVIDERS[number]
  sections: FileSections
  /** Keys this registry does not use, each named once. */
  unsupported: string[]
}

type Mapping = Record<string, unknown>

function isMapping (value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function got (value: unknown): string {
  if (isMapping(value)) return 'a mapping'
  if (Array.isArray(value)) return 'a list'
  return JSON.stringify(value)
}

/** What a schema allows, in words, for error messages. */
export function expected (schema: TSchema): string {
  if (schema.pattern === DURATION_PATTERN) return DURATION_HINT
  switch (schema.type) {
    case 'boolean': return 'true or false'
    case 'integer': return schema.minimum === undefined ? 'an integer' : `an integer of at least ${String(schema.minimum)}`
    case 'string': return typeof schema.pattern === 'string' && schema.pattern.startsWith('^https?') ? 'an http or https URL' : 'a text'
    case 'array': return 'a list'
    case 'object': return 'a mapping'
    default: return 'a valid value'
  }
}

function checkSection (key: string, schema: TSchema, value: unknown): void {
  const error = Value.Errors(schema, value).First()
  if (error === undefined) return
  const path = error.path === '' ? key : `${key}${error.path.replace(/\//g, '.')}`
  const actual = error.value === undefined ? 'nothing' : got(error.value)
  throw new ConfigError(`${path}: expected ${expected(error.schema)}, got ${actual}`)
}

/**
 * Reads a configuration file's text. `knownKeys` are the key paths the settings read;
 * `name` names the file in errors.
 */
export function readConfigFile (text: string, knownKeys: ReadonlySet<string>, name: string): ConfigFile {
  let document: unknown
  try {
    // YAML 1.1, as go-yaml reads distribution's files (`yes` and `on` are booleans there).
    document = parseYaml(text, { version: '1.1', uniqueKeys: true })
  } catch (error) {
    throw new ConfigError(`${name}: not valid YAML: ${(error as Error).message.split('\n')[0] ?? ''}`)
  }
  if (document === null || document === undefined) document = {}
  if (!isMapping(document)) throw new ConfigError(`${name}: expected a mapping of sections, got ${got(document)}`)

  const prefixes = new Set<string>()
  for (const key of knownKeys) {
    const parts = key.split('.')
    for (let i = 1; i < parts.length; i++) prefixes.add(parts.slice(0, i).join('.'))
  }
  const result: ConfigFile = { values: new Map(), sections: {}, unsupported: [] }
  const sectionKeys = new Map(SECTIONS.map(([key, field, schema]) => [key, { field, schema }]))

  const walk = (mapping: Mapping, prefix: string): void => {
    for (const [child, value] of Object.entries(mapping)) {
      const path = prefix === '' ? child : `${prefix}.${child}`
      const refusal = REFUSED.get(path)
      if (refusal !== undefined) throw new ConfigError(`${path}: ${refusal}`)
      const section = sectionKeys.get(path)
      if (section !== undefined) {
        if (value === null) continue
        checkSection(path, section.schema, value)
        // Validated above against the section's schema.
        ;(result.sections as Record<string, unknown>)[section.field] = value
        continue
      }
      if (path === 'storage' && isMapping(value)) {
        const drivers = Object.keys(value).filter((key) => !STORAGE_SETTINGS.has(key))
        for (const driver of drivers) {
          if (!(FILE_STORAGE_DRIVERS as readonly string[]).includes(driver)) {
            throw new ConfigError(`storage: unknown driver '${driver}' (${FILE_STORAGE_DRIVERS.join(', ')})`)
          }
        }
        if (drivers.length > 1) throw new ConfigError(`storage: configure one driver, found ${drivers.join(', ')}`)
        if (drivers.length === 1) result.driver = drivers[0] as ConfigFile['driver']
      }
      if (path === 'auth' && isMapping(value)) {
        const providers = Object.keys(value)
        for (const provider of providers) {
          if (!(FILE_AUTH_PROVIDERS as readonly string[]).includes(provider)) {
            throw new ConfigError(`auth: unsupported provider '${provider}' (${FILE_AUTH_PROVIDERS.join(', ')})`)
          }
        }
        if (providers.length > 1) throw new ConfigError(`auth: configure one provider, found ${providers.join(', ')}`)
        if (providers.length === 1) result.auth = providers[0] as ConfigFile['auth']
      }
      if (knownKeys.has(path)) {
        if (isMapping(value)) throw new ConfigError(`${path}: expected a value, got a mapping`)
        if (value !== null) result.values.set(path, value)
      } else if (prefixes.has(path) || path === 'storage.inmemory') {
        if (isMapping(value)) walk(value, path)
        else if (value !== null) throw new ConfigError(`${path}: expected a mapping, got ${got(value)}`)
      } else {
        result.unsupported.push(path)
      }
    }
  }
  walk(document, '')
  return result
}
