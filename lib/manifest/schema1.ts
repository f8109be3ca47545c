/**
 * Docker image manifest v2, schema 1: parsing and signature verification.
 *
 * A signed schema 1 manifest is a libtrust "pretty" JWS: the manifest JSON with a `signatures`
 * array spliced in before its closing brace. Each signature's protected header carries
 * `formatLength` and `formatTail`; the signed payload is the document's first `formatLength`
 * bytes followed by the decoded tail, and that payload (not the document) is the manifest's
 * canonical form and the source of its digest.
 */

import {
  constants,
  createPublicKey,
  verify as verifySignatureBytes,
  X509Certificate,
  type JsonWebKey,
  type KeyObject
} from 'node:crypto'
import { digestOf, parseDigest } from '../digest.js'
import { RegistryError } from '../errors.js'

export const SCHEMA1_SIGNED_MEDIA_TYPE = 'application/vnd.docker.distribution.manifest.v1+prettyjws'
export const SCHEMA1_MEDIA_TYPE = 'application/vnd.docker.distribution.manifest.v1+json'

export interface Schema1Manifest {
  name: string
  tag: string
  architecture: string
  /** blobSum digests, in manifest order (the base layer is last). */
  fsLayers: string[]
  /** The signed payload: the manifest without its signatures, byte for byte as signed. */
  canonical: Buffer
  /** sha256 of `canonical`, as CNCF distribution computes a schema 1 manifest's digest. */
  digest: string
  /** How many signatures were verified. */
  signatures: number
}

export interface VerifySchema1Options {
  /** The clock used for certificate validity; defaults to the current time. */
  now?: Date
}

type JsonObject = Record<string, unknown>

interface EcAlgorithm {
  kind: 'ec'
  hash: string
  /** The JWK curve name. */
  crv: string
  /** The curve name node:crypto reports for a key on this curve. */
  namedCurve: string
  /** Octets in one coordinate, and in each half of a signature. */
  octets: number
}

interface RsaAlgorithm {
  kind: 'rsa'
  hash: string
}

type SignatureAlgorithm = EcAlgorithm | RsaAlgorithm

// libtrust fixes the EC algorithm by the curve, and lets RSA keys use any of the three hashes.
const ALGORITHMS: Record<string, SignatureAlgorithm> = {
  ES256: { kind: 'ec', hash: 'sha256', crv: 'P-256', namedCurve: 'prime256v1', octets: 32 },
  ES384: { kind: 'ec', hash: 'sha384', crv: 'P-384', namedCurve: 'secp384r1', octets: 48 },
  ES512: { kind: 'ec', hash: 'sha512', crv: 'P-521', namedCurve: 'secp521r1', octets: 66 },
  RS256: { kind: 'rsa', hash: 'sha256' },
  RS384: { kind: 'rsa', hash: 'sha384' },
  RS512: { kind: 'rsa', hash: 'sha512' }
}

const EC_CURVES = new Map(
  Object.values(ALGORITHMS).flatMap((algorithm) => algorithm.kind === 'ec' ? [[algorithm.crv, algorithm] as const] : [])
)

interface ParsedSignature {
  algorithm: SignatureAlgorithm
  key: KeyObject
  signature: Buffer
  /** The protected header exactly as sent: it is part of the signing input. */
  protected: string
}

function invalid (reason: string, extra: JsonObject = {}): RegistryError {
  return new RegistryError('MANIFEST_INVALID', { ...extra, reason })
}

function unverified (reason: string, extra: JsonObject = {}): RegistryError {
  return new RegistryError('MANIFEST_UNVERIFIED', { ...extra, reason })
}

