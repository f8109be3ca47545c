/**
 * The example server's settings of the online garbage collection (`storage.gc` in the config
 * file, our own section in distribution's style), spread into SETTINGS (config.ts).
 */

import { Type } from '@sinclair/typebox'
import { GcOptionsSchema } from '../lib/lifecycle/gc-options.js'

const plugin = GcOptionsSchema.properties

export const GC_SETTINGS = {
  gcEnabled: Type.Boolean({
    flag: '--gc',
    file: 'storage.gc.enabled',
    ours: true,
    default: plugin.enabled.default,
    description: 'Collect garbage periodically while serving (see "Garbage collection"). Off by default: with several processes on one storage, a push to another process is protected by the delay only.'
  }),
  gcInterval: Type.String({
    flag: '--gc-interval',
    placeholder: '<duration>',
    file: 'storage.gc.interval',
    ours: true,
    format: 'duration',
    default: 1000 * plugin.intervalSeconds.default,
    minimumMs: 1000,
    description: 'Time between garbage collection runs.'
  }),
  gcDelay: Type.String({
    flag: '--gc-delay',
    placeholder: '<duration>',
    file: 'storage.gc.delay',
    ours: true,
    format: 'duration',
    default: 1000 * plugin.delaySeconds.default,
    minimumMs: 0,
    description: 'Grace of the collection: blobs and untagged manifests younger than this are kept (0s allowed).'
  }),
  gcWindow: Type.String({
    flag: '--gc-window',
    placeholder: '<HH:MM-HH:MM>',
    file: 'storage.gc.window',
    ours: true,
    defaultText: '(any time)',
    description: 'UTC time window in which runs start, e.g. 01:00-05:00.'
  }),
  gcDeleteUntagged: Type.Boolean({
    flag: '--gc-delete-untagged',
    file: 'storage.gc.deleteuntagged',
    ours: true,
    default: plugin.deleteUntagged.default,
    description: 'The collection also removes manifests no tag points at (not the children of a tagged index, nor referrers of kept manifests).'
  })
}
