/**
 * Configuration of the example server: one TypeBox schema, SETTINGS, describes every setting once
 * (its value, default, flag, environment variables and config file key), and drives parsing,
 * `--help` and the README's tables. Settings that are plugin options take their default from the
 * plugin's schema (lib/options.ts).
 *
 * Precedence, highest first: flag, our environment variable, CNCF distribution's variable, the
 * config file, default. Distribution's names (variables `REGISTRY_<SECTION>_<KEY>` and the keys of
 * its `config.yml`) are read so that a deployment moved from `registry:2` keeps working as it is.
 *
 * Pure but for reading the config file, whose reader is a parameter.
 */

import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { Type, type TSchema } from '@sinclair/typebox'
import { resolveOptions, RegistryOptionsSchema, type RegistryOptions } from '../lib/options.js'
import type { AuthOptions } from '../lib/auth/options.js'
import { ConfigError, readConfigFile, type ConfigFile, type FileSections } from '../lib/config/file.js'
import { DURATION_HINT, formatDuration, parseDuration } from '../lib/config/duration.js'
import { SCRUB_SETTINGS, scrubOptions } from './scrub-settings.js'
import { NOTIFY_SETTINGS, notificationsOf } from './notifications.js'
import { GC_SETTINGS } from './gc-settings.js'
import { WINDOW_PATTERN } from '../lib/lifecycle/gc-options.js'
import { choice, duration, flag, integer, text, type Source } from './settings.js'
import { OPERATIONS_SETTINGS, operationsConfig, type OperationsConfig } from './operations-config.js'

export { ConfigError }

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

export const STORAGE_DRIVERS = ['inmemory', 'filesystem', 's3'] as const
export type StorageDriverName = typeof STORAGE_DRIVERS[number]

export const AUTH_MODES = ['none', 'htpasswd', 'token'] as const
export type AuthMode = typeof AUTH_MODES[number]

/** Defaults of token mode with the bundled token service. */
export const DEFAULT_TOKEN_SERVICE = 'fastify-oci-registry'
export const DEFAULT_TOKEN_ISSUER = 'fastify-oci-registry-token'

const plugin = RegistryOptionsSchema.properties
const pluginDefault = (schema: TSchema): unknown => schema.default

const s3 = (suffix: string): Pick<Source, 'file' | 'env'> => ({ file: `storage.s3.${suffix.toLowerCase()}`, env: [`REGISTRY_STORAGE_S3_${suffix}`] })

