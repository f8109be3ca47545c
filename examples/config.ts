/**
 * Configuration of the example server from command-line flags and environment variables.
 * Pure (no I/O, no process globals besides the defaults of its parameters) so that every rule
 * is testable. One table, CONFIG_OPTIONS, drives parsing, `--help` and the README check.
 *
 * Precedence, highest first: flag, our environment variable, CNCF distribution's variable,
 * default. Distribution's names are read so that a deployment moved from `registry:2` keeps
 * working with the same environment.
 */

import { resolve } from 'node:path'
import { resolveOptions, type RegistryOptions } from '../lib/options.js'
import type { AuthOptions } from '../lib/auth/options.js'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

export const STORAGE_DRIVERS = ['inmemory', 'filesystem', 's3'] as const
export type StorageDriverName = typeof STORAGE_DRIVERS[number]

export const AUTH_MODES = ['none', 'htpasswd', 'token'] as const
export type AuthMode = typeof AUTH_MODES[number]

/** Defaults of token mode with the bundled token service. */
export const DEFAULT_TOKEN_SERVICE = 'fastify-oci-registry'
export const DEFAULT_TOKEN_ISSUER = 'fastify-oci-registry-token'

export type SettingKey =
  | 'host' | 'port' | 'storage' | 'root' | 'delete' | 'logLevel' | 'workers' | 'publicUrl' | 'trustForwardedHeaders'
  | 'auth' | 'htpasswdPath' | 'htpasswdRealm' | 'tokenRealm' | 'tokenService' | 'tokenIssuer' | 'tokenRootCertBundle' | 'tokenJwks'
  | 'tokenKey' | 'tokenAcl' | 'tlsCertificate' | 'tlsKey' | 'http2'
  | 's3Bucket' | 's3Region' | 's3Endpoint' | 's3ForcePathStyle' | 's3AccessKey' | 's3SecretKey' | 's3RootDirectory'
  | 's3ChunkSize' | 's3StorageClass' | 's3Encrypt' | 's3KeyId' | 's3Redirect' | 'redis'

export interface ConfigOption {
  key: SettingKey
  flag: `--${string}`
  /** Placeholder of the value in `--help`; absent for booleans, which need no value. */
  placeholder?: string
  kind: 'string' | 'integer' | 'boolean' | 'choice'
  choices?: readonly string[]
  /** Our environment variables. */
  env: readonly string[]
  /** CNCF distribution's variables for the same setting, read after ours. */
  distributionEnv: readonly string[]
  /** The default, as shown to people. */
  default: string
  description: string
}

