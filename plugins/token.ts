/**
 * A bundled token service of the Docker token specification: `GET /token?service=&scope=`
 * (credentials in a Basic header, or none for anonymous) and the OAuth2 form `POST /token`
 * (`grant_type=password`). It authenticates against an htpasswd file, grants the
 * intersection of the requested scopes and an access-control list, and signs a JWT the
 * registry's token mode verifies. Encapsulated: its parser and error handler stay inside.
 */

import { createPrivateKey, type KeyObject } from 'node:crypto'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { parseScope, type ResourceActions } from '../lib/auth/access.js'
import { Acl, DEFAULT_ACL, type AclDocument } from '../lib/auth/acl.js'
import { basicChallenge } from '../lib/auth/challenge.js'
import { HtpasswdFile, parseBasicAuth, type Credentials } from '../lib/auth/htpasswd.js'
import { TooManyChecksError, refusedPassword } from '../lib/auth/password.js'
import { TokenIssuer } from '../lib/auth/token.js'

export interface TokenServiceOptions {
  /** Path of the endpoint (default `/token`). */
  path?: string
  /** The registry's service name; tokens name it as audience. */
  service: string
  /** The `iss` of the tokens. */
  issuer: string
  /** The signing key: PEM text or a private KeyObject (RSA, EC P-256/384/521 or Ed25519). */
  privateKey: string | KeyObject
  /** htpasswd file of the users; without it only anonymous rules apply. */
  htpasswd?: string
  /** The access-control list (default: authenticated users may do anything, anonymous nothing). */
  acl?: AclDocument
  /** Lifetime of a token in seconds (default 300; at least 60, as the spec asks). */
  expiresIn?: number
  /** Realm of the Basic challenge sent with a 401 (default "registry"). */
  realm?: string
}

/** The `{error, error_description}` body of OAuth2 (RFC 6749 section 5.2). */
class OAuthError extends Error {
  constructor (readonly statusCode: number, readonly error: string, description: string, readonly headers: Record<string, string> = {}) {
    super(description)
  }
}

type TokenQuery = Record<string, string | string[] | undefined>

function list (value: string | string[] | undefined): string[] {
  if (value === undefined) return []
  return Array.isArray(value) ? value : [value]
}

/** Every resource scope of the `scope` parameters (each may hold several, space-separated). */
function requestedScopes (values: readonly string[]): ResourceActions[] {
  const scopes: ResourceActions[] = []
  for (const value of values) {
    for (const text of value.split(' ').filter((part) => part !== '')) {
      const scope = parseScope(text)
      if (scope === undefined) throw new OAuthError(400, 'invalid_scope', `malformed scope ${JSON.stringify(text.slice(0, 300))}`)
      scopes.push(scope)
    }
  }
  return scopes
}

const tokenService: FastifyPluginAsync<TokenServiceOptions> = async function tokenService (app: FastifyInstance, options: TokenServiceOptions) {
  const expiresIn = Math.max(60, options.expiresIn ?? 300)
  const privateKey = typeof options.privateKey === 'string' ? createPrivateKey(options.privateKey) : options.privateKey
  const issuer = new TokenIssuer({ issuer: options.issuer, privateKey })
  const acl = Acl.from(options.acl ?? DEFAULT_ACL)
  const challenge = basicChallenge(options.realm ?? 'registry')
  let users: HtpasswdFile | undefined
  if (options.htpasswd !== undefined) {
    users = new HtpasswdFile(options.htpasswd, {
      onEvent: (event) => {
        if (event.kind === 'loaded') app.log.info({ users: event.users, skippedLines: event.skipped }, 'token service: htpasswd file loaded')
        else app.log.error({ err: event.error }, 'token service: htpasswd file unreadable: refusing every user until it can be read')
      }
    })
    await users.load()
  }

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)))
  })

  app.setErrorHandler(function tokenError (error: unknown, request: FastifyRequest, reply: FastifyReply) {
    const oauth = error instanceof OAuthError
      ? error
      : error instanceof TooManyChecksError
        ? new OAuthError(429, 'temporarily_unavailable', error.message, { 'retry-after': '1' })
        : (error as { statusCode?: number }).statusCode !== undefined && ((error as { statusCode: number }).statusCode < 500)
            ? new OAuthError((error as { statusCode: number }).statusCode, 'invalid_request', (error as Error).message)
            : undefined
    if (oauth === undefined) {
      request.log.error({ err: error }, 'token request failed')
      return reply.code(500).send({ error: 'server_error', error_description: 'internal error' })
    }
    request.log.info({ error: oauth.error, detail: oauth.message }, 'token request refused')
    return reply.code(oauth.statusCode).headers(oauth.headers).send({ error: oauth.error, error_description: oauth.message })
  })

  /** The user the credentials prove, undefined for none; throws 401 for wrong ones. */
  async function authenticate (credentials: Credentials | undefined): Promise<string | undefined> {
    if (credentials === undefined) return undefined
    if (users === undefined || !await users.verify(credentials)) {
      throw new OAuthError(401, 'invalid_grant', refusedPassword(credentials.password), { 'www-authenticate': challenge })
    }
    return credentials.username
  }

  async function grant (request: FastifyRequest, user: string | undefined, service: string | undefined, scopes: string[]) {
    if (service !== undefined && service !== options.service) throw new OAuthError(400, 'invalid_request', 'unknown service')
    const access = acl.grant(user, requestedScopes(scopes))
    const issued = await issuer.issue({ subject: user, audience: options.service, access, expiresIn })
    request.log.info({ user, access }, 'token issued')
    return { issued, access }
  }

  const path = options.path ?? '/token'
  app.get(path, async (request, reply) => {
    const query = request.query as TokenQuery
    const header = request.headers.authorization
    const credentials = parseBasicAuth(header)
    if (header !== undefined && credentials === undefined) throw new OAuthError(400, 'invalid_request', 'only Basic credentials are accepted')
    const user = await authenticate(credentials)
    const service = list(query.service)[0]
    const { issued } = await grant(request, user, service, list(query.scope))
    return await reply.header('cache-control', 'no-store').send({
      token: issued.token,
      access_token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt.toISOString()
    })
  })

  app.post(path, async (request, reply) => {
    const form = (request.body ?? {}) as Record<string, string | undefined>
    if (typeof form !== 'object' || form.grant_type === undefined) throw new OAuthError(400, 'invalid_request', 'grant_type is required')
    if (form.grant_type !== 'password') throw new OAuthError(400, 'unsupported_grant_type', 'only the password grant is supported')
    const credentials = form.username === undefined || form.password === undefined ? undefined : { username: form.username, password: form.password }
    if (credentials === undefined) throw new OAuthError(400, 'invalid_request', 'username and password are required')
    const user = await authenticate(credentials)
    const { issued, access } = await grant(request, user, form.service, list(form.scope))
    return await reply.header('cache-control', 'no-store').send({
      access_token: issued.token,
      token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt.toISOString(),
      scope: access.map((entry) => `${entry.type}:${entry.name}:${entry.actions.join(',')}`).join(' ')
    })
  })
}

export default tokenService
export { tokenService }
