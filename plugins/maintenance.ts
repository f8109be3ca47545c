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
import {
  READONLY_BODY_LIMIT, READONLY_REFRESH_MS, ReadOnlyStateSchema, isChange, readOnlyRoute, readOnlySwitchVersion, readReadOnlySwitch, writeReadOnlySwitch, type ReadOnlyState
} from '../lib/maintenance/readonly.js'
import { bodyOf, extensionRoute } from './routes/types.js'

async function readState (request: FastifyRequest): Promise<ReadOnlyState> {
  const invalid = (reason: string): RegistryError => new RegistryError('PARAMETER_INVALID', { reason })
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
  // Configured read-only mode stays on; the shared switch adds to it. The mode changes only when
  // the switch does, so that a host's own `readOnly = ...` holds until the next switch.
  const configured = registry.readOnly
  let applied: boolean | undefined
  let seen: string | undefined
  const refresh = async (): Promise<void> => {
    const version = await readOnlySwitchVersion(registry.driver)
    if (version === undefined || version === seen) return
    seen = version
    const switched = await readReadOnlySwitch(registry.driver)
    if (switched === undefined || switched === applied) return
    applied = switched
    registry.readOnly = configured || switched
  }
  app.ociRegistryRoutes.add(extensionRoute(readOnlyRoute, {
    GET: async (_request, reply) => {
      await refresh()
      return await reply.send({ enabled: registry.readOnly })
    },
    PUT: async (request, reply) => {
      const { enabled } = await readState(request)
      await writeReadOnlySwitch(registry.driver, enabled)
      const before = registry.readOnly
      applied = enabled
      registry.readOnly = configured || enabled
      if (before !== registry.readOnly) request.ociContext.log.warn({ readOnly: registry.readOnly, user: request.ociContext.user }, registry.readOnly ? 'read-only mode on' : 'read-only mode off')
      return await reply.send({ enabled: registry.readOnly })
    }
  }))

  // Every process follows the switch another one wrote, within READONLY_REFRESH_MS.
  let timer: NodeJS.Timeout | undefined
  app.addHook('onReady', async () => {
    await refresh()
    timer = setInterval(() => {
      refresh().catch((error: unknown) => { app.log.warn({ err: error }, 'could not read the read-only switch; the mode stays as it was') })
    }, READONLY_REFRESH_MS).unref()
  })
  app.addHook('onClose', async () => { clearInterval(timer) })

  app.addHook('onRequest', async function refuseChangesWhileReadOnly (request) {
    if (registry.readOnly && isChange(request.ociContext?.method)) {
      throw readOnlyError(`${request.method} ${request.ociContext.route?.name ?? ''}`)
    }
  })
}

export default fp(maintenancePlugin, { fastify: '5.x', name: 'oci-registry-maintenance', dependencies: ['oci-registry-auth'] })
