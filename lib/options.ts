/**
 * Options of the umbrella plugin, as a TypeBox schema: validated at registration so that a
 * typo in a deployment fails at start with a clear message, not at the first push.
 */

import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import type { StorageDriver } from './storage/driver.js'
import { AuthOptionsSchema, type AuthOptions } from './auth/options.js'
import { ScrubOptionsSchema, resolveScrubOptions, type ResolvedScrubOptions } from './lifecycle/scrub.js'
import { NotificationsOptionsSchema } from './notifications/options.js'
import { GcOptionsSchema } from './lifecycle/gc-options.js'
import { MetricsOptionsSchema } from './metrics/options.js'
import { HealthOptionsSchema } from './health/options.js'
import { RateLimitOptionsSchema } from './ratelimit/options.js'

export const StorageOptionsSchema = Type.Union([
  Type.Object({ driver: Type.Literal('inmemory') }, { additionalProperties: false }),
  Type.Object({
    driver: Type.Literal('filesystem'),
    root: Type.String({ minLength: 1, description: 'Directory holding the storage tree.' })
  }, { additionalProperties: false }),
  Type.Object({
    driver: Type.Literal('s3'),
    bucket: Type.String({ minLength: 1, description: 'Bucket holding the storage tree.' }),
    region: Type.Optional(Type.String({ minLength: 1, description: 'Region (default AWS_REGION, else us-east-1).' })),
    endpoint: Type.Optional(Type.String({ pattern: '^https?://[^\\s]+$', description: 'Endpoint of an S3-compatible service.' })),
    forcePathStyle: Type.Optional(Type.Boolean({ description: 'Path-style URLs, which most S3-compatible services need.' })),
    accessKeyId: Type.Optional(Type.String({ minLength: 1, description: 'Static credentials; without them the SDK\'s default chain.' })),
    secretAccessKey: Type.Optional(Type.String({ minLength: 1 })),
    sessionToken: Type.Optional(Type.String({ minLength: 1 })),
    rootDirectory: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._/-]*$', description: 'Key prefix of the tree inside the bucket.' })),
    partSize: Type.Optional(Type.Integer({ minimum: 5 * 1024 * 1024, maximum: 5 * 1024 * 1024 * 1024, description: 'Bytes per uploaded part, buffered by each writer (default 10 MiB).' })),
    storageClass: Type.Optional(Type.String({ minLength: 1, description: 'Storage class of new objects, e.g. STANDARD.' })),
    serverSideEncryption: Type.Optional(Type.Union([Type.Literal('AES256'), Type.Literal('aws:kms')], { description: 'Server-side encryption of new objects.' })),
    kmsKeyId: Type.Optional(Type.String({ minLength: 1, description: 'KMS key for aws:kms encryption.' })),
    redirect: Type.Optional(Type.Boolean({ description: 'Answer blob GETs with a 307 to a presigned URL (default false).' })),
    redirectExpirySeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 604800, description: 'Lifetime of a presigned URL (default 1,200).' })),
    multipartCopyThresholdSize: Type.Optional(Type.Integer({ minimum: 0, description: 'Objects above this are copied in parts (default 32 MiB).' })),
    multipartCopyChunkSize: Type.Optional(Type.Integer({ minimum: 5 * 1024 * 1024, maximum: 5 * 1024 * 1024 * 1024, description: 'Part size of a multipart copy (default 32 MiB).' })),
    multipartCopyMaxConcurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Parts copied at once (default 8).' })),
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 20, description: 'Attempts per S3 request, retried with backoff (default 4).' }))
  }, { additionalProperties: false })
], { default: { driver: 'inmemory' }, description: 'Where blobs, manifests and uploads are kept.' })

export const CacheOptionsSchema = Type.Object({
  redis: Type.Optional(Type.String({ pattern: '^rediss?://', description: 'URL of a Redis server shared by every replica, caching blob descriptors and tags.' })),
  keyPrefix: Type.Optional(Type.String({ default: 'oci-registry:', description: 'Prefix of the cache\'s Redis keys (default `oci-registry:`).' })),
  ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, default: 3600, description: 'Lifetime of a shared cache entry (default 3,600).' })),
  manifestCacheBytes: Type.Optional(Type.Integer({ minimum: 0, default: 16 * 1024 * 1024, description: 'In-process cache of manifests by digest, in bytes; 0 disables it (default 16 MiB).' }))
}, { additionalProperties: false, description: 'Caches in front of storage.' })