function isObject (value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

// Keeps a BOM so that it fails JSON.parse, as it fails Go's decoder.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Parses JSON bytes; undefined when they are not UTF-8 JSON. */
function parseJson (bytes: Uint8Array): unknown {
  try {
    return JSON.parse(utf8.decode(bytes))
  } catch {
    return undefined
  }
}

/**
 * Decodes unpadded (or correctly padded) base64url; undefined for anything else, because
 * Buffer.from would silently skip characters outside the alphabet.
 */
function decodeBase64Url (value: string): Buffer | undefined {
  const unpadded = value.replace(/={1,2}$/, '')
  if (!/^[A-Za-z0-9_-]*$/.test(unpadded) || unpadded.length % 4 === 1) return undefined
  if (unpadded.length !== value.length && value.length % 4 !== 0) return undefined
  return Buffer.from(unpadded, 'base64url')
}

/** Decodes padded standard base64, as x5c entries are written. */
function decodeBase64 (value: string): Buffer | undefined {
  if (value.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) return undefined
  return Buffer.from(value, 'base64')
}

function encodeBase64Url (bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url')
}

/**
 * Structural equality of two parsed JSON values; key order does not matter. Iterative, because
 * JSON.parse accepts nesting deep enough to overflow the stack of a recursive walk.
 */
function jsonEqual (left: unknown, right: unknown): boolean {
  const pending: Array<[unknown, unknown]> = [[left, right]]
  for (let pair = pending.pop(); pair !== undefined; pair = pending.pop()) {
    const [a, b] = pair
    if (a === b) continue
    if (Array.isArray(a)) {
      if (!Array.isArray(b) || a.length !== b.length) return false
      a.forEach((item, index) => pending.push([item, b[index]]))
    } else if (isObject(a) && isObject(b)) {
      const keys = Object.keys(a)
      if (keys.length !== Object.keys(b).length) return false
      for (const key of keys) {
        if (!Object.hasOwn(b, key)) return false
        pending.push([a[key], b[key]])
      }
    } else {
      return false
    }
  }
  return true
}

interface ManifestFields {
  name: string
  tag: string
  architecture: string
  fsLayers: string[]
}

/** Checks the manifest fields (the document without its signatures). */
function readFields (body: JsonObject): ManifestFields {
  if (body.schemaVersion !== 1) {
    throw invalid('schemaVersion must be 1', { schemaVersion: body.schemaVersion ?? null })
  }
  const { name, tag, architecture, fsLayers, history } = body
  if (typeof name !== 'string' || name === '') throw invalid('missing name')
  if (typeof tag !== 'string' || tag === '') throw invalid('missing tag')
  if (architecture !== undefined && typeof architecture !== 'string') throw invalid('architecture must be a string')
  if (!Array.isArray(fsLayers)) throw invalid('missing fsLayers')
  if (!Array.isArray(history)) throw invalid('missing history')
  // distribution refuses this too: docker pairs each layer with its history entry by index.
  if (history.length !== fsLayers.length) {
    throw invalid('fsLayers and history differ in length', { fsLayers: fsLayers.length, history: history.length })
  }
  const blobSums = fsLayers.map((layer: unknown, index) => {
    const blobSum = isObject(layer) ? layer.blobSum : undefined
    if (typeof blobSum !== 'string') throw invalid('fsLayers entry without a blobSum', { index })
    try {
      return parseDigest(blobSum).digest
    } catch {
      throw invalid('blobSum is not a valid digest', { index, blobSum })
    }
  })
  history.forEach((entry: unknown, index) => {
    if (!isObject(entry) || typeof entry.v1Compatibility !== 'string') {
      throw invalid('history entry without a v1Compatibility string', { index })
    }
  })
  return { name, tag, architecture: architecture ?? '', fsLayers: blobSums }
}

function keyFromJwk (jwk: unknown, index: number): KeyObject {
  if (!isObject(jwk)) throw unverified('jwk is not an object', { signature: index })
  // A JWK carrying a private part was never meant to be published; libtrust refuses it too.
  if (jwk.d !== undefined) throw unverified('jwk contains private key material', { signature: index })
  let key: JsonWebKey
  if (jwk.kty === 'EC') {
    const { crv, x, y } = jwk
    const curve = typeof crv === 'string' ? EC_CURVES.get(crv) : undefined
    if (curve === undefined) throw unverified('unsupported EC curve', { signature: index, crv: crv ?? null })
    for (const coordinate of [x, y]) {
      // libtrust requires full-length coordinates; a short one would be a different encoding of the key.
      if (typeof coordinate !== 'string' || decodeBase64Url(coordinate)?.length !== curve.octets) {
        throw unverified('malformed EC jwk coordinate', { signature: index })
      }
    }
    key = { kty: 'EC', crv: curve.crv, x: x as string, y: y as string }
  } else if (jwk.kty === 'RSA') {
    const { n, e } = jwk
    if (typeof n !== 'string' || typeof e !== 'string' || !decodeBase64Url(n)?.length || !decodeBase64Url(e)?.length) {
      throw unverified('malformed RSA jwk', { signature: index })
    }
    key = { kty: 'RSA', n, e }
  } else {
    throw unverified('unsupported jwk key type', { signature: index, kty: jwk.kty ?? null })
  }
  try {
    // kid is ignored: it is a fingerprint of the key, not something the signature depends on.
    return createPublicKey({ key, format: 'jwk' })
  } catch {
    throw unverified('jwk is not a valid public key', { signature: index })
  }
}

function keyFromChain (chain: unknown, index: number, now: Date): KeyObject {
  if (!Array.isArray(chain) || chain.length === 0) throw unverified('x5c is not a certificate chain', { signature: index })
  const certificates = chain.map((entry: unknown, position) => {
    const der = typeof entry === 'string' ? decodeBase64(entry) : undefined
    try {
      if (der === undefined) throw new Error('not base64')
      return new X509Certificate(der)
    } catch {
      throw unverified('x5c entry is not a certificate', { signature: index, certificate: position })
    }
  })
  const leaf = certificates[0] as X509Certificate
  const validFrom = Date.parse(leaf.validFrom)
  const validTo = Date.parse(leaf.validTo)
  // An unreadable date fails closed: NaN would make both comparisons false.
  if (Number.isNaN(validFrom) || Number.isNaN(validTo) || now.getTime() < validFrom || now.getTime() > validTo) {
    throw unverified('signing certificate is expired or not yet valid', {
      signature: index, validFrom: leaf.validFrom, validTo: leaf.validTo
    })
  }
  // Without trust anchors this only proves the chain is internally consistent.
  for (let position = 0; position + 1 < certificates.length; position++) {
    const subject = certificates[position] as X509Certificate
    const issuer = certificates[position + 1] as X509Certificate
    if (!issuer.ca || !subject.checkIssued(issuer) || !subject.verify(issuer.publicKey)) {
      throw unverified('certificate is not signed by the next one in the chain', { signature: index, certificate: position })
    }
  }
  return leaf.publicKey
}

/** Refuses a key that cannot produce signatures of this algorithm. */
function checkKeyFits (key: KeyObject, algorithm: SignatureAlgorithm, alg: string, index: number): void {
  const fits = algorithm.kind === 'ec'
    ? key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === algorithm.namedCurve
    : key.asymmetricKeyType === 'rsa'
  if (!fits) throw unverified(`key does not match alg ${alg}`, { signature: index })
}

interface ParsedSignatures {
  signatures: ParsedSignature[]
  formatLength: number
  formatTail: Buffer
}

function parseSignatures (value: unknown, documentLength: number, now: Date): ParsedSignatures {
  if (value === undefined) throw unverified('manifest is not signed')
  if (!Array.isArray(value)) throw unverified('signatures is not an array')
  if (value.length === 0) throw unverified('manifest has no signatures')
  let format: { length: number, tail: Buffer } | undefined
  const signatures = value.map((entry: unknown, index): ParsedSignature => {
    if (!isObject(entry) || !isObject(entry.header)) throw unverified('malformed signature', { signature: index })
    const { header, signature, protected: protectedHeader } = entry
    if (typeof signature !== 'string' || typeof protectedHeader !== 'string') {
      throw unverified('malformed signature', { signature: index })
    }

    const decoded = decodeBase64Url(protectedHeader)
    const parsed = decoded === undefined ? undefined : parseJson(decoded)
    if (!isObject(parsed)) throw unverified('malformed protected header', { signature: index })
    const { formatLength, formatTail } = parsed
    const tail = typeof formatTail === 'string' ? decodeBase64Url(formatTail) : undefined
    if (typeof formatLength !== 'number' || !Number.isSafeInteger(formatLength) || formatLength < 0 ||
      formatLength > documentLength || tail === undefined) {
      throw unverified('malformed protected header', { signature: index })
    }
    // Every signature must cover the same payload; libtrust refuses conflicting formats as well.
    if (format === undefined) {
      format = { length: formatLength, tail }
    } else if (format.length !== formatLength || !format.tail.equals(tail)) {
      throw unverified('signatures disagree on the signed payload', { signature: index })
    }

    const alg = header.alg
    const algorithm = typeof alg === 'string' && Object.hasOwn(ALGORITHMS, alg) ? ALGORITHMS[alg] : undefined
    if (algorithm === undefined) throw unverified('unsupported signature algorithm', { signature: index, alg: alg ?? null })

    const hasChain = header.x5c !== undefined
    const hasJwk = header.jwk !== undefined
    // libtrust writes one or the other; with both, which key signed would be ambiguous.
    if (hasChain === hasJwk) throw unverified('signature header needs exactly one of jwk and x5c', { signature: index })
    const key = hasChain ? keyFromChain(header.x5c, index, now) : keyFromJwk(header.jwk, index)
    checkKeyFits(key, algorithm, alg as string, index)

    const signatureBytes = decodeBase64Url(signature)
    if (signatureBytes === undefined) throw unverified('signature is not base64url', { signature: index })
    return { algorithm, key, signature: signatureBytes, protected: protectedHeader }
  })
  const { length, tail } = format as { length: number, tail: Buffer }
  return { signatures, formatLength: length, formatTail: tail }
}

function signatureVerifies (parsed: ParsedSignature, payload: Buffer): boolean {
  const input = Buffer.from(`${parsed.protected}.${encodeBase64Url(payload)}`, 'ascii')
  const { algorithm, key, signature } = parsed
  try {
    if (algorithm.kind === 'ec') {
      // JWS ECDSA signatures are r || s, each the curve's full octet length.
      if (signature.length !== 2 * algorithm.octets) return false
      return verifySignatureBytes(algorithm.hash, input, { key, dsaEncoding: 'ieee-p1363' }, signature)
    }
    return verifySignatureBytes(algorithm.hash, input, { key, padding: constants.RSA_PKCS1_PADDING }, signature)
  } catch {
    return false
  }
}

/**
 * Parses a signed schema 1 manifest and verifies every signature on it. Structural problems are
 * MANIFEST_INVALID; anything wrong with the signatures, or a signed payload that is not exactly
 * the rest of the document, is MANIFEST_UNVERIFIED.
 */
export function verifySchema1 (bytes: Buffer, options: VerifySchema1Options = {}): Schema1Manifest {
  const document = parseJson(bytes)
  if (!isObject(document)) throw invalid('manifest is not a JSON object')
  const { signatures: signatureList, ...body } = document
  const fields = readFields(body)

  const { signatures, formatLength, formatTail } = parseSignatures(signatureList, bytes.length, options.now ?? new Date())
  const canonical = Buffer.concat([bytes.subarray(0, formatLength), formatTail])
  // The signatures only cover the payload; refusing any difference from the document keeps a
  // reader of the document from seeing fields nobody signed (e.g. a second fsLayers key).
  if (!jsonEqual(parseJson(canonical), body)) throw unverified('signed payload differs from the manifest')

  signatures.forEach((signature, index) => {
    if (!signatureVerifies(signature, canonical)) throw unverified('signature does not verify', { signature: index })
  })

  return { ...fields, canonical, digest: digestOf(canonical), signatures: signatures.length }
}
