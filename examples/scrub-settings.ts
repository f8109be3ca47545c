/**
 * The example server's settings of the integrity scrub: the config file's `storage.scrub`
 * section (our own, in distribution's style) and its `REGISTRY_STORAGE_SCRUB_*` variables.
 * Spread into SETTINGS (config.ts); `scrubOptions` turns what was set into the plugin's option.
 */

import { Type } from '@sinclair/typebox'
import { ScrubOptionsSchema, type ScrubOptions } from '../lib/lifecycle/scrub.js'

const plugin = ScrubOptionsSchema.properties

export const SCRUB_SETTINGS = {
  scrub: Type.Boolean({
    file: 'storage.scrub.enabled',
    ours: true,
    description: 'Scrub on a schedule: re-hash blobs against their digests, check manifests\' references, quarantine corrupt blobs.',
    default: plugin.enabled.default
  }),
  scrubInterval: Type.String({
    file: 'storage.scrub.interval',
    ours: true,
    description: 'Time between scheduled scrubs.',
    format: 'duration',
    default: plugin.intervalSeconds.default * 1000,
    // A minute at least from a config file: a scrub reads every blob.
    minimumMs: 60_000
  }),
  scrubBytesPerSecond: Type.Integer({
    file: 'storage.scrub.bytespersecond',
    ours: true,
    description: 'Most bytes a scrub reads per second; 0 is no limit.',
    minimum: 0,
    maximum: Number.MAX_SAFE_INTEGER,
    default: plugin.bytesPerSecond.default
  }),
  scrubReverify: Type.String({
    file: 'storage.scrub.reverify',
    ours: true,
    description: 'A blob verified this recently, and unchanged since, is not hashed again by a scrub without `--full`.',
    format: 'duration',
    default: plugin.reverifySeconds.default * 1000,
    minimumMs: 0
  })
}

export type ScrubSettingKey = keyof typeof SCRUB_SETTINGS

/** How config.ts reads a setting: undefined when not set. */
export interface ScrubSettingReaders {
  boolean: (key: ScrubSettingKey) => boolean | undefined
  /** Milliseconds. */
  duration: (key: ScrubSettingKey) => number | undefined
  integer: (key: ScrubSettingKey) => number | undefined
}

/** The plugin's `scrub` option from the settings, or undefined when none is set. */
export function scrubOptions (read: ScrubSettingReaders): ScrubOptions | undefined {
  const enabled = read.boolean('scrub')
  const interval = read.duration('scrubInterval')
  const bytesPerSecond = read.integer('scrubBytesPerSecond')
  const reverify = read.duration('scrubReverify')
  if (enabled === undefined && interval === undefined && bytesPerSecond === undefined && reverify === undefined) return undefined
  return {
    ...(enabled === undefined ? {} : { enabled }),
    ...(interval === undefined ? {} : { intervalSeconds: Math.ceil(interval / 1000) }),
    ...(bytesPerSecond === undefined ? {} : { bytesPerSecond }),
    ...(reverify === undefined ? {} : { reverifySeconds: Math.ceil(reverify / 1000) })
  }
}
