/**
 * Bearer tokens of the Docker token specification: JWTs whose `access` claim lists the
 * resources and actions granted. The verifier checks what CNCF distribution checks (a trusted
 * signing key, the issuer, the audience = the registry's service, `exp` and `nbf` with a
 * leeway for clock skew); the issuer signs the tokens of the bundled token service.
 */

import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto'
import { jwtVerify, SignJWT, type JWTPayload } from 'jose'
import { Grant, resourceType, type ResourceActions } from './access.js'
import { jwkThumbprint, type TrustedKeys } from './keys.js'
import { TOKEN_ALGORITHMS, type TokenAlgorithm } from './options.js'

export { TOKEN_ALGORITHMS, type TokenAlgorithm }

/** Clock skew tolerated on `exp` and `nbf`, in seconds (distribution's is 60). */
export const DEFAULT_LEEWAY_SECONDS = 60

export interface TokenVerifierOptions {
  issuer: string
  /** The registry's service name: the audience a token must name. */
  service: string
  keys: TrustedKeys
  algorithms?: readonly TokenAlgorithm[]
  leewaySeconds?: number
}

export interface VerifiedToken {
  subject: string | undefined
  grant: Grant
}

/** A token that does not verify; `reason` is for logs and never holds the token. */
export class InvalidTokenError extends Error {
  constructor (readonly reason: string) {
    super(`invalid token: ${reason}`)
    this.name = 'InvalidTokenError'
  }
}

/** The `access` claim, checked entry by entry; anything malformed is dropped, never widened. */
export function accessClaim (value: unknown): ResourceActions[] {
  if (!Array.isArray(value)) return []
  const entries: ResourceActions[] = []
  for (const item of value as unknown[]) {
    if (typeof item !== 'object' || item === null) continue
    const { type, name, actions } = item as Record<string, unknown>
    if (typeof type !== 'string' || typeof name !== 'string' || !Array.isArray(actions)) continue
    entries.push({ type: resourceType(type), name, actions: actions.filter((action): action is string => typeof action === 'string') })
  }
  return entries
}

export class TokenVerifier {
  private readonly algorithms: TokenAlgorithm[]
  private readonly leeway: number

  constructor (private readonly options: TokenVerifierOptions) {
    this.algorithms = [...(options.algorithms ?? TOKEN_ALGORITHMS)]
    this.leeway = options.leewaySeconds ?? DEFAULT_LEEWAY_SECONDS
  }

  /** Verifies a compact JWT; throws InvalidTokenError when anything is wrong with it. */
  async verify (token: string): Promise<VerifiedToken> {
    let payload: JWTPayload
    try {
      ({ payload } = await jwtVerify(token, async (header) => await this.options.keys.resolve(header), {
        algorithms: this.algorithms,
        issuer: this.options.issuer,
        audience: this.options.service,
        clockTolerance: this.leeway,
        requiredClaims: ['exp']
      }))
    } catch (error) {
      const code = (error as { code?: string }).code
      throw new InvalidTokenError(code ?? (error as Error).message)
    }
    const subject = typeof payload.sub === 'string' && payload.sub !== '' ? payload.sub : undefined
    return { subject, grant: Grant.of(accessClaim(payload.access)) }
  }
}

/** The algorithm a private key signs with: ES256/384/512 by curve, EdDSA for Ed25519, RS256 for RSA. */
export function algorithmForKey (key: KeyObject): TokenAlgorithm {
  switch (key.asymmetricKeyType) {
    case 'rsa': return 'RS256'
    case 'ed25519': return 'EdDSA'
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve
      if (curve === 'prime256v1') return 'ES256'
      if (curve === 'secp384r1') return 'ES384'
      if (curve === 'secp521r1') return 'ES512'
      throw new TypeError(`unsupported EC curve ${String(curve)} for token signing`)
    }
    default:
      throw new TypeError(`unsupported key type ${String(key.asymmetricKeyType)} for token signing (use RSA, EC P-256/384/521 or Ed25519)`)
  }
}

export interface TokenIssuerOptions {
  issuer: string
  privateKey: KeyObject
}

export interface IssuedToken {
  token: string
  expiresIn: number
  issuedAt: Date
}

/** Signs access tokens with one private key, named by its JWK thumbprint in `kid`. */
export class TokenIssuer {
  readonly algorithm: TokenAlgorithm
  readonly publicKey: KeyObject
  private readonly kid: Promise<string>

  constructor (private readonly options: TokenIssuerOptions) {
    if (options.privateKey.type !== 'private') throw new TypeError('the token signing key must be a private key')
    this.algorithm = algorithmForKey(options.privateKey)
    this.publicKey = createPublicKey(options.privateKey)
    this.kid = jwkThumbprint(this.publicKey)
  }

  async issue (claims: { subject: string | undefined, audience: string, access: ResourceActions[], expiresIn: number }, now: Date = new Date()): Promise<IssuedToken> {
    const iat = Math.floor(now.getTime() / 1000)
    const token = await new SignJWT({ access: claims.access })
      .setProtectedHeader({ alg: this.algorithm, typ: 'JWT', kid: await this.kid })
      .setIssuer(this.options.issuer)
      .setSubject(claims.subject ?? '')
      .setAudience(claims.audience)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + claims.expiresIn)
      .setJti(randomBytes(16).toString('base64url'))
      .sign(this.options.privateKey)
    return { token, expiresIn: claims.expiresIn, issuedAt: new Date(iat * 1000) }
  }
}