/** Every setting of the example server. */
export const SETTINGS = Type.Object({
  config: text({
    flag: '--config',
    placeholder: '<file>',
    env: ['REGISTRY_CONFIGURATION_PATH'],
    distributionEnv: ['REGISTRY_CONFIGURATION_PATH'],
    defaultText: '(none)',
    description: 'Configuration file: CNCF distribution\'s `config.yml` (see "Configuration file" below).'
  }),
  version: text({
    file: 'version',
    defaultText: '0.1',
    description: 'Version of the configuration file\'s format; only 0.1, as distribution writes it.'
  }),
  host: text({
    flag: '--host',
    placeholder: '<address>',
    env: ['REGISTRY_HOST'],
    file: 'http.addr',
    description: 'Address to bind. `http.addr` (REGISTRY_HTTP_ADDR) is `host:port` or `:port` (then the host stays the default).'
  }, '127.0.0.1'),
  port: integer({
    flag: '--port',
    placeholder: '<port>',
    env: ['REGISTRY_PORT'],
    file: 'http.addr',
    description: 'TCP port to listen on; 0 picks a free one.'
  }, 0, 65535, 5000),
  storage: choice(STORAGE_DRIVERS, {
    flag: '--storage',
    placeholder: '<driver>',
    env: ['REGISTRY_STORAGE'],
    distributionEnv: ['REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY', 'REGISTRY_STORAGE_S3_BUCKET'],
    description: `Storage driver: ${STORAGE_DRIVERS.join(', ')}. In the file, the section under \`storage\` names it. REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY implies filesystem, else REGISTRY_STORAGE_S3_BUCKET implies s3.`
  }, 'filesystem'),
  root: text({
    flag: '--root',
    placeholder: '<dir>',
    env: ['REGISTRY_ROOT'],
    file: 'storage.filesystem.rootdirectory',
    defaultText: './data',
    description: 'Directory of the filesystem storage, resolved against the working directory (distribution\'s default, /var/lib/registry, when the file names filesystem storage without it). Checked for writing at start.'
  }),
  delete: flag({
    flag: '--delete',
    env: ['REGISTRY_DELETE'],
    file: 'storage.delete.enabled',
    description: 'Allow deleting manifests, tags and blobs.'
  }, pluginDefault(plugin.delete)),
  readOnly: flag({
    flag: '--read-only',
    env: ['REGISTRY_READ_ONLY'],
    file: 'storage.maintenance.readonly.enabled',
    description: 'Refuse every change (pushes, deletes), e.g. while garbage collection runs.'
  }, pluginDefault(plugin.readOnly)),
  uploadPurging: flag({
    flag: '--upload-purging',
    file: 'storage.maintenance.uploadpurging.enabled',
    description: 'Remove abandoned uploads periodically.'
  }, pluginDefault(plugin.uploadPurging.properties.enabled)),
  uploadPurgingAge: duration({
    flag: '--upload-purging-age',
    placeholder: '<duration>',
    file: 'storage.maintenance.uploadpurging.age',
    description: 'Uploads older than this are purged.'
  }, 1000 * (pluginDefault(plugin.uploadPurging.properties.ageSeconds) as number), 60_000),
  uploadPurgingInterval: duration({
    flag: '--upload-purging-interval',
    placeholder: '<duration>',
    file: 'storage.maintenance.uploadpurging.interval',
    description: 'How often to look for abandoned uploads.'
  }, 1000 * (pluginDefault(plugin.uploadPurging.properties.intervalSeconds) as number), 1000),
  uploadPurgingDryRun: flag({
    file: 'storage.maintenance.uploadpurging.dryrun',
    description: 'Dry runs are not supported: `true` turns purging off (and says so at start).'
  }),
  logLevel: choice(LOG_LEVELS, {
    flag: '--log-level',
    placeholder: '<level>',
    env: ['REGISTRY_LOG_LEVEL'],
    file: 'log.level',
    description: `Log level: ${LOG_LEVELS.join(', ')}.`
  }, 'info'),
  workers: integer({
    flag: '--workers',
    placeholder: '<n>',
    env: ['REGISTRY_WORKERS'],
    file: 'http.workers',
    ours: true,
    description: 'Processes serving the port; more than 1 forks a cluster that restarts dead workers.'
  }, 1, 1024, 1),
  publicUrl: text({
    flag: '--public-url',
    placeholder: '<url>',
    env: ['REGISTRY_PUBLIC_URL'],
    file: 'http.host',
    defaultText: '(from the request)',
    description: 'Base of absolute URLs in Location and Link headers, e.g. https://registry.example.com.'
  }),
  relativeUrls: flag({
    flag: '--relative-urls',
    env: ['REGISTRY_RELATIVE_URLS'],
    file: 'http.relativeurls',
    description: 'Write relative URLs in Location and Link headers.'
  }, pluginDefault(plugin.relativeUrls)),
  trustForwardedHeaders: flag({
    flag: '--trust-forwarded-headers',
    env: ['REGISTRY_TRUST_FORWARDED_HEADERS'],
    file: 'http.trustforwardedheaders',
    ours: true,
    description: 'Build URLs from X-Forwarded-Proto and X-Forwarded-Host (only behind a trusted proxy).'
  }, pluginDefault(plugin.trustForwardedHeaders)),
  headerTimeout: duration({
    flag: '--header-timeout',
    placeholder: '<duration>',
    file: 'http.timeouts.header',
    ours: true,
    description: 'Time a client has to send a request\'s headers (Node\'s `headersTimeout`); a connection stalled mid-headers is closed.'
  }, 60_000, 1),
  idleTimeout: duration({
    flag: '--idle-timeout',
    placeholder: '<duration>',
    file: 'http.timeouts.idle',
    ours: true,
    description: 'A connection with no bytes in either direction for this long is closed (Fastify\'s `connectionTimeout`); every byte restarts it, so a slow but progressing upload or download is never cut. 0 turns it off.'
  }, 300_000),
  keepAliveTimeout: duration({
    flag: '--keep-alive-timeout',
    placeholder: '<duration>',
    file: 'http.timeouts.keepalive',
    ours: true,
    description: 'How long an idle keep-alive connection waits for its next request (Fastify\'s `keepAliveTimeout`).'
  }, 72_000, 1),
  requestTimeout: duration({
    flag: '--request-timeout',
    placeholder: '<duration>',
    file: 'http.timeouts.request',
    ours: true,
    description: 'Most time to receive a whole request (Node\'s `requestTimeout`); 0, the default, sets no bound, since a multi-gigabyte upload may take hours.'
  }, 0),
  auth: choice(AUTH_MODES, {
    flag: '--auth',
    placeholder: '<mode>',
    env: ['REGISTRY_AUTH'],
    distributionEnv: ['REGISTRY_AUTH'],
    description: `Access control: ${AUTH_MODES.join(', ')}. In the file, the section under \`auth\` names it. See "Access control" below.`
  }, 'none'),
  htpasswdPath: text({
    flag: '--htpasswd',
    placeholder: '<file>',
    env: ['REGISTRY_AUTH_HTPASSWD_PATH'],
    file: 'auth.htpasswd.path',
    defaultText: '(none)',
    description: 'htpasswd file of bcrypt entries (`htpasswd -B`): the users of htpasswd mode and of the bundled token service. Read again when it changes.'
  }),
  htpasswdRealm: text({
    flag: '--htpasswd-realm',
    placeholder: '<realm>',
    env: ['REGISTRY_AUTH_HTPASSWD_REALM'],
    file: 'auth.htpasswd.realm',
    description: 'Realm of the Basic challenge.'
  }, 'registry'),
  tokenRealm: text({
    flag: '--token-realm',
    placeholder: '<url>',
    env: ['REGISTRY_AUTH_TOKEN_REALM'],
    file: 'auth.token.realm',
    defaultText: '(the bundled token service)',
    description: 'URL of an external token service. Without it, token mode serves the bundled one at /token.'
  }),
  tokenService: text({
    flag: '--token-service',
    placeholder: '<name>',
    env: ['REGISTRY_AUTH_TOKEN_SERVICE'],
    file: 'auth.token.service',
    description: 'Name of this registry in tokens (their audience).'
  }, DEFAULT_TOKEN_SERVICE),
  tokenIssuer: text({
    flag: '--token-issuer',
    placeholder: '<name>',
    env: ['REGISTRY_AUTH_TOKEN_ISSUER'],
    file: 'auth.token.issuer',
    defaultText: `(bundled service: ${DEFAULT_TOKEN_ISSUER})`,
    description: 'Issuer (`iss`) tokens must carry; required with --token-realm.'
  }),
  tokenRootCertBundle: text({
    flag: '--token-rootcertbundle',
    placeholder: '<file>',
    env: ['REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE'],
    file: 'auth.token.rootcertbundle',
    defaultText: '(none)',
    description: 'PEM certificates (or public keys) whose keys sign tokens. With --token-realm, this or --token-jwks is required.'
  }),
  tokenJwks: text({
    flag: '--token-jwks',
    placeholder: '<file>',
    env: ['REGISTRY_AUTH_TOKEN_JWKS'],
    file: 'auth.token.jwks',
    defaultText: '(none)',
    description: 'JSON Web Key Set whose keys sign tokens.'
  }),
  tokenKey: text({
    flag: '--token-key',
    placeholder: '<file>',
    env: ['REGISTRY_TOKEN_KEY'],
    file: 'auth.token.signingkey',
    ours: true,
    defaultText: '(none)',
    description: 'PEM private key (RSA, EC P-256 or Ed25519) the bundled token service signs with; required when it runs.'
  }),
  tokenAcl: text({
    flag: '--token-acl',
    placeholder: '<file>',
    env: ['REGISTRY_TOKEN_ACL'],
    file: 'auth.token.acl',
    ours: true,
    defaultText: '(users may do anything)',
    description: 'JSON access-control list of the bundled token service.'
  }),
  tlsCertificate: text({
    flag: '--tls-certificate',
    placeholder: '<file>',
    env: ['REGISTRY_HTTP_TLS_CERTIFICATE'],
    file: 'http.tls.certificate',
    defaultText: '(plain HTTP)',
    description: 'PEM certificate (chain) to serve HTTPS with; needs --tls-key.'
  }),
  tlsKey: text({
    flag: '--tls-key',
    placeholder: '<file>',
    env: ['REGISTRY_HTTP_TLS_KEY'],
    file: 'http.tls.key',
    defaultText: '(plain HTTP)',
    description: 'PEM private key of the certificate.'
  }),
  http2: flag({
    flag: '--http2',
    env: ['REGISTRY_HTTP2'],
    file: 'http.http2.disabled',
    negate: true,
    description: 'Serve HTTP/2 as well as HTTP/1.1 (with TLS only). Off unless asked for, also from the file (`http.http2.disabled: false`).'
  }),
  s3Bucket: text({ flag: '--s3-bucket', placeholder: '<name>', ...s3('BUCKET'), defaultText: '(none)', description: 'Bucket of the s3 storage (required with --storage s3).' }),
  s3Region: text({ flag: '--s3-region', placeholder: '<region>', ...s3('REGION'), defaultText: '(AWS_REGION, else us-east-1)', description: 'Region of the bucket.' }),
  s3Endpoint: text({ flag: '--s3-endpoint', placeholder: '<url>', ...s3('REGIONENDPOINT'), defaultText: '(AWS)', description: 'Endpoint of an S3-compatible service, e.g. http://127.0.0.1:9000.' }),
  s3ForcePathStyle: flag({ flag: '--s3-force-path-style', ...s3('FORCEPATHSTYLE'), description: 'Path-style URLs (endpoint/bucket/key), which most S3-compatible services need.' }),
  s3AccessKey: text({ flag: '--s3-access-key', placeholder: '<id>', ...s3('ACCESSKEY'), defaultText: '(SDK default chain)', description: 'Access key id; without it the AWS SDK\'s default chain (AWS_* variables, profiles, instance roles).' }),
  s3SecretKey: text({ flag: '--s3-secret-key', placeholder: '<secret>', ...s3('SECRETKEY'), defaultText: '(SDK default chain)', description: 'Secret access key; prefer the variable to the flag, which other users can see.' }),
  s3RootDirectory: text({ flag: '--s3-root-directory', placeholder: '<prefix>', ...s3('ROOTDIRECTORY'), defaultText: '(bucket root)', description: 'Key prefix of the storage tree inside the bucket.' }),
  s3ChunkSize: integer({ flag: '--s3-chunk-size', placeholder: '<bytes>', ...s3('CHUNKSIZE'), description: 'Part size of uploads, buffered in memory by each upload (at least 5 MiB).' }, 5 * 1024 * 1024, 5 * 1024 * 1024 * 1024, 10 * 1024 * 1024),
  s3StorageClass: text({ flag: '--s3-storage-class', placeholder: '<class>', ...s3('STORAGECLASS'), defaultText: '(bucket default)', description: 'Storage class of new objects, e.g. STANDARD or INTELLIGENT_TIERING.' }),
  s3Encrypt: flag({ flag: '--s3-encrypt', ...s3('ENCRYPT'), description: 'Server-side encryption of new objects: AES256, or aws:kms with --s3-kms-key-id.' }),
  s3KeyId: text({ flag: '--s3-kms-key-id', placeholder: '<key>', ...s3('KEYID'), defaultText: '(none)', description: 'KMS key of server-side encryption.' }),
  s3MultipartCopyChunkSize: integer({ file: 'storage.s3.multipartcopychunksize', description: 'Part size of a multipart copy.' }, 5 * 1024 * 1024, 5 * 1024 * 1024 * 1024, 32 * 1024 * 1024),
  s3MultipartCopyMaxConcurrency: integer({ file: 'storage.s3.multipartcopymaxconcurrency', description: 'Parts copied at once.' }, 1, 100, 8),
  s3MultipartCopyThresholdSize: integer({ file: 'storage.s3.multipartcopythresholdsize', description: 'Objects above this size are copied in parts.' }, 0, 5 * 1024 * 1024 * 1024 * 1024, 32 * 1024 * 1024),
  s3Redirect: flag({
    flag: '--s3-redirect',
    env: ['REGISTRY_S3_REDIRECT'],
    file: 'storage.redirect.disable',
    negate: true,
    description: 'Answer blob GETs with a 307 to a presigned S3 URL (valid 20 minutes) instead of streaming them. Off unless asked for, also from the file (`storage.redirect.disable: false`).'
  }),
  redis: text({
    flag: '--redis',
    placeholder: '<url>',
    env: ['REGISTRY_REDIS_URL'],
    file: 'redis.addr',
    defaultText: '(none)',
    description: 'Redis shared by the replicas, caching tags and blob descriptors, e.g. redis://127.0.0.1:6379. `redis.addr` (REGISTRY_REDIS_ADDR) is host:port.'
  }),
  redisPassword: text({ file: 'redis.password', defaultText: '(none)', description: 'Password of the Redis at `redis.addr`.' }),
  redisDb: integer({ file: 'redis.db', description: 'Database number of the Redis at `redis.addr`.' }, 0, 65535, 0),
  ...SCRUB_SETTINGS,
  ...NOTIFY_SETTINGS,
  ...GC_SETTINGS,
  ...OPERATIONS_SETTINGS
}, { additionalProperties: false })

