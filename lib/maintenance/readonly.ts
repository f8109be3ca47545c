/**
 * Read-only mode at run time: the admin route that reads and switches it
 * (`/v2/_oci/admin/readonly`), and which requests it refuses before their body is read.
 */

import { Type, type Static } from '@sinclair/typebox'
import { defineRoute, type MethodDescriptor } from '../routes.js'

export const ReadOnlyStateSchema = Type.Object({
  enabled: Type.Boolean({ description: 'Whether every change is refused.' })
}, { additionalProperties: false })

export type ReadOnlyState = Static<typeof ReadOnlyStateSchema>

/** Largest body of a switch request: `{"enabled": false}` and some whitespace. */
export const READONLY_BODY_LIMIT = 1024

export const readOnlyRoute = defineRoute({
  name: 'admin-readonly',
  path: '/v2/_oci/admin/readonly',
  description: 'Read-only mode (distribution\'s `storage.maintenance.readonly`), switchable at run time: while on, every change (uploads, mounts, manifest and tag PUT, deletes) is refused with 405 UNSUPPORTED before its body is read; reads go on. Not kept across restarts: the configuration decides at start.',
  params: Type.Object({}),
  methods: {
    GET: {
      description: 'Whether the registry is read-only.',
      access: 'admin',
      responses: [{ status: 200, description: 'The mode.', body: ReadOnlyStateSchema, contentType: 'application/json' }],
      errors: ['UNAUTHORIZED', 'DENIED']
    },
    PUT: {
      description: 'Switches read-only mode on or off in this process.',
      access: 'admin',
      body: { description: '`{"enabled": true}` or `{"enabled": false}`.', contentTypes: ['application/json'], stream: false },
      responses: [{ status: 200, description: 'The mode now.', body: ReadOnlyStateSchema, contentType: 'application/json' }],
      errors: ['UNSUPPORTED', 'UNAUTHORIZED', 'DENIED']
    }
  }
})

/** Whether a method changes a repository: what read-only mode refuses. */
export function isChange (method: MethodDescriptor | undefined): boolean {
  return method?.access === 'push' || method?.access === 'delete'
}