export const RegistryOptionsSchema = Type.Object({
  storage: Type.Optional(StorageOptionsSchema),
  cache: Type.Optional(CacheOptionsSchema),
  delete: Type.Optional(Type.Boolean({ default: false, description: 'Allow deleting manifests, tags and blobs (default false).' })),
  readOnly: Type.Optional(Type.Boolean({ default: false, description: 'Refuse every change (pushes, deletes), as CNCF distribution\'s `maintenance.readonly` (default false).' })),
  publicUrl: Type.Optional(Type.String({ pattern: '^https?://[^\\s/]+(/[^\\s]*)?$', description: 'Base of absolute URLs in `Location` and `Link` headers.' })),
  relativeUrls: Type.Optional(Type.Boolean({ default: false, description: 'Write relative URLs in `Location` and `Link` headers.' })),
  trustForwardedHeaders: Type.Optional(Type.Boolean({ default: false, description: 'Build URLs from `X-Forwarded-Proto` and `X-Forwarded-Host` (only behind a trusted proxy).' })),
  manifestBodyLimit: Type.Optional(Type.Integer({ minimum: 1024, default: 4 * 1024 * 1024, description: 'Largest manifest accepted, in bytes (default 4 MiB).' })),
  maxTagsPerRequest: Type.Optional(Type.Integer({ minimum: 10, default: 100, description: 'Most `tag` parameters on one manifest `PUT` (default 100).' })),
  mountWithoutFrom: Type.Optional(Type.Boolean({ default: false, description: 'Honour `?mount=` without `from` by finding the blob in any repository (default false).' })),
  uploadPurging: Type.Optional(Type.Object({
    enabled: Type.Optional(Type.Boolean({ default: true, description: 'Purge abandoned uploads periodically (default true).' })),
    ageSeconds: Type.Optional(Type.Integer({ minimum: 60, default: 7 * 24 * 3600, description: 'Uploads older than this are purged (default one week).' })),
    intervalSeconds: Type.Optional(Type.Integer({ minimum: 1, default: 24 * 3600, description: 'How often to look (default 24 hours).' }))
  }, { additionalProperties: false, description: 'Remove abandoned uploads periodically, as CNCF distribution\'s `uploadpurging`.' })),
  schema1: Type.Optional(Type.Union([Type.Literal('verify'), Type.Literal('reject')], { default: 'verify', description: 'Accept signed schema 1 manifests after verifying their signature, or reject them all.' })),
  auth: Type.Optional(AuthOptionsSchema),
  scrub: Type.Optional(ScrubOptionsSchema),
  notifications: Type.Optional(NotificationsOptionsSchema),
  gc: Type.Optional(GcOptionsSchema),
  metrics: Type.Optional(MetricsOptionsSchema),
  health: Type.Optional(HealthOptionsSchema),
  rateLimit: Type.Optional(RateLimitOptionsSchema)
}, { additionalProperties: false })

export type StorageOptions = Static<typeof StorageOptionsSchema>
export type CacheOptions = Static<typeof CacheOptionsSchema>

export type RegistryOptions = Omit<Static<typeof RegistryOptionsSchema>, 'storage'> & {
  /** Storage configuration, or a driver instance the host built itself. */
  storage?: StorageOptions | StorageDriver
}

export interface ResolvedOptions {
  storage: StorageOptions | StorageDriver
  cache: { redis: string | undefined, keyPrefix: string, ttlSeconds: number, manifestCacheBytes: number }
  delete: boolean
  readOnly: boolean
  publicUrl: string | undefined
  relativeUrls: boolean
  trustForwardedHeaders: boolean
  manifestBodyLimit: number
  maxTagsPerRequest: number
  mountWithoutFrom: boolean
  schema1: 'verify' | 'reject'
  uploadPurging: { enabled: boolean, ageSeconds: number, intervalSeconds: number }
  auth: AuthOptions
  scrub: ResolvedScrubOptions
}

function isDriverInstance (value: unknown): value is StorageDriver {
  return typeof value === 'object' && value !== null &&
    typeof (value as StorageDriver).reader === 'function' && typeof (value as StorageDriver).writer === 'function'
}

const UploadPurgingSchema = RegistryOptionsSchema.properties.uploadPurging
const CacheSchema = RegistryOptionsSchema.properties.cache

/** The default an option's schema declares: the one place each default is written. */
function defaultOf<T> (schema: { default?: unknown }): T {
  return schema.default as T
}

