/**
 * Request-scoped hooks that build the per-request context, `request.ociContext`: the route the
 * path resolves to, its variables, the repository, a child logger with those fields, the
 * URL builder for this request's host, and (set by the auth plugin) the caller and what it may
 * do. Handlers read only from it, and log through its logger.
 */

import fp from 'fastify-plugin'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { HttpMethod, MethodDescriptor, RouteDescriptor, RouteTable, RouteVars } from '../lib/routes.js'
import { RegistryError } from '../lib/errors.js'
import { UrlBuilder, isValidHost, resolveBase } from '../lib/urls.js'
import type { ResolvedOptions } from '../lib/options.js'
import type { Repository } from '../lib/storage/registry.js'
import { Grant } from '../lib/auth/access.js'

export interface RegistryRequestContext {
  /**
   * The route the path resolved to (a spec route or an extension route); undefined when no
   * route has its shape. Its `name` is the label for logs and metrics: Fastify only sees `/v2/*`.
   */
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
    ociContext: RegistryRequestContext
  }
}

/** The part of the raw path after `<prefix>/v2/`, or undefined when the path is elsewhere. */
function pathAfterV2 (rawUrl: string, apiRoot: string): string | undefined {
  const query = rawUrl.indexOf('?')
  let path = query === -1 ? rawUrl : rawUrl.slice(0, query)
  // The absolute form (`GET http://host/v2/ HTTP/1.1`), which RFC 9112 has servers accept:
  // Fastify routes it by its path, and so must the context.
  const absolute = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]*/.exec(path)
  if (absolute !== null) path = path.slice(absolute[0].length) || '/'

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

/** How many times the field `name` (lower case) appears in a request's raw header list. */
function countFields (rawHeaders: readonly string[], name: string): number {
  let count = 0
  for (let index = 0; index < rawHeaders.length; index += 2) {
    if (rawHeaders[index]?.toLowerCase() === name) count++
  }
  return count
}

/**
 * Refuses a `Host` (and a trusted `X-Forwarded-Host`) outside RFC 9110's grammar: URLs,
 * `Link` headers and challenges are built from it, so a bad one must never get that far.
 */
function assertValidHost (request: FastifyRequest, options: ResolvedOptions): void {
  const refuse = (header: string, reason = 'not a valid host (RFC 9110: uri-host [":" port])'): never => {
    throw new RegistryError('UNSUPPORTED', { header, reason }, { statusCode: 400 })
  }
  const host = request.headers.host
  if (host !== undefined && host !== '' && !isValidHost(host)) refuse('Host')
  // RFC 9112 section 3.2: more than one Host field is a bad request. Node keeps the first.
  if (countFields(request.raw.rawHeaders, 'host') > 1) refuse('Host', 'more than one Host field (RFC 9112 section 3.2)')
  if (options.trustForwardedHeaders) {
    const forwarded = request.headers['x-forwarded-host']
    const first = typeof forwarded === 'string' ? forwarded.split(',')[0]?.trim() : undefined
    if (first !== undefined && first !== '' && !isValidHost(first)) refuse('X-Forwarded-Host')
  }
}

function buildContext (request: FastifyRequest, reply: FastifyReply, app: FastifyInstance, options: ContextOptions, apiRoot: string): RegistryRequestContext {
  const context = new RequestContext(request, options, apiRoot)
  const tail = pathAfterV2(request.raw.url ?? request.url, apiRoot)
  if (tail === undefined) return context
  // Sets the context before checking so that an error thrown below still has one.
  request.ociContext = context
  assertValidHost(request, options)
  const match = options.routes.match(tail)
  if (match === undefined) {
    throw new RegistryError('UNSUPPORTED', { path: request.url.split('?')[0], reason: 'no such endpoint' }, { statusCode: 404 })
  }
  context.route = match.route
  context.vars = match.vars
  const methods = match.route.methods
  context.method = Object.hasOwn(methods, request.method) ? methods[request.method as HttpMethod] : undefined
  if (context.method === undefined) {
    // Before the body is read or parsed: any method, even one Fastify would refuse for its body.
    throw new RegistryError('UNSUPPORTED', { method: request.method, reason: 'method not allowed' }, {
      statusCode: 405, headers: { Allow: Object.keys(methods).join(', ') }
    })
  }
  if (match.vars.name !== undefined) context.repository = app.ociRegistry.repository(match.vars.name)
  // When Fastify logs every request anyway, its lines carry the fields too.
  if (REQUEST_LINE_LEVELS.has(request.log.level)) {
    request.log = context.log
    reply.log = context.log
  }
  return context
}

export interface ContextOptions extends ResolvedOptions {
  /** The spec's routes and the extension routes. */
  routes: RouteTable
}

async function contextPlugin (app: FastifyInstance, options: ContextOptions): Promise<void> {
  const apiRoot = `${app.prefix}/v2/`
  app.decorateRequest('ociContext', null as unknown as RegistryRequestContext)
  app.addHook('onRequest', async function registryContext (request, reply) {
    reply.header('docker-distribution-api-version', 'registry/2.0')
    request.ociContext = buildContext(request, reply, app, options, apiRoot)
  })
}

export default fp(contextPlugin, { fastify: '5.x', name: 'oci-registry-context', dependencies: ['oci-registry-storage'] })
