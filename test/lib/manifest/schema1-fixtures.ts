/**
 * Builds libtrust-style signed schema 1 manifests for tests: the same payload format, protected
 * header, JWK layout and "pretty" splicing that docker's libtrust writes, with node:crypto keys.
 * Also writes small X.509 certificates (DER by hand) so that x5c chains can be tested without
 * a certificate tool.
 */

import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'

export interface TestKey {
  privateKey: KeyObject
  publicKey: KeyObject
}

export function ecKey (namedCurve: 'P-256' | 'P-384' | 'P-521' = 'P-256'): TestKey {
  return generateKeyPairSync('ec', { namedCurve })
}

export function rsaKey (modulusLength = 2048): TestKey {
  return generateKeyPairSync('rsa', { modulusLength })
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/** libtrust's key ID: the first 240 bits of sha256(SPKI DER), base32, in groups of four. */
export function libtrustKeyId (key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key
  const hash = createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest().subarray(0, 30)
  let bits = ''
  for (const byte of hash) bits += byte.toString(2).padStart(8, '0')
  let encoded = ''
  for (let offset = 0; offset < bits.length; offset += 5) encoded += BASE32[parseInt(bits.slice(offset, offset + 5), 2)]
  return (encoded.match(/.{4}/g) ?? []).join(':')
}

/** The public JWK libtrust writes (Go marshals map keys sorted). */
export function libtrustJwk (key: KeyObject): Record<string, string> {
  const jwk = key.export({ format: 'jwk' })
  const kid = libtrustKeyId(key)
  if (jwk.kty === 'EC') return { crv: String(jwk.crv), kid, kty: 'EC', x: String(jwk.x), y: String(jwk.y) }
  return { e: String(jwk.e), kid, kty: 'RSA', n: String(jwk.n) }
}

/** The JWS alg libtrust picks for a key: fixed by the curve for EC, RS256 for RSA. */
export function defaultAlg (key: KeyObject): string {
  if (key.asymmetricKeyType === 'rsa') return 'RS256'
  const curve = key.asymmetricKeyDetails?.namedCurve
  return curve === 'secp384r1' ? 'ES384' : curve === 'secp521r1' ? 'ES512' : 'ES256'
}

const HASHES: Record<string, string> = {
  ES256: 'sha256', ES384: 'sha384', ES512: 'sha512', RS256: 'sha256', RS384: 'sha384', RS512: 'sha512'
}

export interface Schema1Body {
  schemaVersion: number
  name: string
  tag: string
  architecture: string
  fsLayers: Array<{ blobSum: string }>
  history: Array<{ v1Compatibility: string }>
  [key: string]: unknown
}

/** A plausible two-layer manifest. */
export function sampleManifest (overrides: Partial<Schema1Body> = {}): Schema1Body {
  const layer = (seed: string): string => 'sha256:' + createHash('sha256').update(seed).digest('hex')
  return {
    schemaVersion: 1,
    name: 'library/sample',
    tag: 'latest',
    architecture: 'amd64',
    fsLayers: [{ blobSum: layer('top') }, { blobSum: layer('base') }],
    history: [
      { v1Compatibility: JSON.stringify({ id: 'b'.repeat(64), parent: 'a'.repeat(64), os: 'linux' }) },
      { v1Compatibility: JSON.stringify({ id: 'a'.repeat(64), os: 'linux' }) }
    ],
    ...overrides
  }
}

/** The payload docker signs: the manifest indented with three spaces. */
export function payloadOf (manifest: object | string): Buffer {
  return Buffer.from(typeof manifest === 'string' ? manifest : JSON.stringify(manifest, null, 3))
}

function isSpace (byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d
}

/** Where libtrust cuts the payload: before the whitespace that precedes the closing brace. */
export function formatOf (payload: Buffer): { formatLength: number, formatTail: Buffer } {
  let close = payload.length - 1
  while (close >= 0 && isSpace(payload[close])) close--
  if (payload[close] !== 0x7d) throw new Error('payload does not end with }')
  let last = close - 1
  while (last >= 0 && isSpace(payload[last])) last--
  return { formatLength: last + 1, formatTail: payload.subarray(last + 1) }
}

export interface JwsSignature {
  header: { jwk?: Record<string, unknown>, alg: string, x5c?: string[] }
  signature: string
  protected: string
}

export interface SignOptions {
  /** The alg to sign with and announce; defaults to libtrust's choice for the key. */
  alg?: string
  /** A DER certificate chain, leaf first: sent as x5c instead of a jwk. */
  chain?: Buffer[]
  /** Overrides the protected header's fields (tests of malformed headers). */
  protectedFields?: Record<string, unknown>
  /** The jwk to announce instead of the signing key's (tests of a wrong key). */
  jwk?: Record<string, unknown>
}

/** One libtrust signature over `payload`. */
export function signPayload (payload: Buffer, privateKey: KeyObject, options: SignOptions = {}): JwsSignature {
  const { formatLength, formatTail } = formatOf(payload)
  const time = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
  const header = { formatLength, formatTail: formatTail.toString('base64url'), time, ...options.protectedFields }
  const protectedHeader = Buffer.from(JSON.stringify(header)).toString('base64url')
  const input = Buffer.from(`${protectedHeader}.${payload.toString('base64url')}`)
  const alg = options.alg ?? defaultAlg(privateKey)
  const hash = HASHES[alg] ?? 'sha256'
  const signature = privateKey.asymmetricKeyType === 'ec'
    ? sign(hash, input, { key: privateKey, dsaEncoding: 'ieee-p1363' })
    : sign(hash, input, privateKey)
  // Go marshals the header struct in field order: jwk, alg, x5c.
  const jwsHeader: JwsSignature['header'] = options.chain === undefined
    ? { jwk: options.jwk ?? libtrustJwk(privateKey), alg }
    : { alg, x5c: options.chain.map((der) => der.toString('base64')) }
  return { header: jwsHeader, signature: signature.toString('base64url'), protected: protectedHeader }
}

/** Splices signatures into the payload the way libtrust's PrettySignature does. */
export function assemble (payload: Buffer, signatures: unknown[]): Buffer {
  const { formatLength } = formatOf(payload)
  const indent = '   '
  const list = JSON.stringify(signatures, null, indent).replaceAll('\n', '\n' + indent)
  return Buffer.concat([payload.subarray(0, formatLength), Buffer.from(`,\n${indent}"signatures": ${list}\n}`)])
}

export type Signer = KeyObject | ({ key: KeyObject } & SignOptions)

/** A signed manifest: each signer adds one signature. */
export function signSchema1 (manifest: object | string, signers: Signer[]): Buffer {
  const payload = payloadOf(manifest)
  const signatures = signers.map((signer) => 'key' in signer
    ? signPayload(payload, signer.key, signer)
    : signPayload(payload, signer))
  return assemble(payload, signatures)
}

/*
 * Minimal DER writer for X.509 v3 certificates: enough for a CA and leaf chain.
 */

function der (tag: number, content: Buffer): Buffer {
  const length = content.length
  let header: Buffer
  if (length < 0x80) {
    header = Buffer.from([tag, length])
  } else {
    const bytes: number[] = []
    for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256)
    header = Buffer.from([tag, 0x80 | bytes.length, ...bytes])
  }
  return Buffer.concat([header, content])
}

