/**
 * Access controllers: from a request's `Authorization` header and the access it needs, either
 * a caller and its grant, or a challenge to answer with 401. One per mode, as CNCF
 * distribution's: `none` grants everything; `htpasswd` grants everything to a user whose
 * password checks; `token` grants what a verified token's `access` claim lists, and answers a
 * valid token lacking access with 401 and `error="insufficient_scope"`, as distribution does.
 */

import { readFile } from 'node:fs/promises'
import { Grant, scopeOf, type AccessRecord } from './access.js'
import { basicChallenge, bearerChallenge, parseBearer, type BearerError } from './challenge.js'
import { HtpasswdFile, parseBasicAuth, type HtpasswdFileOptions } from './htpasswd.js'
import { TrustedKeys, type JsonWebKeySet } from './keys.js'
import { InvalidTokenError, TokenVerifier } from './token.js'
import type { AuthOptions } from './options.js'

import { refusedPassword } from './password.js'
export { TooManyChecksError } from './password.js'

export interface AuthRequest {
  /** The `Authorization` header, if any. */
  authorization: string | undefined
  /** The request's base URL (scheme and host), for a token realm given as a path. */
  baseUrl: string
}

export type AuthResult =
  | { ok: true, user: string | undefined, grant: Grant }
  /** `reason` is for logs: it never holds credentials or tokens. */
  | { ok: false, challenge: string, reason: string }

export interface AccessController {
  readonly mode: AuthOptions['mode']
  /**
   * Decides a request: `required` must all be granted; `advertised` (a superset, e.g. with the
   * source of a mount) is the scope a challenge asks the client to get a token for.
   */
  authorize: (request: AuthRequest, required: readonly AccessRecord[], advertised?: readonly AccessRecord[]) => Promise<AuthResult>
}

export class OpenAccess implements AccessController {
  readonly mode = 'none' as const
  async authorize (): Promise<AuthResult> {
    return { ok: true, user: undefined, grant: Grant.all() }
  }
}

export class HtpasswdAccess implements AccessController {
  readonly mode = 'htpasswd' as const
  private readonly challenge: string

  constructor (readonly file: HtpasswdFile, realm: string) {
    this.challenge = basicChallenge(realm)
  }

  async authorize (request: AuthRequest): Promise<AuthResult> {
    const credentials = parseBasicAuth(request.authorization)
    if (credentials === undefined) return { ok: false, challenge: this.challenge, reason: 'no basic credentials' }
    if (!await this.file.verify(credentials)) return { ok: false, challenge: this.challenge, reason: refusedPassword(credentials.password) }
    return { ok: true, user: credentials.username, grant: Grant.all() }
  }
}

export class TokenAccess implements AccessController {
  readonly mode = 'token' as const

  constructor (private readonly verifier: TokenVerifier, private readonly realm: string, private readonly service: string) {}

  private realmFor (baseUrl: string): string {
    return this.realm.startsWith('/') ? `${baseUrl}${this.realm}` : this.realm
  }

  async authorize (request: AuthRequest, required: readonly AccessRecord[], advertised: readonly AccessRecord[] = required): Promise<AuthResult> {
    const deny = (reason: string, error?: BearerError): AuthResult => ({
      ok: false,
      reason,
      challenge: bearerChallenge({ realm: this.realmFor(request.baseUrl), service: this.service, scope: scopeOf(advertised), ...(error === undefined ? {} : { error }) })
    })
    const raw = parseBearer(request.authorization)
    if (raw === undefined) return deny('no bearer token')
    let verified
    try {
      verified = await this.verifier.verify(raw)
    } catch (error) {
      if (error instanceof InvalidTokenError) return deny(error.message, 'invalid_token')
      throw error
    }
    if (verified.grant.missing(required).length > 0) return deny('token lacks the access needed', 'insufficient_scope')
    return { ok: true, user: verified.subject, grant: verified.grant }
  }
}

/** Builds the controller of a mode, reading its files; throws when they are missing or hold no key. */
export async function createAccessController (options: AuthOptions, htpasswdOptions: HtpasswdFileOptions = {}): Promise<AccessController> {
  switch (options.mode) {
    case 'none':
      return new OpenAccess()
    case 'htpasswd': {
      const file = new HtpasswdFile(options.path, {
        ...htpasswdOptions,
        ...(options.cacheSeconds === undefined ? {} : { cacheSeconds: options.cacheSeconds }),
        ...(options.maxConcurrentChecks === undefined ? {} : { maxConcurrent: options.maxConcurrentChecks })
      })
      await file.load()
      return new HtpasswdAccess(file, options.realm ?? 'registry')
    }
    case 'token': {
      const pem = [...(options.publicKeys ?? [])]
      if (options.rootCertBundle !== undefined) pem.push(await readFile(options.rootCertBundle, 'utf8'))
      const jwks = options.jwks === undefined ? [] : [JSON.parse(await readFile(options.jwks, 'utf8')) as JsonWebKeySet]
      const keys = await TrustedKeys.from({ pem, jwks })
      if (keys.size === 0) throw new TypeError('token auth needs at least one signing key (rootCertBundle, jwks or publicKeys)')
      const verifier = new TokenVerifier({
        issuer: options.issuer,
        service: options.service,
        keys,
        ...(options.algorithms === undefined ? {} : { algorithms: options.algorithms }),
        ...(options.leewaySeconds === undefined ? {} : { leewaySeconds: options.leewaySeconds })
      })
      return new TokenAccess(verifier, options.realm, options.service)
    }
  }
}
