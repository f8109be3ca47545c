/**
 * Request-scoped hooks that build the per-request context, `request.registry`: the route the
 * path resolves to, its variables, the repository, a child logger with those fields, the
 * URL builder for this request's host, and (set by the auth plugin) the caller and what it may
 * do. Handlers read only from it.
 */

import fp from 'fastify-plugin'
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify'
import { matchRoute, type HttpMethod, type MethodDescriptor, type RouteDescriptor, type RouteVars } from '../lib/routes.js'
import { UrlBuilder, resolveBase } from '../lib/urls.js'
import type { ResolvedOptions } from '../lib/options.js'
import type { Repository } from '../lib/storage/registry.js'
import { Grant } from '../lib/auth/access.js'

export interface RegistryRequestContext {
  /** The route the path resolved to; undefined when no route has its shape. */
  route: RouteDescriptor | undefined
  /** The route's descriptor for the request method; undefined when it has none. */
  method: MethodDescriptor | undefined
  vars: RouteVars
  /** The repository named in the path, for routes that have one. */
  repository: Repository | undefined
  urls: UrlBuilder
  log: FastifyBaseLogger
  /** The authenticated user; undefined when anonymous or when auth is off. */
  user: string | undefined
  /** What the caller may do. Nothing until the auth plugin decides (everything when auth is off). */
  access: Grant
}

declare module 'fastify' {
  interface FastifyRequest {
    registry: RegistryRequestContext
  }
}

/** The part of the raw path after `<prefix>/v2/`, or undefined when the path is elsewhere. */
function pathAfterV2 (rawUrl: string, apiRoot: string): string | undefined {
  const query = rawUrl.indexOf('?')
  const path = query === -1 ? rawUrl : rawUrl.slice(0, query)
  if (path === apiRoot.slice(0, -1)) return ''
  return path.startsWith(apiRoot) ? path.slice(apiRoot.length) : undefined
}

/** Scheme and host of this request's absolute URLs (or the configured public URL); '' for relative URLs. */
export function baseUrlOf (request: FastifyRequest, options: ResolvedOptions): string {
  return resolveBase({
    ...(options.publicUrl === undefined ? {} : { publicUrl: options.publicUrl }),
    relative: options.relativeUrls,
    trustForwarded: options.trustForwardedHeaders
  }, {
    ...(request.headers.host === undefined ? {} : { host: request.headers.host }),
    protocol: request.protocol,
    ...(typeof request.headers['x-forwarded-host'] === 'string' ? { forwardedHost: request.headers['x-forwarded-host'] } : {}),
    ...(typeof request.headers['x-forwarded-proto'] === 'string' ? { forwardedProto: request.headers['x-forwarded-proto'] } : {})
  })
}

function buildContext (request: FastifyRequest, app: FastifyInstance, options: ResolvedOptions, apiRoot: string): RegistryRequestContext {
  const urls = new UrlBuilder({ base: baseUrlOf(request, options) + apiRoot.slice(0, -'/v2/'.length) })
  const context: RegistryRequestContext = { route: undefined, method: undefined, vars: {}, repository: undefined, urls, log: request.log, user: undefined, access: Grant.none() }
  const tail = pathAfterV2(request.raw.url ?? request.url, apiRoot)
  if (tail === undefined) return context
  // Sets the context before matching so that a NAME_INVALID thrown below still has one.
  request.registry = context
  const match = matchRoute(tail)
  if (match === undefined) return context
  context.route = match.route
  context.method = match.route.methods[request.method as HttpMethod]
  context.vars = match.vars
  if (match.vars.name !== undefined) context.repository = app.ociRegistry.repository(match.vars.name)
  const fields: Record<string, string> = { route: match.route.name }
  if (match.vars.name !== undefined) fields.repository = match.vars.name
  if (match.vars.digest !== undefined) fields.digest = match.vars.digest
  if (match.vars.reference !== undefined) fields.reference = match.vars.reference
  context.log = request.log.child(fields)
  request.log = context.log
  return context
}

async function contextPlugin (app: FastifyInstance, options: ResolvedOptions): Promise<void> {
  const apiRoot = `${app.prefix}/v2/`
  app.decorateRequest('registry', null as unknown as RegistryRequestContext)
  app.addHook('onRequest', async function registryContext (request, reply) {
    reply.header('docker-distribution-api-version', 'registry/2.0')
    request.registry = buildContext(request, app, options, apiRoot)
  })
}

export default fp(contextPlugin, { fastify: '5.x', name: 'oci-registry-context', dependencies: ['oci-registry-storage'] })
