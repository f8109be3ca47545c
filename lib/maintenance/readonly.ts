/**
 * Read-only mode at run time: the admin route that reads and switches it
 * (`/v2/_oci/admin/readonly`), and which requests it refuses before their body is read.
 */

import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { defineRoute, type MethodDescriptor } from '../routes.js'
import '../extension-errors.js'
import { isPathNotFound, type StorageDriver } from '../storage/driver.js'
import { pathFor } from '../storage/paths.js'

export const ReadOnlyStateSchema = Type.Object({
  enabled: Type.Boolean({ description: 'Whether every change is refused.' })
}, { additionalProperties: false })

export type ReadOnlyState = Static<typeof ReadOnlyStateSchema>

/** How often a process reads the shared switch: another process's switch reaches it within this. */
export const READONLY_REFRESH_MS = 2000

/**
 * The switch as the admin API last set it, kept in storage so that every process on the storage
 * (workers, replicas) follows it, and a restarted one too; undefined when never set.
 */
export async function readReadOnlySwitch (driver: StorageDriver): Promise<boolean | undefined> {
  let content: Buffer
  try {
    content = await driver.getContent(pathFor({ kind: 'readOnlySwitch' }))
  } catch (error) {
    if (isPathNotFound(error)) return undefined
    throw error
  }
  let state: unknown
  try {
    state = JSON.parse(content.toString('utf8'))
  } catch {
    return undefined
  }
  return Value.Check(ReadOnlyStateSchema, state) ? state.enabled : undefined
}

/**
 * What identifies the switch's current content without reading it (its time and size: `true` and
 * `false` differ in length); undefined when never set. Polling asks this, and reads only on change.
 */
export async function readOnlySwitchVersion (driver: StorageDriver): Promise<string | undefined> {
  try {
    const info = await driver.stat(pathFor({ kind: 'readOnlySwitch' }))
    return `${info.modTime.getTime()}:${info.size}`
  } catch (error) {
    if (isPathNotFound(error)) return undefined
    throw error
  }
}

export async function writeReadOnlySwitch (driver: StorageDriver, enabled: boolean): Promise<void> {
  await driver.putContent(pathFor({ kind: 'readOnlySwitch' }), JSON.stringify({ enabled }))
}

/** Largest body of a switch request: `{"enabled": false}` and some whitespace. */
export const READONLY_BODY_LIMIT = 1024

export const readOnlyRoute = defineRoute({
  name: 'admin-readonly',
  path: '/v2/_oci/admin/readonly',
  description: 'Read-only mode (distribution\'s `storage.maintenance.readonly`), switchable at run time: while on, every change (uploads, mounts, manifest and tag PUT, deletes) is refused with 405 UNSUPPORTED before its body is read; reads go on. The switch is kept in storage: every process on it follows within seconds, a restarted one too. Configured read-only mode stays on whatever the switch says.',
  params: Type.Object({}),
  methods: {
    GET: {
      description: 'Whether the registry is read-only (the shared switch read again).',
      access: 'admin',
      responses: [{ status: 200, description: 'The mode.', body: ReadOnlyStateSchema, contentType: 'application/json' }],
      errors: ['UNAUTHORIZED', 'DENIED']
    },
    PUT: {
      description: 'Switches read-only mode on or off, for every process on the storage.',
      access: 'admin',
      body: { description: '`{"enabled": true}` or `{"enabled": false}`.', contentTypes: ['application/json'], stream: false },
      responses: [{ status: 200, description: 'The mode now.', body: ReadOnlyStateSchema, contentType: 'application/json' }],
      errors: ['PARAMETER_INVALID', 'UNSUPPORTED', 'UNAUTHORIZED', 'DENIED']
    }
  }
})

/** Whether a method changes a repository: what read-only mode refuses. */
export function isChange (method: MethodDescriptor | undefined): boolean {
  return method?.access === 'push' || method?.access === 'delete'
}
