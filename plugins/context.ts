/**
 * Request-scoped hooks that build the per-request context, `request.registry`: the route the
 * path resolves to, its variables, the repository, a child logger with those fields, the
 * URL builder for this request's host, and (set by the auth plugin) the caller and what it may
 * do. Handlers read only from it, and log through its logger.
 */

import fp from 'fastify-plugin'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
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
  readonly urls: UrlBuilder
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

/** Levels at which Fastify writes its own per-request lines (incoming, completed). */
const REQUEST_LINE_LEVELS = new Set(['info', 'debug', 'trace'])

/**
 * The context. The URL builder and the child logger are made on first use: most requests
 * (a manifest or blob read) need neither, and making them costs more than serving the request.
 */
class RequestContext implements RegistryRequestContext {
  route: RouteDescriptor | undefined = undefined
  method: MethodDescriptor | undefined = undefined
  vars: RouteVars = {}
  repository: Repository | undefined = undefined
  user: string | undefined = undefined
  access: Grant = Grant.none()
  private builtUrls: UrlBuilder | undefined
  private childLog: FastifyBaseLogger | undefined

  constructor (private readonly request: FastifyRequest, private readonly options: ResolvedOptions, private readonly apiRoot: string) {}

  get urls (): UrlBuilder {
    if (this.builtUrls === undefined) {
      this.builtUrls = new UrlBuilder({ base: baseUrlOf(this.request, this.options) + this.apiRoot.slice(0, -'/v2/'.length) })
    }
    return this.builtUrls
  }

  /** The request's logger with the route, repository, digest and reference as fields. */
  get log (): FastifyBaseLogger {
    if (this.childLog === undefined) {
      if (this.route === undefined) return this.request.log
      const fields: Record<string, string> = { route: this.route.name }
      if (this.vars.name !== undefined) fields.repository = this.vars.name
      if (this.vars.digest !== undefined) fields.digest = this.vars.digest
      if (this.vars.reference !== undefined) fields.reference = this.vars.reference
      this.childLog = this.request.log.child(fields)
    }
    return this.childLog
  }

  /** Replaces the logger (the auth plugin adds the user to it). */
  set log (logger: FastifyBaseLogger) {
    this.childLog = logger
  }
}

function buildContext (request: FastifyRequest, reply: FastifyReply, app: FastifyInstance, options: ResolvedOptions, apiRoot: string): RegistryRequestContext {
  const context = new RequestContext(request, options, apiRoot)
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
  // When Fastify logs every request anyway, its lines carry the fields too.
  if (REQUEST_LINE_LEVELS.has(request.log.level)) {
    request.log = context.log
    reply.log = context.log
  }
  return context
}

async function contextPlugin (app: FastifyInstance, options: ResolvedOptions): Promise<void> {
  const apiRoot = `${app.prefix}/v2/`
  app.decorateRequest('registry', null as unknown as RegistryRequestContext)
  app.addHook('onRequest', async function registryContext (request, reply) {
    reply.header('docker-distribution-api-version', 'registry/2.0')
    request.registry = buildContext(request, reply, app, options, apiRoot)
  })
}

export default fp(contextPlugin, { fastify: '5.x', name: 'oci-registry-context', dependencies: ['oci-registry-storage'] })