export type SettingKey = keyof typeof SETTINGS.properties

export interface ConfigOption {
  key: SettingKey
  flag?: `--${string}`
  placeholder?: string
  kind: 'string' | 'integer' | 'boolean' | 'choice' | 'duration'
  choices?: readonly string[]
  /** Our environment variables. */
  env: readonly string[]
  /** CNCF distribution's variables for the same setting, read after ours. */
  distributionEnv: readonly string[]
  /** The config file key. */
  file?: string
  /** The file key and its variable say the opposite of the setting. */
  negate: boolean
  minimum?: number
  maximum?: number
  /** The default, as shown to people. */
  default: string
  description: string
}

/** `REGISTRY_<SECTION>_<KEY>`: distribution's variable overriding a file key. */
export function variableOf (fileKey: string): string {
  return `REGISTRY_${fileKey.toUpperCase().replace(/\./g, '_')}`
}

function optionOf (key: SettingKey, schema: TSchema): ConfigOption {
  const source = schema as TSchema & Source & { minimumMs?: number }
  const kind: ConfigOption['kind'] = schema.format === 'duration'
    ? 'duration'
    : schema.anyOf !== undefined ? 'choice' : schema.type as 'string' | 'integer' | 'boolean'
  const derived = source.file === undefined || source.file === 'version' ? [] : [variableOf(source.file)]
  const env = [...(source.env ?? []), ...(source.ours === true ? derived : [])]
  const distributionEnv = [...(source.distributionEnv ?? []), ...(source.ours === true ? [] : derived)]
  const defaultText = source.defaultText ?? (kind === 'duration' ? formatDuration(schema.default as number) : String(schema.default))
  return {
    key,
    ...(source.flag === undefined ? {} : { flag: source.flag }),
    ...(source.placeholder === undefined ? {} : { placeholder: source.placeholder }),
    kind,
    ...(kind === 'choice' ? { choices: (schema.anyOf as Array<{ const: string }>).map((literal) => literal.const) } : {}),
    env: [...new Set(env)],
    distributionEnv: [...new Set(distributionEnv)],
    ...(source.file === undefined ? {} : { file: source.file }),
    negate: source.negate === true,
    ...(kind === 'integer' ? { minimum: schema.minimum as number, maximum: schema.maximum as number } : {}),
    ...(kind === 'duration' ? { minimum: source.minimumMs ?? 0 } : {}),
    default: defaultText,
    description: source.description
  }
}

