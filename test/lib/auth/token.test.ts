import t from 'tap'
import { createPublicKey } from 'node:crypto'
import { SignJWT, exportJWK, calculateJwkThumbprint, base64url } from 'jose'
import { TrustedKeys, libtrustKeyId } from '../../../lib/auth/keys.js'
import { InvalidTokenError, TokenIssuer, TokenVerifier, accessClaim } from '../../../lib/auth/token.js'
import { keyPair, signToken, type KeyPair } from '../../auth/fixtures.js'

const issuer = 'test-issuer'
const service = 'test-registry'
const access = [{ type: 'repository', name: 'foo/bar', actions: ['pull', 'push'] }]

async function verifierFor (keys: KeyPair[], options: { algorithms?: Array<'ES256' | 'RS256' | 'EdDSA'> } = {}): Promise<TokenVerifier> {
  return new TokenVerifier({ issuer, service, keys: await TrustedKeys.from({ pem: keys.map((key) => key.publicPem) }), ...options })
}

async function kidOf (key: KeyPair): Promise<string> {
  return await calculateJwkThumbprint(await exportJWK(key.publicKey))
}

t.test('valid tokens of each algorithm verify, and grant what their access claim lists', async (t) => {
  for (const kind of ['rsa', 'ec', 'ed25519'] as const) {
    const key = keyPair(kind)
    const verifier = await verifierFor([key])
    const token = await signToken(key, { iss: issuer, aud: service, sub: 'alice', access }, { kid: await kidOf(key) })
    const verified = await verifier.verify(token)
    t.equal(verified.subject, 'alice', kind)
    t.ok(verified.grant.allows('repository', 'foo/bar', 'push'), `${kind}: push on foo/bar`)
    t.notOk(verified.grant.allows('repository', 'foo/bar', 'delete'), `${kind}: not delete`)
    t.notOk(verified.grant.allows('repository', 'foo', 'pull'), `${kind}: nothing on another repository`)
  }
})

t.test('a token is refused when it is expired, not yet valid, for another audience or issuer, unsigned or tampered', async (t) => {
  const key = keyPair('ec')
  const other = keyPair('ec')
  const verifier = await verifierFor([key])
  const kid = await kidOf(key)
  const now = Math.floor(Date.now() / 1000)
  const sign = async (claims: Record<string, unknown>, header: Record<string, unknown> = { kid }, with_ = key): Promise<string> =>
    await signToken(with_, { iss: issuer, aud: service, sub: 'alice', access, ...claims }, header)
  const refused = async (token: string, what: string): Promise<void> => {
    await t.rejects(verifier.verify(token), InvalidTokenError, what)
  }

  await refused(await sign({ exp: now - 120 }), 'expired beyond the leeway')
  await refused(await sign({ nbf: now + 120, iat: now + 120 }), 'not valid before a time beyond the leeway')
  await refused(await sign({ exp: undefined }), 'no expiry')
  await refused(await sign({ aud: 'another-registry' }), 'wrong audience')
  await refused(await sign({ aud: undefined }), 'no audience')
  await refused(await sign({ iss: 'someone-else' }), 'wrong issuer')
  await refused(await sign({}, { kid: await kidOf(other) }, other), 'signed by an untrusted key')
  await refused(await sign({}, { kid }, other), 'signed by another key under our kid')
  await refused(await sign({}, {}), 'no kid, jwk or x5c')
  await refused(await sign({}, { kid: 'unknown' }), 'an unknown kid')

  const good = await sign({})
  const [header, payload, signature] = good.split('.') as [string, string, string]
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>
  const widened = base64url.encode(JSON.stringify({ ...claims, access: [{ type: 'repository', name: 'foo/bar', actions: ['*'] }] }))
  await refused(`${header}.${widened}.${signature}`, 'a tampered payload')
  const flipped = signature.slice(0, 10) + (signature[10] === 'A' ? 'B' : 'A') + signature.slice(11)
  await refused(`${header}.${payload}.${flipped}`, 'a tampered signature')
  const none = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT', kid }))
  await refused(`${none}.${payload}.`, 'alg none with no signature')
  await refused(`${none}.${payload}.${signature}`, 'alg none with a signature')
  await refused('not.a.token', 'garbage')

  // Algorithm confusion: an HMAC keyed with the public key's bytes.
  const secret = new TextEncoder().encode(key.publicPem)
  const hmac = await new SignJWT({ iss: issuer, aud: service, exp: now + 300, access }).setProtectedHeader({ alg: 'HS256', kid }).sign(secret)
  await refused(hmac, 'HS256 signed with the public key')

  t.equal((await verifier.verify(await sign({ exp: now - 30 }))).subject, 'alice', 'expired within the leeway is accepted (clock skew)')
  t.equal((await verifier.verify(await sign({ nbf: now + 30 }))).subject, 'alice', 'not-before within the leeway is accepted')
  const strict = new TokenVerifier({ issuer, service, keys: await TrustedKeys.from({ pem: [key.publicPem] }), leewaySeconds: 0 })
  await t.rejects(strict.verify(await sign({ exp: now - 30 })), InvalidTokenError, 'no leeway: refused')
  const rsaOnly = await verifierFor([key], { algorithms: ['RS256'] })
  await t.rejects(rsaOnly.verify(good), InvalidTokenError, 'an algorithm not allowed is refused')
  t.equal((await verifier.verify(await sign({ aud: ['x', service] }))).subject, 'alice', 'an audience list naming the service is accepted')
})

