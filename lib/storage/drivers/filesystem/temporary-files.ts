/**
 * Temporary files: atomic writes go to a temporary file beside the target, then rename over it.
 * A crash between the two leaves the temporary file behind; upload purging (and garbage
 * collection) removes those older than a bound with `removeTemporaryFiles`.
 *
 * Every temporary file is named `.tmp~` and 16 hex digits. `~` cannot occur in a driver path, so
 * a temporary file never collides with a real one, and `list`/`walk` hide it like any other name
 * outside the grammar.
 */

import { randomBytes } from 'node:crypto'
import { lstat, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { isValidSegment } from '../../driver.js'
import { isMissing } from './host.js'

const TEMP_PREFIX = '.tmp~'
const temporaryNameRegex = /^\.tmp~[0-9a-f]{16}$/

/** A fresh temporary file name in the host directory `dir`. */
export function temporaryPath (dir: string): string {
  return join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`)
}

export function isTemporaryName (name: string): boolean {
  return temporaryNameRegex.test(name)
}

/**
 * Removes temporary files below the host directory `dir` last modified before `olderThan`;
 * returns how many. Descends only into directories a driver path can name. A file or directory
 * removed meanwhile (by a concurrent delete) is skipped.
 */
export async function removeTemporaryFiles (dir: string, olderThan: Date): Promise<number> {
  let entries
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch (error) {
    if (isMissing(error)) return 0
    throw error
  }
  let removed = 0
  for (const entry of entries) {
    const full = join(dir, entry.name)
    if (entry.isDirectory()) {
      if (isValidSegment(entry.name)) removed += await removeTemporaryFiles(full, olderThan)
    } else if (entry.isFile() && isTemporaryName(entry.name)) {
      try {
        // A write in progress keeps changing its file: only one left alone long enough goes.
        if ((await lstat(full)).mtimeMs >= olderThan.getTime()) continue
        await rm(full)
        removed++
      } catch (error) {
        if (!isMissing(error)) throw error
      }
    }
  }
  return removed
}
