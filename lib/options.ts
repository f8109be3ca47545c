/**
 * Options of the umbrella plugin, as a TypeBox schema: validated at registration so that a
 * typo in a deployment fails at start with a clear message, not at the first push.
 */

import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import type { StorageDriver } from './storage/driver.js'
import { AuthOptionsSchema, type AuthOptions } from './auth/options.js'

export const StorageOptionsSchema = Type.Union([
  Type.Object({ driver: Type.Literal('inmemory') }, { additionalProperties: false }),
  Type.Object({
    driver: Type.Literal('filesystem'),
    root: Type.String({ minLength: 1, description: 'Directory holding the storage tree.' })
  }, { additionalProperties: false })
])

export const RegistryOptionsSchema = Type.Object({
  storage: Type.Optional(StorageOptionsSchema),
  delete: Type.Optional(Type.Boolean({ description: 'Allow deleting manifests, tags and blobs (default false).' })),
  publicUrl: Type.Optional(Type.String({ pattern: '^https?://[^\\s/]+(/[^\\s]*)?$', description: 'Base of absolute URLs in Location and Link headers.' })),
  relativeUrls: Type.Optional(Type.Boolean({ description: 'Write relative URLs in Location and Link headers.' })),
  trustForwardedHeaders: Type.Optional(Type.Boolean({ description: 'Build URLs from X-Forwarded-Proto and X-Forwarded-Host.' })),
  manifestBodyLimit: Type.Optional(Type.Integer({ minimum: 1024, description: 'Largest manifest accepted, in bytes (default 4 MiB).' })),
  maxTagsPerRequest: Type.Optional(Type.Integer({ minimum: 10, description: 'Most `tag` parameters on one manifest PUT (default 100).' })),
  mountWithoutFrom: Type.Optional(Type.Boolean({ description: 'Honour `?mount=` without `from` by finding the blob in any repository (default false).' })),
  uploadPurging: Type.Optional(Type.Object({
    enabled: Type.Optional(Type.Boolean({ description: 'Purge abandoned uploads periodically (default true).' })),
    ageSeconds: Type.Optional(Type.Integer({ minimum: 60, description: 'Uploads older than this are purged (default one week).' })),
    intervalSeconds: Type.Optional(Type.Integer({ minimum: 1, description: 'How often to look (default 24 hours).' }))
  }, { additionalProperties: false, description: 'Removal of abandoned uploads, as CNCF distribution\'s `uploadpurging`.' })),
  schema1: Type.Optional(Type.Union([Type.Literal('verify'), Type.Literal('reject')], { description: 'Accept signed schema 1 manifests after verifying them, or reject them all.' })),
  auth: Type.Optional(AuthOptionsSchema)
}, { additionalProperties: false })

export type StorageOptions = Static<typeof StorageOptionsSchema>

export type RegistryOptions = Omit<Static<typeof RegistryOptionsSchema>, 'storage'> & {
  /** Storage configuration, or a driver instance the host built itself. */
  storage?: StorageOptions | StorageDriver
}

export interface ResolvedOptions {
  storage: StorageOptions | StorageDriver
  delete: boolean
  publicUrl: string | undefined
  relativeUrls: boolean
  trustForwardedHeaders: boolean
  manifestBodyLimit: number
  maxTagsPerRequest: number
  mountWithoutFrom: boolean
  schema1: 'verify' | 'reject'
  uploadPurging: { enabled: boolean, ageSeconds: number, intervalSeconds: number }
  auth: AuthOptions
}

function isDriverInstance (value: unknown): value is StorageDriver {
  return typeof value === 'object' && value !== null &&
    typeof (value as StorageDriver).reader === 'function' && typeof (value as StorageDriver).writer === 'function'
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
  return {
    storage: storage ?? { driver: 'inmemory' },
    delete: options.delete ?? false,
    publicUrl: options.publicUrl,
    relativeUrls: options.relativeUrls ?? false,
    trustForwardedHeaders: options.trustForwardedHeaders ?? false,
    manifestBodyLimit: options.manifestBodyLimit ?? 4 * 1024 * 1024,
    maxTagsPerRequest: options.maxTagsPerRequest ?? 100,
    mountWithoutFrom: options.mountWithoutFrom ?? false,
    schema1: options.schema1 ?? 'verify',
    uploadPurging: {
      enabled: options.uploadPurging?.enabled ?? true,
      ageSeconds: options.uploadPurging?.ageSeconds ?? 7 * 24 * 3600,
      intervalSeconds: options.uploadPurging?.intervalSeconds ?? 24 * 3600
    },
    auth: options.auth ?? { mode: 'none' }
  }
}
