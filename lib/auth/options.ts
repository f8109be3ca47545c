/** The `auth` option of the registry plugin, as a TypeBox schema (validated with the other options). */

import { Type, type Static } from '@sinclair/typebox'

/** The asymmetric algorithms tokens may be signed with; `none` and the HMAC family never are. */
export const TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const
export type TokenAlgorithm = typeof TOKEN_ALGORITHMS[number]

const Quotable = (description: string) => Type.String({ minLength: 1, pattern: '^[^"\\\\\\u0000-\\u001f\\u007f]+$', description })

export const AuthOptionsSchema = Type.Union([
  Type.Object({ mode: Type.Literal('none') }, { additionalProperties: false }),
  Type.Object({
    mode: Type.Literal('htpasswd'),
    path: Type.String({ minLength: 1, description: 'htpasswd file of bcrypt entries (`htpasswd -B`); read again when it changes.' }),
    realm: Type.Optional(Quotable('Realm of the Basic challenge (default "registry").')),
    cacheSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600, description: 'How long a successful password check is remembered (default 60; 0 turns it off).' })),
    maxConcurrentChecks: Type.Optional(Type.Integer({ minimum: 1, maximum: 64, description: 'Most bcrypt checks at once (default 2).' })),
    admins: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Users allowed on admin extension routes (none by default).' }))
  }, { additionalProperties: false }),
  Type.Object({
    mode: Type.Literal('token'),
    realm: Quotable('URL of the token service; a path (`/token`) is taken relative to the request\'s base URL.'),
    service: Quotable('Name of this registry: the audience tokens must name.'),
    issuer: Type.String({ minLength: 1, description: 'The `iss` tokens must carry.' }),
    rootCertBundle: Type.Optional(Type.String({ minLength: 1, description: 'File of PEM certificates (and public keys) whose keys sign tokens.' })),
    jwks: Type.Optional(Type.String({ minLength: 1, description: 'File of a JSON Web Key Set whose keys sign tokens.' })),
    publicKeys: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'PEM texts of public keys or certificates that sign tokens.' })),
    algorithms: Type.Optional(Type.Array(Type.Union(TOKEN_ALGORITHMS.map((name) => Type.Literal(name))), { minItems: 1 })),
    leewaySeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 600, description: 'Clock skew tolerated on exp and nbf (default 60).' }))
  }, { additionalProperties: false })
], { description: 'Access control: none, htpasswd Basic auth, or Bearer tokens.' })

export type AuthOptions = Static<typeof AuthOptionsSchema>