const sequence = (...items: Buffer[]): Buffer => der(0x30, Buffer.concat(items))

function integer (value: Buffer): Buffer {
  // A leading zero keeps a value with its top bit set positive.
  return der(0x02, (value[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), value]) : value)
}

function oid (dotted: string): Buffer {
  const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number)
  const bytes = [first * 40 + second]
  for (const arc of rest) {
    const chunk = [arc & 0x7f]
    for (let value = arc >>> 7; value > 0; value >>>= 7) chunk.unshift((value & 0x7f) | 0x80)
    bytes.push(...chunk)
  }
  return der(0x06, Buffer.from(bytes))
}

function time (date: Date): Buffer {
  const iso = date.toISOString()
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '')
  const year = date.getUTCFullYear()
  // RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
  return year < 2050 ? der(0x17, Buffer.from(digits.slice(2) + 'Z')) : der(0x18, Buffer.from(digits + 'Z'))
}

function commonName (cn: string): Buffer {
  return sequence(der(0x31, sequence(oid('2.5.4.3'), der(0x0c, Buffer.from(cn)))))
}

function signatureAlgorithm (signingKey: KeyObject): Buffer {
  return signingKey.asymmetricKeyType === 'ec'
    ? sequence(oid('1.2.840.10045.4.3.2')) // ecdsa-with-SHA256
    : sequence(oid('1.2.840.113549.1.1.11'), der(0x05, Buffer.alloc(0))) // sha256WithRSAEncryption
}

export interface CertificateOptions {
  subject: string
  /** Defaults to the subject (self-signed). */
  issuer?: string
  publicKey: KeyObject
  /** The issuer's private key. */
  signingKey: KeyObject
  notBefore?: Date
  notAfter?: Date
  /** Marks the certificate as a CA (basicConstraints cA=true). */
  ca?: boolean
}

/** A DER-encoded X.509 v3 certificate. */
export function makeCertificate (options: CertificateOptions): Buffer {
  const notBefore = options.notBefore ?? new Date(Date.now() - 3600_000)
  const notAfter = options.notAfter ?? new Date(Date.now() + 365 * 86400_000)
  const algorithm = signatureAlgorithm(options.signingKey)
  const extensions = options.ca === true
    ? [der(0xa3, sequence(sequence(
        oid('2.5.29.19'), der(0x01, Buffer.from([0xff])), der(0x04, sequence(der(0x01, Buffer.from([0xff]))))
      )))]
    : []
  const tbs = sequence(
    der(0xa0, integer(Buffer.from([2]))),
    integer(randomBytes(8)),
    algorithm,
    commonName(options.issuer ?? options.subject),
    sequence(time(notBefore), time(notAfter)),
    commonName(options.subject),
    options.publicKey.export({ type: 'spki', format: 'der' }),
    ...extensions
  )
  const signature = sign('sha256', tbs, options.signingKey)
  return sequence(tbs, algorithm, der(0x03, Buffer.concat([Buffer.from([0]), signature])))
}
