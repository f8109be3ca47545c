/**
 * Admin API of storage usage and the integrity scrub: extension routes under
 * `/v2/_oci/admin/`, for registry administrators only (`access: 'admin'`).
 */

import { Type } from '@sinclair/typebox'
import { defineRoute, withCode } from '../routes.js'
import '../extension-errors.js'

const RepositoryUsageSchema = Type.Object({
  repository: Type.String(),
  manifests: Type.Integer({ description: 'Manifest revisions.' }),
  manifestBytes: Type.Integer(),
  blobs: Type.Integer({ description: 'Blobs linked.' }),
  blobBytes: Type.Integer(),
  totalBytes: Type.Integer({ description: 'Manifests and blobs, each digest once.' }),
  sharedBytes: Type.Integer({ description: 'Of totalBytes, what another repository holds too.' }),
  updatedAt: Type.String({ description: 'When the repository\'s record was computed.' })
})

export const StoreUsageSchema = Type.Object({
  repositories: Type.Array(RepositoryUsageSchema),
  objects: Type.Integer({ description: 'Distinct manifests and blobs held by repositories.' }),
  totalBytes: Type.Integer({ description: 'Bytes stored, each digest once.' }),
  repositoryBytes: Type.Integer({ description: 'The repositories\' totals added up.' })
})

const ScrubReportSchema = Type.Object({
  id: Type.String(),
  trigger: Type.String({ description: '`schedule`, `admin` or `cli`.' }),
  startedAt: Type.String(),
  durationMs: Type.Integer(),
  blobsChecked: Type.Integer(),
  bytesChecked: Type.Integer(),
  blobsSkipped: Type.Integer({ description: 'Blobs verified recently enough not to be hashed again.' }),
  manifestsChecked: Type.Integer(),
  corrupt: Type.Array(Type.String(), { description: 'Blobs whose bytes did not match their digest, now quarantined.' }),
  missingReferences: Type.Array(Type.String(), { description: '`repository@digest -> digest` of references to something missing.' })
})

const RunningSchema = Type.Union([Type.Null(), Type.Object({ id: Type.String(), startedAt: Type.String() })])

const Glob = withCode(Type.String({ pattern: '^[a-z0-9._/*?-]{1,255}$', description: 'Only repositories matching this glob (`*` within a name component, `**` across).' }), 'NAME_INVALID')

export const usageRoute = defineRoute({
  name: 'admin-usage',
  path: '/v2/_oci/admin/usage',
  description: 'Storage used per repository and by the whole store.',
  params: Type.Object({}),
  methods: {
    GET: {
      description: 'Usage per repository (bytes of its manifests and linked blobs, and what it shares with others) and for the store.',
      access: 'admin',
      responses: [{ status: 200, description: 'The usage.', body: StoreUsageSchema, contentType: 'application/json' }],
      errors: ['UNAUTHORIZED', 'DENIED']
    }
  }
})

export const scrubRoute = defineRoute({
  name: 'admin-scrub',
  path: '/v2/_oci/admin/scrub',
  description: 'The integrity scrub.',
  params: Type.Object({}),
  methods: {
    GET: {
      description: 'The run going on, if any, and the last runs\' reports, newest first.',
      access: 'admin',
      responses: [{ status: 200, description: 'Runs.', body: Type.Object({ running: RunningSchema, reports: Type.Array(ScrubReportSchema) }), contentType: 'application/json' }],
      errors: ['UNAUTHORIZED', 'DENIED']
    },
    POST: {
      description: 'Starts a scrub in this process (or names the one going on); its report arrives in GET and as a `scrub.completed` event.',
      access: 'admin',
      query: Type.Object({
        repository: Type.Optional(Glob),
        full: Type.Optional(withCode(Type.Union([Type.Literal('true'), Type.Literal('false')], { description: 'Hash every blob, however recently verified.' }), 'PARAMETER_INVALID'))
      }),
      responses: [{ status: 202, description: 'Started, or already running.', body: Type.Object({ id: Type.String(), startedAt: Type.String(), started: Type.Boolean() }), contentType: 'application/json' }],
      errors: ['NAME_INVALID', 'PARAMETER_INVALID', 'UNSUPPORTED', 'UNAUTHORIZED', 'DENIED']
    }
  }
})