/** The settings as a table, in the schema's order. */
export const CONFIG_OPTIONS: readonly ConfigOption[] = (Object.entries(SETTINGS.properties) as Array<[SettingKey, TSchema]>)
  .map(([key, schema]) => optionOf(key, schema))

const OPTIONS = new Map(CONFIG_OPTIONS.map((option) => [option.key, option]))
const optionFor = (key: SettingKey): ConfigOption => OPTIONS.get(key) as ConfigOption

/** Every config file key the settings read. */
export const FILE_KEYS: ReadonlySet<string> = new Set(CONFIG_OPTIONS.flatMap((option) => option.file === undefined ? [] : [option.file]))

/** Defaults of the HTTP timeouts, in milliseconds. */
export const DEFAULT_TIMEOUTS: Timeouts = {
  headerMs: SETTINGS.properties.headerTimeout.default as number,
  idleMs: SETTINGS.properties.idleTimeout.default as number,
  keepAliveMs: SETTINGS.properties.keepAliveTimeout.default as number,
  requestMs: SETTINGS.properties.requestTimeout.default as number
}

/** The bundled token service: file paths, read when the server is built. */
export interface TokenServiceConfig {
  key: string
  acl?: string
  htpasswd?: string
  service: string
  issuer: string
}

export interface Timeouts {
  headerMs: number
  idleMs: number
  keepAliveMs: number
  requestMs: number
}

/** What the config file holds that the server does not act on; logged as one warning at start. */
export interface FileNotices {
  /** Keys this registry does not use. */
  unsupported: string[]
  /** Sections parsed and kept for later plugins, not acted on yet. */
  notYetActedOn: string[]
}

export interface ServerConfig {
  host: string
  port: number
  workers: number
  logLevel: LogLevel
  registry: RegistryOptions
  /** HTTPS: certificate and key files; HTTP/2 beside HTTP/1.1 when asked. */
  tls?: { certificate: string, key: string, http2: boolean }
  /** Present when token mode runs the bundled token service. */
  tokenService?: TokenServiceConfig
  /** Present when any timeout is set; DEFAULT_TIMEOUTS otherwise. */
  timeouts?: Timeouts
  /** The config file read, if any. */
  configFile?: string
  /** Sections of the config file kept for later plugins (`notifications`, `proxy`). */
  sections?: FileSections
  /** Present when the config file has keys the server does not act on. */
  notices?: FileNotices
  /** Metrics, health and rate limits, and the debug listener; none when absent. */
  operations?: OperationsConfig
}

export const HELP_FLAGS = ['--help', '-h'] as const

/** True when the command line asks for help; checked before parsing so help always works. */
export function wantsHelp (argv: readonly string[]): boolean {
  return argv.some((arg) => (HELP_FLAGS as readonly string[]).includes(arg))
}

/** Names of every environment variable of an option, ours first, without repeats. */
export function envNames (option: ConfigOption): string[] {
  return [...new Set([...option.env, ...option.distributionEnv])]
}

const usage = (option: ConfigOption): string => `${option.flag ?? ''}${option.placeholder === undefined ? '' : ` ${option.placeholder}`}`

/** The `--help` text of `serve`, generated from SETTINGS. */
export function helpText (): string {
  const lines = [
    'Usage: fastify-oci-registry serve [--config <file>] [options]   (or: npm start -- [options])',
    '',
    'Serves an OCI Distribution (Docker Registry V2) registry over HTTP.',
    '',
    'Flags take `--flag value` or `--flag=value`; booleans take true, false, 1 or 0 (a bare flag means true).',
    "Flags win over our environment variables, ours over CNCF distribution's, and those over the config file.",
    'Durations are written as Go writes them: 90s, 10m, 1h30m.',
    '',
    'Options:'
  ]
  const describe = (option: ConfigOption): void => {
    lines.push(`      ${option.description}`)
    const distribution = option.distributionEnv.filter((name) => !option.env.includes(name))
    const names = [
      ...(option.env.length > 0 ? [`env: ${option.env.join(', ')}`] : []),
      ...(distribution.length > 0 ? [`distribution: ${distribution.join(', ')}`] : [])
    ]
    if (names.length > 0) lines.push(`      ${names.join('; ')}`)
    if (option.file !== undefined) lines.push(`      file: ${option.file}${option.negate ? ' (negated)' : ''}`)
    lines.push(`      default: ${option.default}`)
  }
  for (const option of CONFIG_OPTIONS.filter((candidate) => candidate.flag !== undefined)) {
    lines.push(`  ${usage(option)}`)
    describe(option)
  }
  lines.push(`  ${HELP_FLAGS.join(', ')}`, '      Print this help and exit.', '', 'Config file only:')
  for (const option of CONFIG_OPTIONS.filter((candidate) => candidate.flag === undefined)) {
    lines.push(`  ${option.file ?? option.key}`)
    describe(option)
  }
  lines.push('')
  return lines.join('\n')
}

/**
 * The settings as a Markdown table (flag, config file key, our variables, distribution's, default,
 * description), the one in the README; a test keeps the two identical.
 */
export function configTableMarkdown (): string {
  const code = (value: string): string => `\`${value}\``
  const rows = CONFIG_OPTIONS.map((option) => [
    option.flag === undefined ? '' : code(usage(option)),
    option.file === undefined ? '' : `${code(option.file)}${option.negate ? ' (negated)' : ''}`,
    option.env.map(code).join(', '),
    option.distributionEnv.map(code).join(', '),
    option.default.startsWith('(') ? option.default : code(option.default),
    option.description
  ])
  return [
    "| Flag | Config file | Environment | Distribution's environment | Default | Description |",
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map((cells) => `| ${cells.join(' | ')} |`)
  ].join('\n') + '\n'
}

interface Raw {
  value: string
  /** The flag, variable or file key it came from, for error messages. */
  source: string
  /** The value as the config file has it (YAML types), when it came from there. */
  fromFile?: { value: unknown }
}

const BOOLEAN_VALUES = new Map<string, boolean>([['true', true], ['false', false], ['1', true], ['0', false]])

function optionByFlag (flag: string): ConfigOption | undefined {
  return CONFIG_OPTIONS.find((option) => option.flag === flag)
}

