/**
 * Options of the online garbage collection (the plugin's `gc` option; `storage.gc` in the
 * example server's configuration file) and its time window.
 */

import { Type, type Static } from '@sinclair/typebox'

/** `HH:MM-HH:MM` in UTC; the end may be before the start (a window across midnight). */
export const WINDOW_PATTERN = '^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$'

export const GcOptionsSchema = Type.Object({
  enabled: Type.Optional(Type.Boolean({ default: false, description: 'Collect garbage periodically while serving (default false).' })),
  intervalSeconds: Type.Optional(Type.Integer({ minimum: 1, default: 3600, description: 'Time between runs (default one hour).' })),
  delaySeconds: Type.Optional(Type.Integer({ minimum: 0, default: 3600, description: 'Blobs and untagged manifests younger than this are kept (default one hour).' })),
  window: Type.Optional(Type.String({ pattern: WINDOW_PATTERN, description: 'Runs start only in this UTC time window, e.g. `01:00-05:00` (default any time).' })),
  deleteUntagged: Type.Optional(Type.Boolean({ default: false, description: 'Also remove manifests no tag points at (default false).' }))
}, { additionalProperties: false, description: 'Online garbage collection; the admin API (`/v2/_oci/admin/gc`) runs one on demand.' })

export type GcOptions = Static<typeof GcOptionsSchema>

export interface ResolvedGcOptions {
  enabled: boolean
  intervalMs: number
  delayMs: number
  window: string | undefined
  deleteUntagged: boolean
}

const props = GcOptionsSchema.properties

/** The options with their defaults (validated already, with the plugin's other options). */
export function resolveGcOptions (options: GcOptions = {}): ResolvedGcOptions {
  return {
    enabled: options.enabled ?? props.enabled.default,
    intervalMs: 1000 * (options.intervalSeconds ?? props.intervalSeconds.default),
    delayMs: 1000 * (options.delaySeconds ?? props.delaySeconds.default),
    window: options.window,
    deleteUntagged: options.deleteUntagged ?? props.deleteUntagged.default
  }
}

/** Whether `time` falls in the UTC window `HH:MM-HH:MM` (always, without a window). */
export function inWindow (window: string | undefined, time: Date): boolean {
  if (window === undefined) return true
  const [start, end] = window.split('-').map((clock) => {
    const [hours, minutes] = clock.split(':').map(Number)
    return (hours as number) * 60 + (minutes as number)
  }) as [number, number]
  const now = time.getUTCHours() * 60 + time.getUTCMinutes()
  return start <= end ? now >= start && now < end : now >= start || now < end
}
