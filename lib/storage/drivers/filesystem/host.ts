/**
 * What the filesystem driver's parts share about the host file system: a cheap `stat`, the
 * mapping of its errors to driver errors, and how driver paths and directory entries relate.
 */

import { stat as statWithCallback, type Stats } from 'node:fs'
import { PathNotFoundError, StorageDriverError, isValidSegment } from '../../driver.js'

export const NAME = 'filesystem'

/**
 * `stat` through its callback. The promise API allocates a stats array for every call and, measured
 * here, costs two to four times the CPU per stat: most of a metadata request (one or two each).
 */
export async function stat (path: string): Promise<Stats> {
  return await new Promise((resolve, reject) => {
    statWithCallback(path, (error, stats) => { if (error === null) resolve(stats); else reject(error) })
  })
}

export function codeOf (error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' ? code : undefined
}

export function isMissing (error: unknown): boolean {
  const code = codeOf(error)
  return code === 'ENOENT' || code === 'ENOTDIR'
}

/** Maps a file system error to a driver error naming the driver path, never the host path. */
export function driverError (error: unknown, path: string, operation: string): StorageDriverError {
  if (error instanceof StorageDriverError) return error
  if (isMissing(error)) return new PathNotFoundError(NAME, path)
  const code = codeOf(error)
  return new StorageDriverError(NAME, path, `${operation} failed${code === undefined ? '' : ` (${code})`}`)
}

export function childPath (parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`
}

/**
 * The entries of a directory a driver shows, sorted: names outside the path grammar (temporary
 * files, anything foreign put there by hand) are never listed or walked.
 */
export function visible (names: string[]): string[] {
  return names.filter(isValidSegment).sort()
}