function parseArgv (argv: readonly string[]): Map<SettingKey, Raw> {
  const found = new Map<SettingKey, Raw>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if ((HELP_FLAGS as readonly string[]).includes(arg)) continue
    if (!arg.startsWith('--')) {
      throw new ConfigError(`unexpected argument "${arg}" (see --help)`)
    }
    const eq = arg.indexOf('=')
    const flag = eq === -1 ? arg : arg.slice(0, eq)
    const option = optionByFlag(flag)
    if (option === undefined) {
      throw new ConfigError(`unknown flag ${flag} (see --help)`)
    }
    let value: string
    if (eq !== -1) {
      value = arg.slice(eq + 1)
    } else if (option.kind === 'boolean') {
      // A bare boolean flag means true; take the next word only when it is a boolean value.
      const next = argv[i + 1]
      if (next !== undefined && BOOLEAN_VALUES.has(next.toLowerCase())) {
        value = next
        i++
      } else {
        value = 'true'
      }
    } else {
      const next = argv[i + 1]
      if (next === undefined || (next.startsWith('--') && next.length > 2)) {
        throw new ConfigError(`${flag} needs a value ${option.placeholder ?? ''}`.trimEnd())
      }
      value = next
      i++
    }
    found.set(option.key, { value, source: flag })
  }
  return found
}

function fromEnv (env: Record<string, string | undefined>, names: readonly string[]): Raw | undefined {
  for (const name of names) {
    const value = env[name]
    // An empty variable counts as unset, as shells and compose files often leave them so.
    if (value !== undefined && value !== '') return { value, source: name }
  }
  return undefined
}

function fileRaw (file: ConfigFile | undefined, key: string): Raw | undefined {
  if (file === undefined || !file.values.has(key)) return undefined
  const value = file.values.get(key)
  return { value: typeof value === 'string' ? value : JSON.stringify(value), source: key, fromFile: { value } }
}

function parseBoolean (raw: Raw): boolean {
  if (raw.fromFile !== undefined) {
    if (typeof raw.fromFile.value !== 'boolean') throw new ConfigError(`${raw.source}: expected true or false, got ${JSON.stringify(raw.fromFile.value)}`)
    return raw.fromFile.value
  }
  const value = BOOLEAN_VALUES.get(raw.value.toLowerCase())
  if (value === undefined) {
    throw new ConfigError(`${raw.source}: "${raw.value}" is not a boolean (use true, false, 1 or 0)`)
  }
  return value
}

function parseInteger (raw: Raw, min: number, max: number): number {
  if (!/^[0-9]+$/.test(raw.value) || Number(raw.value) < min || Number(raw.value) > max) {
    if (raw.fromFile !== undefined) throw new ConfigError(`${raw.source}: expected an integer from ${min} to ${max}, got ${JSON.stringify(raw.fromFile.value)}`)
    throw new ConfigError(`${raw.source}: "${raw.value}" is not an integer from ${min} to ${max}`)
  }
  return Number(raw.value)
}

function parseChoice<T extends string> (raw: Raw, choices: readonly T[], what: string): T {
  const value = raw.value.toLowerCase()
  if (!(choices as readonly string[]).includes(value)) {
    if (raw.fromFile !== undefined) throw new ConfigError(`${raw.source}: expected one of ${choices.join(', ')}, got ${JSON.stringify(raw.fromFile.value)}`)
    throw new ConfigError(`${raw.source}: unknown ${what} "${raw.value}" (valid: ${choices.join(', ')})`)
  }
  return value as T
}

function parseText (raw: Raw): string {
  if (raw.fromFile !== undefined && typeof raw.fromFile.value !== 'string' && typeof raw.fromFile.value !== 'number') {
    throw new ConfigError(`${raw.source}: expected a text, got ${JSON.stringify(raw.fromFile.value)}`)
  }
  return raw.value
}

/** A Go duration in milliseconds, at least `minimum`. */
function parseDurationRaw (raw: Raw, minimum: number): number {
  const ms = raw.fromFile !== undefined && raw.fromFile.value === 0 ? 0 : parseDuration(raw.value)
  if (ms === undefined || ms < minimum) {
    const allowed = minimum > 0 ? `a duration of at least ${formatDuration(minimum)}, such as 90s, 10m or 168h` : DURATION_HINT
    if (raw.fromFile !== undefined) throw new ConfigError(`${raw.source}: expected ${allowed}, got ${JSON.stringify(raw.fromFile.value)}`)
    throw new ConfigError(`${raw.source}: "${raw.value}" is not ${allowed}`)
  }
  return ms
}

function parseHost (raw: Raw): string {
  if (raw.value === '' || /[\s/]/.test(raw.value)) {
    throw new ConfigError(`${raw.source}: "${raw.value}" is not a host name or address`)
  }
  return raw.value
}

function parsePublicUrl (raw: Raw): string {
  let url: URL
  try {
    url = new URL(raw.value)
  } catch {
    throw new ConfigError(`${raw.source}: "${raw.value}" is not a URL`)
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.search !== '' || url.hash !== '' || /\s/.test(raw.value)) {
    throw new ConfigError(`${raw.source}: "${raw.value}" must be an http or https URL without query or fragment`)
  }
  return raw.value
}

/** Splits distribution's `http.addr`: `host:port`, `[v6]:port` or `:port`. */
function parseHttpAddr (raw: Raw): { host?: Raw, port: Raw } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):([0-9]+)$/.exec(raw.value)
  if (match === null) {
    throw new ConfigError(`${raw.source}: "${raw.value}" is not host:port or :port`)
  }
  const host = match[1] ?? match[2] ?? ''
  return {
    ...(host === '' ? {} : { host: { value: host, source: raw.source } }),
    port: { value: match[3] as string, source: raw.source }
  }
}

function parsePath (raw: Raw, cwd: string): string {
  if (parseText(raw).trim() === '') throw new ConfigError(`${raw.source}: the file name must not be empty`)
  return resolve(cwd, raw.value)
}

