/**
 * The garbage collection's admin API, as extension route descriptors: start a run, read the
 * last runs' reports.
 */

import { Type } from '@sinclair/typebox'
import { defineRoute, withCode } from '../routes.js'
import '../extension-errors.js'

const Flag = withCode(Type.Union([Type.Literal('true'), Type.Literal('false'), Type.Literal('1'), Type.Literal('0')]), 'PARAMETER_INVALID')

export const GcReportSchema = Type.Object({
  id: Type.String(),
  trigger: Type.Union([Type.Literal('schedule'), Type.Literal('admin'), Type.Literal('cli')]),
  startedAt: Type.String(),
  durationMs: Type.Number(),
  dryRun: Type.Boolean(),
  deleteUntagged: Type.Boolean(),
  repositories: Type.Integer(),
  manifestsMarked: Type.Integer(),
  blobsMarked: Type.Integer(),
  manifestsSwept: Type.Integer(),
  blobsSwept: Type.Integer(),
  bytesFreed: Type.Integer(),
  removed: Type.Object({ blobs: Type.Array(Type.String()), manifests: Type.Array(Type.String()) })
})

export const gcRoute = defineRoute({
  name: 'admin-gc',
  path: '/v2/_oci/admin/gc',
  description: 'Garbage collection: start a run, read the last runs.',
  params: Type.Object({}),
  methods: {
    GET: {
      description: 'Whether a run is going on, and the reports of the last runs of this process, newest first.',
      access: 'admin',
      responses: [{ status: 200, description: 'The state and reports.', body: Type.Object({ running: Type.Boolean(), reports: Type.Array(GcReportSchema) }), contentType: 'application/json' }],
      errors: ['UNAUTHORIZED', 'DENIED']
    },
    POST: {
      description: 'Starts a run. `dryRun` and `deleteUntagged` come from the query or a JSON body; with `wait`, answers the report once the run ends.',
      access: 'admin',
      query: Type.Object({ dryRun: Type.Optional(Flag), deleteUntagged: Type.Optional(Flag), wait: Type.Optional(Flag) }),
      body: { description: 'Optional: `{ "dryRun": boolean, "deleteUntagged": boolean }`.', contentTypes: ['application/json'], stream: false },
      responses: [
        { status: 202, description: 'The run started.', contentType: 'application/json' },
        { status: 200, description: 'The run ended (with `wait`): its report.', body: GcReportSchema, contentType: 'application/json' }
      ],
      errors: ['UNAVAILABLE', 'PARAMETER_INVALID', 'UNSUPPORTED', 'UNAUTHORIZED', 'DENIED']
    }
  }
})
