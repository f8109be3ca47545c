/**
 * Access control. An `onRequest` hook, after the context hook and before any body is read,
 * works out from the route descriptor what the request needs (`repository:<name>:pull`, ...),
 * asks the configured access controller (none, htpasswd or token; see lib/auth/) and either
 * stores the caller and its grant in `request.ociContext` or refuses with 401 and the mode's
 * challenge. A refused request never reaches a handler, so it changes nothing. Extension
 * routes are checked the same way; admin routes (`registry:admin:*`) are refused by default:
 * a token must carry the scope, an htpasswd user must be listed in `auth.admins`.
 */

import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { RegistryError } from '../lib/errors.js'
import { Grant, requiredAccess, type AccessRecord } from '../lib/auth/access.js'
import { isValidName } from '../lib/reference.js'
import type { ResolvedOptions } from '../lib/options.js'
import type { RegistryRequestContext } from './context.js'
import { baseUrlOf } from './context.js'

/** The source of a cross-repository mount, when the request is one and names a valid repository. */
function mountSource (request: FastifyRequest): string | undefined {
  if (request.ociContext.route?.name !== 'blob-upload' || request.method !== 'POST') return undefined
  // Read before validation (the dispatcher validates later): only plain strings count.
  const query = request.query as Record<string, unknown>
  return typeof query.mount === 'string' && typeof query.from === 'string' && isValidName(query.from) ? query.from : undefined
}

/** The error detail distribution writes: the records the request needs. */
function detailOf (records: readonly AccessRecord[]): unknown {
  return records.length === 0 ? undefined : records.map((record) => ({ Type: record.type, Name: record.name, Action: record.action }))
}

/** Refuses with 403 what the caller, known or not, was not granted (admin routes when auth is off or the user is no admin). */
function assertGranted (context: RegistryRequestContext, required: readonly AccessRecord[]): void {
  const missing = context.access.missing(required)
  if (missing.length === 0) return
  context.log.info({ missing: detailOf(missing) }, 'access denied')
  throw new RegistryError('DENIED', detailOf(missing))
}

async function authPlugin (app: FastifyInstance, options: ResolvedOptions): Promise<void> {
  if (options.auth.mode === 'none') {
    app.addHook('onRequest', async function openAccess (request) {
      const context = request.ociContext
      context.access = Grant.all()
      if (context.method?.access === 'admin') assertGranted(context, requiredAccess('admin', undefined))
    })
    return
  }
  const admins = new Set(options.auth.mode === 'htpasswd' ? options.auth.admins ?? [] : [])
  // Loaded only when a mode needs them: bcrypt's native addon and the JWT library cost start-up time.
  const { createAccessController, TooManyChecksError } = await import('../lib/auth/controller.js')
  const controller = await createAccessController(options.auth, {
    onEvent: (event) => {
      if (event.kind === 'loaded') app.log.info({ users: event.users, skippedLines: event.skipped }, 'htpasswd file loaded')
      else app.log.error({ err: event.error }, 'htpasswd file unreadable: refusing every user until it can be read')
    }
  })

  app.addHook('onRequest', async function authorize (request) {
    const context = request.ociContext
    // No route or no such method: the dispatcher answers 404 or 405, which tell nothing and change nothing.
    if (context.route === undefined || context.method === undefined) return
    const required = requiredAccess(context.method.access, context.vars.name)
    const from = mountSource(request)
    // A mount asks for a token that can also pull the source; without it, the upload is a plain one.
    const advertised = from === undefined ? required : [...required, { type: 'repository', name: from, action: 'pull' }]
    let result
    try {
      result = await controller.authorize({ authorization: request.headers.authorization, baseUrl: baseUrlOf(request, options) }, required, advertised)
    } catch (error) {
      if (error instanceof TooManyChecksError) throw new RegistryError('TOOMANYREQUESTS', { reason: error.message }, { headers: { 'retry-after': '1' } })
      throw error
    }
    if (!result.ok) {
      context.log.info({ reason: result.reason }, 'access refused')
      throw new RegistryError('UNAUTHORIZED', detailOf(required), { headers: { 'www-authenticate': result.challenge } })
    }
    context.user = result.user
    context.access = result.user !== undefined && admins.has(result.user) ? Grant.all({ admin: true }) : result.grant
    if (result.user !== undefined) {
      context.log = context.log.child({ user: result.user })
      request.log = context.log
    }
    assertGranted(context, required)
  })
}

export default fp(authPlugin, { fastify: '5.x', name: 'oci-registry-auth', dependencies: ['oci-registry-context'] })