function parseRealmUrl (raw: Raw): string {
  let url: URL
  try {
    url = new URL(raw.value)
  } catch {
    throw new ConfigError(`${raw.source}: "${raw.value}" is not a URL`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`${raw.source}: "${raw.value}" must be an http or https URL`)
  return raw.value
}

type Lookup = (key: SettingKey) => Raw | undefined

const AUTH_SETTINGS: readonly SettingKey[] = ['htpasswdPath', 'htpasswdRealm', 'tokenRealm', 'tokenService', 'tokenIssuer', 'tokenRootCertBundle', 'tokenJwks', 'tokenKey', 'tokenAcl']

/** The auth option of the plugin and, for token mode without an external realm, the bundled token service. */
function authSettings (get: Lookup, cwd: string): { auth?: AuthOptions, tokenService?: TokenServiceConfig } {
  const modeRaw = get('auth')
  const mode: AuthMode = modeRaw === undefined ? 'none' : parseChoice(modeRaw, AUTH_MODES, 'auth mode')
  const path = (key: SettingKey): string | undefined => {
    const raw = get(key)
    return raw === undefined ? undefined : parsePath(raw, cwd)
  }
  const value = (key: SettingKey): string | undefined => {
    const raw = get(key)
    return raw === undefined ? undefined : parseText(raw)
  }
  if (mode === 'none') {
    // Settings of a mode that is not on would leave the registry open while looking protected.
    const stray = AUTH_SETTINGS.map(get).find((raw) => raw !== undefined)
    if (stray !== undefined) throw new ConfigError(`${stray.source} is set but access control is off: add --auth htpasswd or --auth token (REGISTRY_AUTH)`)
    return {}
  }
  const htpasswd = path('htpasswdPath')
  if (mode === 'htpasswd') {
    if (htpasswd === undefined) throw new ConfigError('--auth htpasswd needs --htpasswd <file> (REGISTRY_AUTH_HTPASSWD_PATH)')
    const realm = value('htpasswdRealm')
    return { auth: { mode: 'htpasswd', path: htpasswd, ...(realm === undefined ? {} : { realm }) } }
  }
  const service = value('tokenService') ?? DEFAULT_TOKEN_SERVICE
  const rootCertBundle = path('tokenRootCertBundle')
  const jwks = path('tokenJwks')
  const keys = { ...(rootCertBundle === undefined ? {} : { rootCertBundle }), ...(jwks === undefined ? {} : { jwks }) }
  const realmRaw = get('tokenRealm')
  if (realmRaw !== undefined) {
    const issuer = value('tokenIssuer')
    if (issuer === undefined) throw new ConfigError('--token-realm needs --token-issuer <name> (REGISTRY_AUTH_TOKEN_ISSUER)')
    if (rootCertBundle === undefined && jwks === undefined) {
      throw new ConfigError('--token-realm needs the keys that sign tokens: --token-rootcertbundle <file> or --token-jwks <file>')
    }
    const bundled = get('tokenKey') ?? get('tokenAcl')
    if (bundled !== undefined) throw new ConfigError(`${bundled.source} configures the bundled token service, which does not run with --token-realm`)
    return { auth: { mode: 'token', realm: parseRealmUrl(realmRaw), service, issuer, ...keys } }
  }
  const key = path('tokenKey')
  if (key === undefined) {
    throw new ConfigError('--auth token without --token-realm runs the bundled token service, which needs --token-key <file> (REGISTRY_TOKEN_KEY)')
  }
  const issuer = value('tokenIssuer') ?? DEFAULT_TOKEN_ISSUER
  const acl = path('tokenAcl')
  return {
    auth: { mode: 'token', realm: '/token', service, issuer, ...keys },
    tokenService: { key, service, issuer, ...(acl === undefined ? {} : { acl }), ...(htpasswd === undefined ? {} : { htpasswd }) }
  }
}

/** The s3 storage options, from flags, REGISTRY_STORAGE_S3_* variables and `storage.s3`. */
function s3Storage (setting: Lookup): RegistryOptions['storage'] {
  const text = (key: SettingKey): string | undefined => {
    const raw = setting(key)
    if (raw !== undefined && parseText(raw).trim() === '') throw new ConfigError(`${raw.source}: must not be empty`)
    return raw?.value
  }
  const integer = (key: SettingKey): number | undefined => {
    const raw = setting(key)
    const option = optionFor(key)
    return raw === undefined ? undefined : parseInteger(raw, option.minimum as number, option.maximum as number)
  }
  const bucket = text('s3Bucket')
  if (bucket === undefined) throw new ConfigError('--storage s3 needs a bucket: --s3-bucket or REGISTRY_STORAGE_S3_BUCKET')
  const endpointRaw = setting('s3Endpoint')
  if (endpointRaw !== undefined && !/^https?:\/\/\S+$/.test(endpointRaw.value)) {
    throw new ConfigError(`${endpointRaw.source}: "${endpointRaw.value}" is not an http or https URL`)
  }
  const accessKey = text('s3AccessKey')
  const secretKey = text('s3SecretKey')
  if ((accessKey === undefined) !== (secretKey === undefined)) {
    throw new ConfigError('--s3-access-key and --s3-secret-key (REGISTRY_STORAGE_S3_ACCESSKEY, _SECRETKEY) go together')
  }
  const forcePathStyleRaw = setting('s3ForcePathStyle')
  const encryptRaw = setting('s3Encrypt')
  const redirectRaw = setting('s3Redirect')
  const region = text('s3Region')
  const rootDirectory = text('s3RootDirectory')
  const storageClass = text('s3StorageClass')
  const keyId = text('s3KeyId')
  const partSize = integer('s3ChunkSize')
  const copyChunk = integer('s3MultipartCopyChunkSize')
  const copyConcurrency = integer('s3MultipartCopyMaxConcurrency')
  const copyThreshold = integer('s3MultipartCopyThresholdSize')
  const encrypt = encryptRaw === undefined ? false : parseBoolean(encryptRaw)
  return {
    driver: 's3',
    bucket,
    ...(region === undefined ? {} : { region }),
    ...(endpointRaw === undefined ? {} : { endpoint: endpointRaw.value }),
    ...(forcePathStyleRaw === undefined ? {} : { forcePathStyle: parseBoolean(forcePathStyleRaw) }),
    ...(accessKey === undefined || secretKey === undefined ? {} : { accessKeyId: accessKey, secretAccessKey: secretKey }),
    ...(rootDirectory === undefined ? {} : { rootDirectory }),
    ...(partSize === undefined ? {} : { partSize }),
    ...(storageClass === undefined ? {} : { storageClass }),
    ...(encrypt ? { serverSideEncryption: keyId === undefined ? 'AES256' as const : 'aws:kms' as const } : {}),
    ...(encrypt && keyId !== undefined ? { kmsKeyId: keyId } : {}),
    ...(redirectRaw === undefined ? {} : { redirect: parseBoolean(redirectRaw) }),
    ...(copyChunk === undefined ? {} : { multipartCopyChunkSize: copyChunk }),
    ...(copyConcurrency === undefined ? {} : { multipartCopyMaxConcurrency: copyConcurrency }),
    ...(copyThreshold === undefined ? {} : { multipartCopyThresholdSize: copyThreshold })
  }
}

/** Reads a config file's text; replaced in tests. */
export type FileReader = (path: string) => string

const readText: FileReader = (path) => readFileSync(path, 'utf8')

function loadFile (raw: Raw, cwd: string, read: FileReader): { path: string, file: ConfigFile } {
  const path = parsePath(raw, cwd)
  let text: string
  try {
    text = read(path)
  } catch (error) {
    throw new ConfigError(`${raw.source}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  }
  const file = readConfigFile(text, FILE_KEYS, path)
  const version = file.values.get('version')
  if (version !== undefined && String(version) !== '0.1') throw new ConfigError(`version: expected 0.1, got ${JSON.stringify(version)}`)
  return { path, file }
}

/**
 * Reads the configuration. Throws a ConfigError naming the flag, variable or file key at fault.
 * `cwd` resolves relative paths; `read` reads the config file.
 */
export function parseConfig (argv: readonly string[], env: Record<string, string | undefined>, cwd: string = process.cwd(), read: FileReader = readText): ServerConfig {
  const flags = parseArgv(argv)
  const ours = (key: SettingKey): Raw | undefined => flags.get(key) ?? fromEnv(env, optionFor(key).env)

  const configRaw = ours('config')
  const loaded = configRaw === undefined ? undefined : loadFile(configRaw, cwd, read)
  const file = loaded?.file

  /** Distribution's variable, then the file; a negated key (`disable`) is turned around. */
  const theirs = (key: SettingKey): Raw | undefined => {
    const option = optionFor(key)
    const raw = fromEnv(env, option.distributionEnv) ?? (option.file === undefined ? undefined : fileRaw(file, option.file))
    if (raw === undefined || !option.negate) return raw
    return { value: String(!parseBoolean(raw)), source: raw.source }
  }
  const get = (key: SettingKey): Raw | undefined => ours(key) ?? theirs(key)

  const addrRaw = fromEnv(env, ['REGISTRY_HTTP_ADDR']) ?? fileRaw(file, 'http.addr')
  const addr = addrRaw === undefined ? undefined : parseHttpAddr(addrRaw)
  const distributionRoot = fromEnv(env, ['REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY'])

  const hostRaw = ours('host') ?? addr?.host
  const portRaw = ours('port') ?? addr?.port
  const storageRaw = ours('storage')
  const deleteRaw = get('delete')
  const logLevelRaw = get('logLevel')
  const workersRaw = get('workers')
  const publicUrlRaw = get('publicUrl')
  const trustRaw = get('trustForwardedHeaders')

  const storage: StorageDriverName = storageRaw !== undefined
    ? parseChoice(storageRaw, STORAGE_DRIVERS, 'storage driver')
    : distributionRoot !== undefined
      ? 'filesystem'
      : fromEnv(env, ['REGISTRY_STORAGE_S3_BUCKET']) !== undefined ? 's3' : file?.driver ?? 'filesystem'
  const registry: RegistryOptions = {}
  const s3Flags = CONFIG_OPTIONS.filter((option) => option.key.startsWith('s3') && flags.has(option.key))
  if (storage !== 's3' && s3Flags.length > 0) {
    throw new ConfigError(`${(s3Flags[0] as ConfigOption).flag ?? ''} applies only to --storage s3`)
  }
  if (storage === 's3') {
    if (flags.has('root')) throw new ConfigError('--root applies only to --storage filesystem')
    registry.storage = s3Storage(get)
  } else if (storage === 'filesystem') {
    // distribution's default root when its file names filesystem storage without one.
    const fallback = file?.driver === 'filesystem' ? '/var/lib/registry' : './data'
    const root = get('root') ?? { value: fallback, source: 'default' }
    if (parseText(root).trim() === '') throw new ConfigError(`${root.source}: the storage root must not be empty`)
    registry.storage = { driver: 'filesystem', root: resolve(cwd, root.value) }
  } else {
    // A root on the same command line as inmemory storage is a contradiction, not a leftover.
    if (flags.has('root')) throw new ConfigError('--root applies only to --storage filesystem')
    registry.storage = { driver: 'inmemory' }
  }
  registry.delete = deleteRaw === undefined ? false : parseBoolean(deleteRaw)
  const readOnlyRaw = get('readOnly')
  if (readOnlyRaw !== undefined) registry.readOnly = parseBoolean(readOnlyRaw)
  const relativeRaw = get('relativeUrls')
  if (relativeRaw !== undefined) registry.relativeUrls = parseBoolean(relativeRaw)

  const notYetActedOn: string[] = []
  const purgingRaw = get('uploadPurging')
  const ageRaw = get('uploadPurgingAge')
  const intervalRaw = get('uploadPurgingInterval')
  const dryRunRaw = get('uploadPurgingDryRun')
  const dryRun = dryRunRaw !== undefined && parseBoolean(dryRunRaw)
  if (dryRun) notYetActedOn.push(`${dryRunRaw.source} (purging is off instead)`)
  if (purgingRaw !== undefined || ageRaw !== undefined || intervalRaw !== undefined || dryRun) {
    registry.uploadPurging = {
      ...(purgingRaw === undefined ? {} : { enabled: parseBoolean(purgingRaw) }),
      ...(dryRun ? { enabled: false } : {}),
      ...(ageRaw === undefined ? {} : { ageSeconds: Math.ceil(parseDurationRaw(ageRaw, optionFor('uploadPurgingAge').minimum ?? 0) / 1000) }),
      ...(intervalRaw === undefined ? {} : { intervalSeconds: Math.ceil(parseDurationRaw(intervalRaw, optionFor('uploadPurgingInterval').minimum ?? 0) / 1000) })
    }
  }

  const gcRaw = { enabled: get('gcEnabled'), interval: get('gcInterval'), delay: get('gcDelay'), window: get('gcWindow'), deleteUntagged: get('gcDeleteUntagged') }
  if (Object.values(gcRaw).some((raw) => raw !== undefined)) {
    const seconds = (raw: Raw, key: SettingKey): number => Math.ceil(parseDurationRaw(raw, optionFor(key).minimum ?? 0) / 1000)
    registry.gc = {
      ...(gcRaw.enabled === undefined ? {} : { enabled: parseBoolean(gcRaw.enabled) }),
      ...(gcRaw.interval === undefined ? {} : { intervalSeconds: seconds(gcRaw.interval, 'gcInterval') }),
      ...(gcRaw.delay === undefined ? {} : { delaySeconds: seconds(gcRaw.delay, 'gcDelay') }),
      ...(gcRaw.window === undefined ? {} : { window: parseWindow(gcRaw.window) }),
      ...(gcRaw.deleteUntagged === undefined ? {} : { deleteUntagged: parseBoolean(gcRaw.deleteUntagged) })
    }
  }

  const redisRaw = ours('redis')
  const redisAddr = theirs('redis')
  if (redisRaw !== undefined) {
    if (!/^rediss?:\/\/\S+$/.test(redisRaw.value)) throw new ConfigError(`${redisRaw.source}: "${redisRaw.value}" is not a redis:// or rediss:// URL`)
    registry.cache = { redis: redisRaw.value }
  } else if (redisAddr !== undefined) {
    if (!/^[^\s/:@]+:[0-9]+$/.test(redisAddr.value)) throw new ConfigError(`${redisAddr.source}: "${redisAddr.value}" is not host:port`)
    const passwordRaw = get('redisPassword')
    const dbRaw = get('redisDb')
    const password = passwordRaw === undefined ? '' : `:${encodeURIComponent(parseText(passwordRaw))}@`
    const db = dbRaw === undefined ? '' : `/${parseInteger(dbRaw, 0, 65535)}`
    registry.cache = { redis: `redis://${password}${redisAddr.value}${db}` }
  }
  const scrub = scrubOptions({
    boolean: (key) => { const raw = get(key); return raw === undefined ? undefined : parseBoolean(raw) },
    duration: (key) => { const raw = get(key); return raw === undefined ? undefined : parseDurationRaw(raw, optionFor(key).minimum ?? 0) },
    integer: (key) => { const raw = get(key); return raw === undefined ? undefined : parseInteger(raw, optionFor(key).minimum ?? 0, optionFor(key).maximum ?? Number.MAX_SAFE_INTEGER) }
  })
  if (scrub !== undefined) registry.scrub = scrub
  registry.trustForwardedHeaders = trustRaw === undefined ? false : parseBoolean(trustRaw)
  if (publicUrlRaw !== undefined) registry.publicUrl = parsePublicUrl(publicUrlRaw)
  const { auth, tokenService } = authSettings((key) => key === 'auth' ? ours('auth') ?? (file?.auth === undefined ? undefined : { value: file.auth, source: 'auth' }) : get(key), cwd)
  if (auth !== undefined) registry.auth = auth

  const certificateRaw = get('tlsCertificate')
  const keyRaw = get('tlsKey')
  if ((certificateRaw === undefined) !== (keyRaw === undefined)) throw new ConfigError('--tls-certificate and --tls-key go together')
  const http2Raw = get('http2')
  const http2 = http2Raw === undefined ? false : parseBoolean(http2Raw)
  if (http2 && certificateRaw === undefined) throw new ConfigError('--http2 needs TLS (--tls-certificate and --tls-key)')

  const timeoutKeys = { headerMs: 'headerTimeout', idleMs: 'idleTimeout', keepAliveMs: 'keepAliveTimeout', requestMs: 'requestTimeout' } as const
  let timeouts: Timeouts | undefined
  for (const [field, key] of Object.entries(timeoutKeys) as Array<[keyof Timeouts, SettingKey]>) {
    const raw = get(key)
    if (raw === undefined) continue
    timeouts = { ...(timeouts ?? DEFAULT_TIMEOUTS), [field]: parseDurationRaw(raw, optionFor(key).minimum ?? 0) }
  }
  if (timeouts !== undefined && timeouts.requestMs > 0 && timeouts.headerMs > timeouts.requestMs) {
    throw new ConfigError(`http.timeouts.header (${formatDuration(timeouts.headerMs)}) must not be longer than http.timeouts.request (${formatDuration(timeouts.requestMs)})`)
  }

  // Acted on: handed to the plugin as its option.
  const notifications = notificationsOf(file?.sections.notifications, get('notificationsEndpoints'), get('notificationsIncludeReferences'), parseBoolean)
  if (notifications !== undefined) registry.notifications = notifications

  // The plugin's own validation, so that the server and the plugin can never disagree.
  try {
    resolveOptions(registry)
  } catch (error) {
    throw new ConfigError((error as Error).message)
  }

  const host = hostRaw === undefined ? '127.0.0.1' : parseHost(hostRaw)
  const port = portRaw === undefined ? 5000 : parseInteger(portRaw, 0, 65535)
  const operations = operationsConfig({
    get,
    boolean: parseBoolean,
    integer: (key, raw) => parseInteger(raw, optionFor(key).minimum as number, optionFor(key).maximum as number),
    durationMs: (key, raw) => parseDurationRaw(raw, optionFor(key).minimum ?? 0)
  }, { host, port }, file?.sections)

  const sections = file?.sections ?? {}
  const sectionNames: Record<keyof FileSections, string | undefined> = { notifications: undefined, proxy: 'proxy', healthFile: undefined, healthHttp: undefined, healthTcp: undefined }
  for (const name of Object.keys(sections) as Array<keyof FileSections>) {
    const section = sectionNames[name]
    if (section !== undefined) notYetActedOn.push(section)
  }
  const unsupported = file?.unsupported ?? []

  return {
    host,
    port,
    workers: workersRaw === undefined ? 1 : parseInteger(workersRaw, 1, 1024),
    logLevel: logLevelRaw === undefined ? 'info' : parseChoice(logLevelRaw, LOG_LEVELS, 'log level'),
    registry,
    ...(certificateRaw === undefined || keyRaw === undefined ? {} : { tls: { certificate: parsePath(certificateRaw, cwd), key: parsePath(keyRaw, cwd), http2 } }),
    ...(tokenService === undefined ? {} : { tokenService }),
    ...(timeouts === undefined ? {} : { timeouts }),
    ...(loaded === undefined ? {} : { configFile: loaded.path }),
    ...(Object.keys(sections).length === 0 ? {} : { sections }),
    ...(unsupported.length === 0 && notYetActedOn.length === 0 ? {} : { notices: { unsupported, notYetActedOn } }),
    operations
  }
}

/** A UTC time window, `HH:MM-HH:MM`. */
function parseWindow (raw: Raw): string {
  const value = parseText(raw)
  if (!new RegExp(WINDOW_PATTERN).test(value)) throw new ConfigError(`${raw.source}: expected a UTC time window such as 01:00-05:00, got "${value}"`)
  return value
}

/** The one warning at start about what the config file holds and the server does not act on. */
export function noticeText (notices: FileNotices): string {
  const parts = [
    ...(notices.unsupported.length > 0 ? [`not supported, ignored: ${notices.unsupported.join(', ')}`] : []),
    ...(notices.notYetActedOn.length > 0 ? [`accepted, not yet acted on: ${notices.notYetActedOn.join(', ')}`] : [])
  ]
  return `config file: ${parts.join('; ')}`
}
