/**
 * Read-only mode at run time: the admin route `/v2/_oci/admin/readonly` (GET, PUT), and a hook
 * that refuses every change while read-only, after access control and before the body is read
 * (the write path's policy refuses them too, but only once it knows the change).
 */

import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Value } from '@sinclair/typebox/value'
import { RegistryError } from '../lib/errors.js'
import { readOnlyError } from '../lib/policies.js'
import { READONLY_BODY_LIMIT, ReadOnlyStateSchema, isChange, readOnlyRoute, type ReadOnlyState } from '../lib/maintenance/readonly.js'
import { bodyOf, extensionRoute } from './routes/types.js'

async function readState (request: FastifyRequest): Promise<ReadOnlyState> {
  const invalid = (reason: string): RegistryError => new RegistryError('UNSUPPORTED', { reason }, { statusCode: 400 })
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of bodyOf(request)) {
    size += chunk.byteLength
    if (size > READONLY_BODY_LIMIT) throw invalid(`body larger than ${READONLY_BODY_LIMIT} bytes`)
    chunks.push(chunk)
  }
  let state: unknown
  try {
    state = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw invalid('body is not JSON')
  }
  if (!Value.Check(ReadOnlyStateSchema, state)) throw invalid('expected {"enabled": true} or {"enabled": false}')
  return state
}

async function maintenancePlugin (app: FastifyInstance): Promise<void> {
  const registry = app.ociRegistry
  app.ociRegistryRoutes.add(extensionRoute(readOnlyRoute, {
    GET: async (_request, reply) => await reply.send({ enabled: registry.readOnly }),
    PUT: async (request, reply) => {
      const { enabled } = await readState(request)
      if (enabled !== registry.readOnly) request.ociContext.log.warn({ readOnly: enabled, user: request.ociContext.user }, enabled ? 'read-only mode on' : 'read-only mode off')
      registry.readOnly = enabled
      return await reply.send({ enabled })
    }
  }))

  app.addHook('onRequest', async function refuseChangesWhileReadOnly (request) {
    if (registry.readOnly && isChange(request.ociContext?.method)) {
      throw readOnlyError(`${request.method} ${request.ociContext.route?.name ?? ''}`)
    }
  })
}

export default fp(maintenancePlugin, { fastify: '5.x', name: 'oci-registry-maintenance', dependencies: ['oci-registry-auth'] })