export const CONFIG_OPTIONS: readonly ConfigOption[] = [
  {
    key: 'host',
    flag: '--host',
    placeholder: '<address>',
    kind: 'string',
    env: ['REGISTRY_HOST'],
    distributionEnv: ['REGISTRY_HTTP_ADDR'],
    default: '127.0.0.1',
    description: 'Address to bind. REGISTRY_HTTP_ADDR is `host:port` or `:port` (then the host stays the default).'
  },
  {
    key: 'port',
    flag: '--port',
    placeholder: '<port>',
    kind: 'integer',
    env: ['REGISTRY_PORT'],
    distributionEnv: ['REGISTRY_HTTP_ADDR'],
    default: '5000',
    description: 'TCP port to listen on; 0 picks a free one.'
  },
  {
    key: 'storage',
    flag: '--storage',
    placeholder: '<driver>',
    kind: 'choice',
    choices: STORAGE_DRIVERS,
    env: ['REGISTRY_STORAGE'],
    distributionEnv: ['REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY', 'REGISTRY_STORAGE_S3_BUCKET'],
    default: 'filesystem',
    description: `Storage driver: ${STORAGE_DRIVERS.join(', ')}. REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY implies filesystem, else REGISTRY_STORAGE_S3_BUCKET implies s3.`
  },
  {
    key: 'root',
    flag: '--root',
    placeholder: '<dir>',
    kind: 'string',
    env: ['REGISTRY_ROOT'],
    distributionEnv: ['REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY'],
    default: './data',
    description: 'Directory of the filesystem storage, resolved against the working directory.'
  },
  {
    key: 'delete',
    flag: '--delete',
    kind: 'boolean',
    env: ['REGISTRY_DELETE'],
    distributionEnv: ['REGISTRY_STORAGE_DELETE_ENABLED'],
    default: 'false',
    description: 'Allow deleting manifests, tags and blobs.'
  },
  {
    key: 'logLevel',
    flag: '--log-level',
    placeholder: '<level>',
    kind: 'choice',
    choices: LOG_LEVELS,
    env: ['REGISTRY_LOG_LEVEL'],
    distributionEnv: ['REGISTRY_LOG_LEVEL'],
    default: 'info',
    description: `Log level: ${LOG_LEVELS.join(', ')}.`
  },
  {
    key: 'workers',
    flag: '--workers',
    placeholder: '<n>',
    kind: 'integer',
    env: ['REGISTRY_WORKERS'],
    distributionEnv: [],
    default: '1',
    description: 'Processes serving the port; more than 1 forks a cluster that restarts dead workers.'
  },
  {
    key: 'publicUrl',
    flag: '--public-url',
    placeholder: '<url>',
    kind: 'string',
    env: ['REGISTRY_PUBLIC_URL'],
    distributionEnv: ['REGISTRY_HTTP_HOST'],
    default: '(from the request)',
    description: 'Base of absolute URLs in Location and Link headers, e.g. https://registry.example.com.'
  },
  {
    key: 'trustForwardedHeaders',
    flag: '--trust-forwarded-headers',
    kind: 'boolean',
    env: ['REGISTRY_TRUST_FORWARDED_HEADERS'],
    distributionEnv: [],
    default: 'false',
    description: 'Build URLs from X-Forwarded-Proto and X-Forwarded-Host (only behind a trusted proxy).'
  },
  {
    key: 'auth',
    flag: '--auth',
    placeholder: '<mode>',
    kind: 'choice',
    choices: AUTH_MODES,
    env: ['REGISTRY_AUTH'],
    distributionEnv: ['REGISTRY_AUTH'],
    default: 'none',
    description: `Access control: ${AUTH_MODES.join(', ')}. See "Access control" below.`
  },
  {
    key: 'htpasswdPath',
    flag: '--htpasswd',
    placeholder: '<file>',
    kind: 'string',
    env: ['REGISTRY_AUTH_HTPASSWD_PATH'],
    distributionEnv: ['REGISTRY_AUTH_HTPASSWD_PATH'],
    default: '(none)',
    description: 'htpasswd file of bcrypt entries (`htpasswd -B`): the users of htpasswd mode and of the bundled token service. Read again when it changes.'
  },
  {
    key: 'htpasswdRealm',
    flag: '--htpasswd-realm',
    placeholder: '<realm>',
    kind: 'string',
    env: ['REGISTRY_AUTH_HTPASSWD_REALM'],
    distributionEnv: ['REGISTRY_AUTH_HTPASSWD_REALM'],
    default: 'registry',
    description: 'Realm of the Basic challenge.'
  },
  {
    key: 'tokenRealm',
    flag: '--token-realm',
    placeholder: '<url>',
    kind: 'string',
    env: ['REGISTRY_AUTH_TOKEN_REALM'],
    distributionEnv: ['REGISTRY_AUTH_TOKEN_REALM'],
    default: '(the bundled token service)',
    description: 'URL of an external token service. Without it, token mode serves the bundled one at /token.'
  },
  {
    key: 'tokenService',
    flag: '--token-service',
    placeholder: '<name>',
    kind: 'string',
    env: ['REGISTRY_AUTH_TOKEN_SERVICE'],
    distributionEnv: ['REGISTRY_AUTH_TOKEN_SERVICE'],
    default: DEFAULT_TOKEN_SERVICE,
    description: 'Name of this registry in tokens (their audience).'
  },
  {
    key: 'tokenIssuer',
    flag: '--token-issuer',
    placeholder: '<name>',
    kind: 'string',
    env: ['REGISTRY_AUTH_TOKEN_ISSUER'],
    distributionEnv: ['REGISTRY_AUTH_TOKEN_ISSUER'],
    default: `(bundled service: ${DEFAULT_TOKEN_ISSUER})`,
    description: 'Issuer (`iss`) tokens must carry; required with --token-realm.'
  },
  {
    key: 'tokenRootCertBundle',
    flag: '--token-rootcertbundle',
    placeholder: '<file>',
    kind: 'string',
    env: ['REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE'],
    distributionEnv: ['REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE'],
    default: '(none)',
    description: 'PEM certificates (or public keys) whose keys sign tokens. With --token-realm, this or --token-jwks is required.'
  },
  {
    key: 'tokenJwks',
    flag: '--token-jwks',
    placeholder: '<file>',
    kind: 'string',
    env: ['REGISTRY_AUTH_TOKEN_JWKS'],
    distributionEnv: ['REGISTRY_AUTH_TOKEN_JWKS'],
    default: '(none)',
    description: 'JSON Web Key Set whose keys sign tokens.'
  },
  {
    key: 'tokenKey',
    flag: '--token-key',
    placeholder: '<file>',
    kind: 'string',
    env: ['REGISTRY_TOKEN_KEY'],
    distributionEnv: [],
    default: '(none)',
    description: 'PEM private key (RSA, EC P-256 or Ed25519) the bundled token service signs with; required when it runs.'
  },
  {
    key: 'tokenAcl',
    flag: '--token-acl',
    placeholder: '<file>',
    kind: 'string',
    env: ['REGISTRY_TOKEN_ACL'],
    distributionEnv: [],
    default: '(users may do anything)',
    description: 'JSON access-control list of the bundled token service.'
  },
  {
    key: 'tlsCertificate',
    flag: '--tls-certificate',
    placeholder: '<file>',
    kind: 'string',
    env: ['REGISTRY_HTTP_TLS_CERTIFICATE'],
    distributionEnv: ['REGISTRY_HTTP_TLS_CERTIFICATE'],
    default: '(plain HTTP)',
    description: 'PEM certificate (chain) to serve HTTPS with; needs --tls-key.'
  },
  {
    key: 'tlsKey',
    flag: '--tls-key',
    placeholder: '<file>',
    kind: 'string',
    env: ['REGISTRY_HTTP_TLS_KEY'],
    distributionEnv: ['REGISTRY_HTTP_TLS_KEY'],
    default: '(plain HTTP)',
    description: 'PEM private key of the certificate.'
  },
  {
    key: 'http2',
    flag: '--http2',
    kind: 'boolean',
    env: ['REGISTRY_HTTP2'],
    distributionEnv: [],
    default: 'false',
    description: 'Serve HTTP/2 as well as HTTP/1.1 (with TLS only).'
  },
  s3Option('s3Bucket', '--s3-bucket', '<name>', 'string', 'BUCKET', '(none)', 'Bucket of the s3 storage (required with --storage s3).'),
  s3Option('s3Region', '--s3-region', '<region>', 'string', 'REGION', '(AWS_REGION, else us-east-1)', 'Region of the bucket.'),
  s3Option('s3Endpoint', '--s3-endpoint', '<url>', 'string', 'REGIONENDPOINT', '(AWS)', 'Endpoint of an S3-compatible service, e.g. http://127.0.0.1:9000.'),
  s3Option('s3ForcePathStyle', '--s3-force-path-style', undefined, 'boolean', 'FORCEPATHSTYLE', 'false', 'Path-style URLs (endpoint/bucket/key), which most S3-compatible services need.'),
  s3Option('s3AccessKey', '--s3-access-key', '<id>', 'string', 'ACCESSKEY', '(SDK default chain)', 'Access key id; without it the AWS SDK\'s default chain (AWS_* variables, profiles, instance roles).'),
  s3Option('s3SecretKey', '--s3-secret-key', '<secret>', 'string', 'SECRETKEY', '(SDK default chain)', 'Secret access key; prefer the variable to the flag, which other users can see.'),
  s3Option('s3RootDirectory', '--s3-root-directory', '<prefix>', 'string', 'ROOTDIRECTORY', '(bucket root)', 'Key prefix of the storage tree inside the bucket.'),
  s3Option('s3ChunkSize', '--s3-chunk-size', '<bytes>', 'integer', 'CHUNKSIZE', '10485760', 'Part size of uploads, buffered in memory by each upload (at least 5 MiB).'),
  s3Option('s3StorageClass', '--s3-storage-class', '<class>', 'string', 'STORAGECLASS', '(bucket default)', 'Storage class of new objects, e.g. STANDARD or INTELLIGENT_TIERING.'),
  s3Option('s3Encrypt', '--s3-encrypt', undefined, 'boolean', 'ENCRYPT', 'false', 'Server-side encryption of new objects: AES256, or aws:kms with --s3-kms-key-id.'),
  s3Option('s3KeyId', '--s3-kms-key-id', '<key>', 'string', 'KEYID', '(none)', 'KMS key of server-side encryption.'),
  {
    key: 's3Redirect',
    flag: '--s3-redirect',
    kind: 'boolean',
    env: ['REGISTRY_S3_REDIRECT'],
    distributionEnv: [],
    default: 'false',
    description: 'Answer blob GETs with a 307 to a presigned S3 URL (valid 20 minutes) instead of streaming them.'
  },
  {
    key: 'redis',
    flag: '--redis',
    placeholder: '<url>',
    kind: 'string',
    env: ['REGISTRY_REDIS_URL'],
    distributionEnv: ['REGISTRY_REDIS_ADDR'],
    default: '(none)',
    description: 'Redis shared by the replicas, caching tags and blob descriptors, e.g. redis://127.0.0.1:6379. REGISTRY_REDIS_ADDR is host:port.'
  }
]

