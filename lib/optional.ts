/**
 * The optional peer dependencies: packages only some configurations need (the S3 SDK for the
 * `s3` driver, ioredis for a shared cache, bcrypt for htpasswd users). They are not installed
 * with the package; the code that needs one imports it when that feature is configured, through
 * `optionalModules`, and a missing package becomes a MissingDependencyError that names it.
 */

import { MissingDependencyError } from './missing-dependency.js'

export { MissingDependencyError }

interface OptionalFeature<T> {
  /** What the user configured, as the error message names it. */
  feature: string
  /** The packages to install for it. */
  packages: readonly string[]
  /** Imports the module that needs them; replaced in tests to simulate a missing package. */
  load: () => Promise<T>
}

/** The import seam of every optional dependency. */
export const optionalModules = {
  s3: {
    feature: 'The s3 storage driver',
    packages: ['@aws-sdk/client-s3', '@aws-sdk/s3-request-presigner'],
    load: async () => await import('./storage/drivers/s3.js')
  } satisfies OptionalFeature<unknown> as OptionalFeature<typeof import('./storage/drivers/s3.js')>,
  redis: {
    feature: 'The Redis cache (cache.redis)',
    packages: ['ioredis'],
    load: async () => await import('./storage/redis-store.js')
  } satisfies OptionalFeature<unknown> as OptionalFeature<typeof import('./storage/redis-store.js')>,
  redisOutbox: {
    feature: 'The notifications\' outbox in Redis (cache.redis)',
    packages: ['ioredis'],
    load: async () => await import('./notifications/redis-outbox.js')
  } satisfies OptionalFeature<unknown> as OptionalFeature<typeof import('./notifications/redis-outbox.js')>,
  cloudevents: {
    feature: 'CloudEvents notifications (format: cloudevents)',
    packages: ['cloudevents'],
    load: async () => await import('./notifications/cloudevents.js')
  } satisfies OptionalFeature<unknown> as OptionalFeature<typeof import('./notifications/cloudevents.js')>,
  bcrypt: {
    feature: 'htpasswd authentication',
    packages: ['bcrypt'],
    load: async () => await import('bcrypt')
  } satisfies OptionalFeature<unknown> as OptionalFeature<typeof import('bcrypt')>
}

/** True for Node's error of an import whose package is not installed. */
function isPackageNotFound (error: unknown, packages: readonly string[]): boolean {
  if (!(error instanceof Error) || (error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') return false
  return packages.some((name) => error.message.includes(`'${name}'`))
}

/** Imports the module of an optional feature; throws MissingDependencyError when its package is missing. */
export async function importOptional<K extends keyof typeof optionalModules> (name: K): Promise<Awaited<ReturnType<(typeof optionalModules)[K]['load']>>> {
  const { feature, packages, load } = optionalModules[name]
  try {
    return await load() as Awaited<ReturnType<(typeof optionalModules)[K]['load']>>
  } catch (error) {
    if (isPackageNotFound(error, packages)) throw new MissingDependencyError(feature, packages, { cause: error })
    throw error
  }
}