t.test('the error message never holds the token', async (t) => {
  const key = keyPair('ec')
  const verifier = await verifierFor([key])
  const token = await signToken(key, { iss: 'wrong', aud: service, access }, { kid: await kidOf(key) })
  const error = await verifier.verify(token).catch((error: unknown) => error as Error)
  t.type(error, InvalidTokenError)
  t.notOk((error as Error).message.includes(token.split('.')[1] as string))
  t.notOk((error as Error).message.includes(token.split('.')[2] as string))
})

t.test('key lookup: thumbprint, libtrust id, JWKS kid, embedded jwk', async (t) => {
  const key = keyPair('ec')
  const claims = { iss: issuer, aud: service, sub: 'alice', access }
  const verifier = await verifierFor([key])
  t.equal((await verifier.verify(await signToken(key, claims, { kid: libtrustKeyId(key.publicKey) }))).subject, 'alice', 'the libtrust key id of distribution 2')

  const jwk = { ...await exportJWK(key.publicKey), kid: 'my-key', alg: 'ES256', use: 'sig' }
  const jwks = new TokenVerifier({ issuer, service, keys: await TrustedKeys.from({ jwks: [{ keys: [jwk] }] }) })
  t.equal((await jwks.verify(await signToken(key, claims, { kid: 'my-key' }))).subject, 'alice', 'a JWKS kid')
  await t.rejects(TrustedKeys.from({ jwks: [{ keys: [await exportJWK(key.privateKey)] }] }), /public keys only/, 'a private JWK is refused')
  await t.rejects(TrustedKeys.from({ pem: [key.privatePem] }), /private key/, 'a private PEM is refused')

  const publicJwk = await exportJWK(key.publicKey)
  t.equal((await verifier.verify(await signToken(key, claims, { jwk: publicJwk }))).subject, 'alice', 'an embedded jwk that is trusted')
  const stranger = keyPair('ec')
  await t.rejects(verifier.verify(await signToken(stranger, claims, { jwk: await exportJWK(stranger.publicKey) })), InvalidTokenError, 'an embedded jwk that is not trusted')
})

t.test('the libtrust key id of the spec\'s example key', async (t) => {
  // The ECDSA key and kid of the token specification's worked example.
  const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: 'm7zUpx3b-zmVE5cymSs64POG9QcyEpJaYCD82-549_Q', y: 'dU3biz8sZ_8GPB-odm8Wxz3lNDr1xcAQQPQaOcr1fmc' }, format: 'jwk' })
  t.equal(libtrustKeyId(key), 'PYYO:TEWU:V7JH:26JV:AQTZ:LJC3:SXVJ:XGHA:34F2:2LAQ:ZRMK:Z7Q6')
})

t.test('malformed access entries are dropped, never widened', async (t) => {
  t.same(accessClaim(undefined), [])
  t.same(accessClaim('repository:foo:pull'), [])
  t.same(accessClaim([null, 1, { type: 'repository' }, { type: 'repository', name: 'a', actions: 'pull' }, { type: 'repository(plugin)', name: 'b', actions: ['pull', 3] }]),
    [{ type: 'repository', name: 'b', actions: ['pull'] }])
})

t.test('the issuer signs tokens the verifier accepts, with the key\'s algorithm', async (t) => {
  for (const kind of ['rsa', 'ec', 'ed25519'] as const) {
    const key = keyPair(kind)
    const tokenIssuer = new TokenIssuer({ issuer, privateKey: key.privateKey })
    t.equal(tokenIssuer.algorithm, key.alg)
    const issued = await tokenIssuer.issue({ subject: 'bob', audience: service, access, expiresIn: 300 })
    t.equal(issued.expiresIn, 300)
    const verified = await (await verifierFor([key])).verify(issued.token)
    t.equal(verified.subject, 'bob')
    t.ok(verified.grant.allows('repository', 'foo/bar', 'pull'))
    const header = JSON.parse(Buffer.from(issued.token.split('.')[0] as string, 'base64url').toString()) as Record<string, string>
    t.same(header, { alg: key.alg, typ: 'JWT', kid: await kidOf(key) })
  }
  const anonymous = await new TokenIssuer({ issuer, privateKey: keyPair().privateKey }).issue({ subject: undefined, audience: service, access: [], expiresIn: 60 })
  const payload = JSON.parse(Buffer.from(anonymous.token.split('.')[1] as string, 'base64url').toString()) as Record<string, unknown>
  t.equal(payload.sub, '', 'an anonymous token has an empty subject, as the spec asks')
  t.throws(() => new TokenIssuer({ issuer, privateKey: keyPair().publicKey }), /private key/)
})