/** The bundled token service: file paths, read when the server is built. */
export interface TokenServiceConfig {
  key: string
  acl?: string
  htpasswd?: string
  service: string
  issuer: string
}

/** An s3 storage setting, read from CNCF distribution's REGISTRY_STORAGE_S3_<SUFFIX> variable. */
function s3Option (key: SettingKey, flag: `--${string}`, placeholder: string | undefined, kind: ConfigOption['kind'], suffix: string, defaultText: string, description: string): ConfigOption {
  const name = `REGISTRY_STORAGE_S3_${suffix}`
  return { key, flag, ...(placeholder === undefined ? {} : { placeholder }), kind, env: [name], distributionEnv: [name], default: defaultText, description }
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

/** The `--help` text, generated from CONFIG_OPTIONS. */
export function helpText (): string {
  const lines = [
    'Usage: node dist/examples/server.js [options]   (or: npm start -- [options])',
    '',
    'Serves an OCI Distribution (Docker Registry V2) registry over HTTP.',
    '',
    'Flags take `--flag value` or `--flag=value`; booleans take true, false, 1 or 0 (a bare flag means true).',
    "Flags win over environment variables, and our variables over CNCF distribution's.",
    '',
    'Options:'
  ]
  for (const option of CONFIG_OPTIONS) {
    lines.push(`  ${option.flag}${option.placeholder === undefined ? '' : ` ${option.placeholder}`}`)
    lines.push(`      ${option.description}`)
    const distribution = option.distributionEnv.filter((name) => !option.env.includes(name))
    lines.push(`      env: ${option.env.join(', ')}${distribution.length > 0 ? `; distribution: ${distribution.join(', ')}` : ''}`)
    lines.push(`      default: ${option.default}`)
  }
  lines.push(`  ${HELP_FLAGS.join(', ')}`, '      Print this help and exit.', '')
  return lines.join('\n')
}

/**
 * The options as a Markdown table (flag, our variables, distribution's, default, description),
 * the one in the README; a test keeps the two identical.
 */
export function configTableMarkdown (): string {
  const code = (text: string): string => `\`${text}\``
  const rows = CONFIG_OPTIONS.map((option) => [
    code(`${option.flag}${option.placeholder === undefined ? '' : ` ${option.placeholder}`}`),
    option.env.map(code).join(', '),
    option.distributionEnv.map(code).join(', '),
    option.default.startsWith('(') ? option.default : code(option.default),
    option.description
  ])
  return [
    "| Flag | Environment | Distribution's environment | Default | Description |",
    '| --- | --- | --- | --- | --- |',
    ...rows.map((cells) => `| ${cells.join(' | ')} |`)
  ].join('\n') + '\n'
}

/** A bad flag or variable; its message names it. */
export class ConfigError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

interface Raw {
  value: string
  /** The flag or variable it came from, for error messages. */
  source: string
}

const BOOLEAN_VALUES: Record<string, boolean> = { true: true, false: false, 1: true, 0: false }

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
      if (next !== undefined && next.toLowerCase() in BOOLEAN_VALUES) {
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

function parseBoolean (raw: Raw): boolean {
  const value = BOOLEAN_VALUES[raw.value.toLowerCase()]
  if (value === undefined) {
    throw new ConfigError(`${raw.source}: "${raw.value}" is not a boolean (use true, false, 1 or 0)`)
  }
  return value
}

function parseInteger (raw: Raw, min: number, max: number): number {
  if (!/^[0-9]+$/.test(raw.value) || Number(raw.value) < min || Number(raw.value) > max) {
    throw new ConfigError(`${raw.source}: "${raw.value}" is not an integer from ${min} to ${max}`)
  }
  return Number(raw.value)
}

function parseChoice<T extends string> (raw: Raw, choices: readonly T[], what: string): T {
  const value = raw.value.toLowerCase()
  if (!(choices as readonly string[]).includes(value)) {
    throw new ConfigError(`${raw.source}: unknown ${what} "${raw.value}" (valid: ${choices.join(', ')})`)
  }
  return value as T
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
  if (raw.value.trim() === '') throw new ConfigError(`${raw.source}: the file name must not be empty`)
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

const AUTH_SETTINGS: readonly SettingKey[] = ['htpasswdPath', 'htpasswdRealm', 'tokenRealm', 'tokenService', 'tokenIssuer', 'tokenRootCertBundle', 'tokenJwks', 'tokenKey', 'tokenAcl']

/** The auth option of the plugin and, for token mode without an external realm, the bundled token service. */
function authSettings (get: (key: SettingKey) => Raw | undefined, cwd: string): { auth?: AuthOptions, tokenService?: TokenServiceConfig } {
  const modeRaw = get('auth')
  const mode: AuthMode = modeRaw === undefined ? 'none' : parseChoice(modeRaw, AUTH_MODES, 'auth mode')
  const path = (key: SettingKey): string | undefined => {
    const raw = get(key)
    return raw === undefined ? undefined : parsePath(raw, cwd)
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
    const realm = get('htpasswdRealm')?.value
    return { auth: { mode: 'htpasswd', path: htpasswd, ...(realm === undefined ? {} : { realm }) } }
  }
  const service = get('tokenService')?.value ?? DEFAULT_TOKEN_SERVICE
  const rootCertBundle = path('tokenRootCertBundle')
  const jwks = path('tokenJwks')
  const keys = { ...(rootCertBundle === undefined ? {} : { rootCertBundle }), ...(jwks === undefined ? {} : { jwks }) }
  const realmRaw = get('tokenRealm')
  if (realmRaw !== undefined) {
    const issuer = get('tokenIssuer')?.value
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
  const issuer = get('tokenIssuer')?.value ?? DEFAULT_TOKEN_ISSUER
  const acl = path('tokenAcl')
  return {
    auth: { mode: 'token', realm: '/token', service, issuer, ...keys },
    tokenService: { key, service, issuer, ...(acl === undefined ? {} : { acl }), ...(htpasswd === undefined ? {} : { htpasswd }) }
  }
}

/** The s3 storage options, from flags and REGISTRY_STORAGE_S3_* variables. */
function s3Storage (setting: (key: SettingKey) => Raw | undefined): RegistryOptions['storage'] {
  const text = (key: SettingKey): string | undefined => {
    const raw = setting(key)
    if (raw !== undefined && raw.value.trim() === '') throw new ConfigError(`${raw.source}: must not be empty`)
    return raw?.value
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
  const chunkRaw = setting('s3ChunkSize')
  const forcePathStyleRaw = setting('s3ForcePathStyle')
  const encryptRaw = setting('s3Encrypt')
  const redirectRaw = setting('s3Redirect')
  const region = text('s3Region')
  const rootDirectory = text('s3RootDirectory')
  const storageClass = text('s3StorageClass')
  const keyId = text('s3KeyId')
  const encrypt = encryptRaw === undefined ? false : parseBoolean(encryptRaw)
  return {
    driver: 's3',
    bucket,
    ...(region === undefined ? {} : { region }),
    ...(endpointRaw === undefined ? {} : { endpoint: endpointRaw.value }),
    ...(forcePathStyleRaw === undefined ? {} : { forcePathStyle: parseBoolean(forcePathStyleRaw) }),
    ...(accessKey === undefined || secretKey === undefined ? {} : { accessKeyId: accessKey, secretAccessKey: secretKey }),
    ...(rootDirectory === undefined ? {} : { rootDirectory }),
    ...(chunkRaw === undefined ? {} : { partSize: parseInteger(chunkRaw, 5 * 1024 * 1024, 5 * 1024 * 1024 * 1024) }),
    ...(storageClass === undefined ? {} : { storageClass }),
    ...(encrypt ? { serverSideEncryption: keyId === undefined ? 'AES256' as const : 'aws:kms' as const } : {}),
    ...(encrypt && keyId !== undefined ? { kmsKeyId: keyId } : {}),
    ...(redirectRaw === undefined ? {} : { redirect: parseBoolean(redirectRaw) })
  }
}

/**
 * Reads the configuration. Throws an Error naming the flag or variable at fault.
 * `cwd` resolves a relative storage root.
 */
export function parseConfig (argv: readonly string[], env: Record<string, string | undefined>, cwd: string = process.cwd()): ServerConfig {
  const flags = parseArgv(argv)
  const ours = (key: SettingKey): Raw | undefined => {
    const option = CONFIG_OPTIONS.find((candidate) => candidate.key === key) as ConfigOption
    return flags.get(key) ?? fromEnv(env, option.env)
  }

  const addrRaw = fromEnv(env, ['REGISTRY_HTTP_ADDR'])
  const addr = addrRaw === undefined ? undefined : parseHttpAddr(addrRaw)
  const distributionRoot = fromEnv(env, ['REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY'])

  const hostRaw = ours('host') ?? addr?.host
  const portRaw = ours('port') ?? addr?.port
  const storageRaw = ours('storage')
  const rootRaw = ours('root')
  const deleteRaw = ours('delete') ?? fromEnv(env, ['REGISTRY_STORAGE_DELETE_ENABLED'])
  const logLevelRaw = ours('logLevel')
  const workersRaw = ours('workers')
  const publicUrlRaw = ours('publicUrl') ?? fromEnv(env, ['REGISTRY_HTTP_HOST'])
  const trustRaw = ours('trustForwardedHeaders')

  const storage: StorageDriverName = storageRaw === undefined
    ? (distributionRoot === undefined && fromEnv(env, ['REGISTRY_STORAGE_S3_BUCKET']) !== undefined ? 's3' : 'filesystem')
    : parseChoice(storageRaw, STORAGE_DRIVERS, 'storage driver')
  const registry: RegistryOptions = {}
  const s3Flags = CONFIG_OPTIONS.filter((option) => option.key.startsWith('s3') && flags.has(option.key))
  if (storage !== 's3' && s3Flags.length > 0) {
    throw new ConfigError(`${(s3Flags[0] as ConfigOption).flag} applies only to --storage s3`)
  }
  if (storage === 's3') {
    if (flags.has('root')) throw new ConfigError('--root applies only to --storage filesystem')
    registry.storage = s3Storage(ours)
  } else if (storage === 'filesystem') {
    const root = rootRaw ?? distributionRoot ?? { value: './data', source: 'default' }
    if (root.value.trim() === '') throw new ConfigError(`${root.source}: the storage root must not be empty`)
    registry.storage = { driver: 'filesystem', root: resolve(cwd, root.value) }
  } else {
    // A root on the same command line as inmemory storage is a contradiction, not a leftover.
    if (flags.has('root')) throw new ConfigError('--root applies only to --storage filesystem')
    registry.storage = { driver: 'inmemory' }
  }
  registry.delete = deleteRaw === undefined ? false : parseBoolean(deleteRaw)
  const redisRaw = ours('redis')
  const redisAddr = fromEnv(env, ['REGISTRY_REDIS_ADDR'])
  if (redisRaw !== undefined) {
    if (!/^rediss?:\/\/\S+$/.test(redisRaw.value)) throw new ConfigError(`${redisRaw.source}: "${redisRaw.value}" is not a redis:// or rediss:// URL`)
    registry.cache = { redis: redisRaw.value }
  } else if (redisAddr !== undefined) {
    if (!/^[^\s/:]+:[0-9]+$/.test(redisAddr.value)) throw new ConfigError(`${redisAddr.source}: "${redisAddr.value}" is not host:port`)
    registry.cache = { redis: `redis://${redisAddr.value}` }
  }
  registry.trustForwardedHeaders = trustRaw === undefined ? false : parseBoolean(trustRaw)
  if (publicUrlRaw !== undefined) registry.publicUrl = parsePublicUrl(publicUrlRaw)
  const { auth, tokenService } = authSettings(ours, cwd)
  if (auth !== undefined) registry.auth = auth

  const certificateRaw = ours('tlsCertificate')
  const keyRaw = ours('tlsKey')
  if ((certificateRaw === undefined) !== (keyRaw === undefined)) throw new ConfigError('--tls-certificate and --tls-key go together')
  const http2Raw = ours('http2')
  const http2 = http2Raw === undefined ? false : parseBoolean(http2Raw)
  if (http2 && certificateRaw === undefined) throw new ConfigError('--http2 needs TLS (--tls-certificate and --tls-key)')

  // The plugin's own validation, so that the server and the plugin can never disagree.
  try {
    resolveOptions(registry)
  } catch (error) {
    throw new ConfigError((error as Error).message)
  }

  return {
    host: hostRaw === undefined ? '127.0.0.1' : parseHost(hostRaw),
    port: portRaw === undefined ? 5000 : parseInteger(portRaw, 0, 65535),
    workers: workersRaw === undefined ? 1 : parseInteger(workersRaw, 1, 1024),
    logLevel: logLevelRaw === undefined ? 'info' : parseChoice(logLevelRaw, LOG_LEVELS, 'log level'),
    registry,
    ...(certificateRaw === undefined || keyRaw === undefined ? {} : { tls: { certificate: parsePath(certificateRaw, cwd), key: parsePath(keyRaw, cwd), http2 } }),
    ...(tokenService === undefined ? {} : { tokenService })
  }
}