/** Validates options and fills defaults; throws a TypeError naming every problem. */
export function resolveOptions (options: RegistryOptions = {}): ResolvedOptions {
  // Fastify hands its own register options (prefix, logLevel, ...) to the plugin too.
  const { storage, prefix: _prefix, logLevel: _logLevel, logSerializers: _logSerializers, ...rest } = options as RegistryOptions & Record<string, unknown>
  const checked = isDriverInstance(storage) ? rest : { ...rest, ...(storage === undefined ? {} : { storage }) }
  if (!Value.Check(RegistryOptionsSchema, checked)) {
    const problems = [...Value.Errors(RegistryOptionsSchema, checked)]
      .map((error) => `${error.path === '' ? '(options)' : error.path}: ${error.message}`)
    throw new TypeError(`invalid fastify-oci-registry options: ${[...new Set(problems)].join('; ')}`)
  }
  const props = RegistryOptionsSchema.properties
  return {
    storage: storage ?? defaultOf(StorageOptionsSchema),
    cache: {
      redis: options.cache?.redis,
      keyPrefix: options.cache?.keyPrefix ?? defaultOf(CacheSchema.properties.keyPrefix),
      ttlSeconds: options.cache?.ttlSeconds ?? defaultOf(CacheSchema.properties.ttlSeconds),
      manifestCacheBytes: options.cache?.manifestCacheBytes ?? defaultOf(CacheSchema.properties.manifestCacheBytes)
    },
    delete: options.delete ?? defaultOf(props.delete),
    readOnly: options.readOnly ?? defaultOf(props.readOnly),
    publicUrl: options.publicUrl,
    relativeUrls: options.relativeUrls ?? defaultOf(props.relativeUrls),
    trustForwardedHeaders: options.trustForwardedHeaders ?? defaultOf(props.trustForwardedHeaders),
    manifestBodyLimit: options.manifestBodyLimit ?? defaultOf(props.manifestBodyLimit),
    maxTagsPerRequest: options.maxTagsPerRequest ?? defaultOf(props.maxTagsPerRequest),
    mountWithoutFrom: options.mountWithoutFrom ?? defaultOf(props.mountWithoutFrom),
    schema1: options.schema1 ?? defaultOf(props.schema1),
    uploadPurging: {
      enabled: options.uploadPurging?.enabled ?? defaultOf(UploadPurgingSchema.properties.enabled),
      ageSeconds: options.uploadPurging?.ageSeconds ?? defaultOf(UploadPurgingSchema.properties.ageSeconds),
      intervalSeconds: options.uploadPurging?.intervalSeconds ?? defaultOf(UploadPurgingSchema.properties.intervalSeconds)
    },
    auth: options.auth ?? { mode: 'none' },
    scrub: resolveScrubOptions(options.scrub)
  }
}

/** README wording of options whose type or default does not read well from the schema alone. */
const OPTION_DOCS: Partial<Record<keyof typeof RegistryOptionsSchema.properties, { type?: string, default?: string, description?: string }>> = {
  storage: {
    type: "`{ driver: 'inmemory' }`, `{ driver: 'filesystem', root: string }`, `{ driver: 's3', bucket: string, ... }` (see [S3 storage](#s3-storage)), or a storage driver instance"
  },
  cache: { default: 'manifests in memory, no Redis', description: 'Caches in front of storage; see [Replicas](#running-replicas-behind-a-load-balancer).' },
  publicUrl: { type: 'string, `http(s)://host[/path]`', default: '(from the request)' },
  manifestBodyLimit: { default: '`4194304` (4 MiB)' },
  auth: {
    type: "`{ mode: 'none' }`, `{ mode: 'htpasswd', path, realm?, admins? }` or `{ mode: 'token', realm, service, issuer, rootCertBundle?, jwks?, publicKeys? }`",
    default: "`{ mode: 'none' }`",
    description: 'Access control; see [Access control](#access-control).'
  }
}

function valueText (value: unknown): string {
  if (typeof value === 'string') return `'${value}'`
  if (typeof value === 'object' && value !== null) return `{ ${Object.entries(value).map(([key, item]) => `${key}: ${valueText(item)}`).join(', ')} }`
  return String(value)
}

function typeText (schema: TSchema): string {
  if (schema.anyOf !== undefined) return (schema.anyOf as TSchema[]).map((item) => item.const === undefined ? typeText(item) : `\`${valueText(item.const)}\``).join(' or ')
  if (schema.type === 'integer') return schema.minimum === undefined ? 'integer' : `integer ≥ ${String(schema.minimum)}`
  if (schema.type === 'object') {
    const properties = Object.entries(schema.properties as Record<string, TSchema>)
    return `\`{ ${properties.map(([key, item]) => `${key}?: ${typeText(item).replace(/`/g, '')}`).join(', ')} }\``
  }
  return String(schema.type)
}

function defaultText (schema: TSchema): string {
  if (schema.default !== undefined) return `\`${valueText(schema.default)}\``
  if (schema.type === 'object') {
    const defaults = Object.entries(schema.properties as Record<string, TSchema>).filter(([, item]) => item.default !== undefined)
    if (defaults.length > 0) return `\`${valueText(Object.fromEntries(defaults.map(([key, item]) => [key, item.default])))}\``
  }
  return '(none)'
}

/** The plugin options as the README's Markdown table; a test keeps the two identical. */
export function optionsTableMarkdown (): string {
  const rows = (Object.entries(RegistryOptionsSchema.properties) as Array<[keyof typeof RegistryOptionsSchema.properties, TSchema]>).map(([key, schema]) => {
    const docs = OPTION_DOCS[key] ?? {}
    const description = docs.description ?? String(schema.description ?? '').replace(/ \(default [^)]*\)/, '')
    return `| \`${key}\` | ${docs.type ?? typeText(schema)} | ${docs.default ?? defaultText(schema)} | ${description} |`
  })
  // Options that are code, not configuration: outside the schema, documented here.
  rows.push('| `extensions` | `ExtensionRoute[]` (from `extensionRoute(descriptor, handlers)`) | `[]` | Extra routes under `/v2/_oci/`; see [Extension routes](#extension-routes). |')
  return ['| Option | Type | Default | Description |', '| --- | --- | --- | --- |', ...rows].join('\n') + '\n'
}
