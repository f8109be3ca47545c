/**
 * Authentication as registries ask for it: a `WWW-Authenticate` challenge on a 401, answered
 * with Basic credentials or with a Bearer token fetched from the challenge's realm (the Docker
 * token spec: GET realm?service=...&scope=..., Basic credentials when the client has them).
 */

export interface Challenge {
  scheme: string
  params: Record<string, string>
}

/** Parses the first challenge of a `WWW-Authenticate` header. */
export function parseChallenge (header: string | undefined): Challenge | undefined {
  if (header === undefined) return undefined
  const match = /^\s*([A-Za-z][A-Za-z0-9_-]*)\s*(.*)$/.exec(header)
  if (match === null) return undefined
  const params: Record<string, string> = {}
  const pattern = /([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g
  for (const param of (match[2] ?? '').matchAll(pattern)) {
    params[(param[1] as string).toLowerCase()] = param[2] !== undefined ? param[2].replace(/\\(.)/g, '$1') : (param[3] ?? '')
  }
  return { scheme: (match[1] as string).toLowerCase(), params }
}

export function basicAuthorization (username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`
}

/** The token of a token endpoint's JSON answer (`token`, or OAuth's `access_token`). */
export function tokenOf (body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined
  const { token, access_token: accessToken } = body as { token?: unknown, access_token?: unknown }
  if (typeof token === 'string' && token !== '') return token
  if (typeof accessToken === 'string' && accessToken !== '') return accessToken
  return undefined
}
