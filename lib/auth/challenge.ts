/**
 * `WWW-Authenticate` challenges (RFC 7235 / RFC 6750), written as CNCF distribution writes them.
 * Parameter values are quoted strings; configuration values are checked at start to hold no
 * quote, backslash or control character, and names in scopes follow the name grammar.
 */

/** True when a value can go inside a quoted challenge parameter as is. */
export function isQuotable (value: string): boolean {
  // eslint-disable-next-line no-control-regex
  return !/["\\\u0000-\u001f\u007f]/.test(value)
}

function quoted (value: string): string {
  if (!isQuotable(value)) throw new TypeError('challenge parameter holds a quote, backslash or control character')
  return `"${value}"`
}

export function basicChallenge (realm: string): string {
  return `Basic realm=${quoted(realm)}`
}

export type BearerError = 'invalid_token' | 'insufficient_scope'

export function bearerChallenge (params: { realm: string, service: string, scope?: string, error?: BearerError }): string {
  let challenge = `Bearer realm=${quoted(params.realm)},service=${quoted(params.service)}`
  if (params.scope !== undefined && params.scope !== '') challenge += `,scope=${quoted(params.scope)}`
  if (params.error !== undefined) challenge += `,error=${quoted(params.error)}`
  return challenge
}

/** The token of an `Authorization: Bearer` header, or undefined when it has none. */
export function parseBearer (header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const match = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(header)
  return match === null ? undefined : match[1]
}
