import { sign, type KeyObject } from 'node:crypto'
import t, { type Test } from 'tap'
import { digestOf } from '../../../lib/digest.js'
import { RegistryError } from '../../../lib/errors.js'
import {
  SCHEMA1_MEDIA_TYPE,
  SCHEMA1_SIGNED_MEDIA_TYPE,
  verifySchema1,
  type VerifySchema1Options
} from '../../../lib/manifest/schema1.js'
import {
  assemble,
  ecKey,
  libtrustJwk,
  makeCertificate,
  payloadOf,
  rsaKey,
  sampleManifest,
  signPayload,
  signSchema1,
  type JwsSignature
} from './schema1-fixtures.js'

const p256 = ecKey('P-256')
const otherP256 = ecKey('P-256')
const rsa = rsaKey(2048)

function refused (t: Test, bytes: Buffer, code: string, reason?: RegExp, options?: VerifySchema1Options): void {
  let caught: unknown
  try {
    verifySchema1(bytes, options)
  } catch (error) {
    caught = error
  }
  if (!(caught instanceof RegistryError)) {
    t.fail('refused with a RegistryError', { caught })
    return
  }
  t.equal(caught.code, code, 'error code')
  if (reason !== undefined) t.match((caught.detail as { reason: string }).reason, reason, 'reason')
}

/** Signs sampleManifest() and lets a test alter the signature entries before assembly. */
function signedWith (alter: (signatures: JwsSignature[]) => unknown[], key: KeyObject = p256.privateKey): Buffer {
  const payload = payloadOf(sampleManifest())
  return assemble(payload, alter([signPayload(payload, key)]))
}

t.test('media types', async (t) => {
  t.equal(SCHEMA1_SIGNED_MEDIA_TYPE, 'application/vnd.docker.distribution.manifest.v1+prettyjws')
  t.equal(SCHEMA1_MEDIA_TYPE, 'application/vnd.docker.distribution.manifest.v1+json')
})

t.test('an EC P-256 signed manifest verifies', async (t) => {
  const body = sampleManifest()
  const bytes = signSchema1(body, [p256.privateKey])
  const manifest = verifySchema1(bytes)
  const payload = payloadOf(body)
  t.same(manifest.canonical, payload, 'canonical bytes are the signed payload')
  t.equal(manifest.digest, digestOf(payload))
  t.not(manifest.digest, digestOf(bytes), 'the digest is not that of the document')
  t.equal(manifest.name, 'library/sample')
  t.equal(manifest.tag, 'latest')
  t.same(manifest.fsLayers, body.fsLayers.map((layer) => layer.blobSum))
  t.equal(manifest.signatures, 1)
  t.equal(JSON.parse(bytes.toString()).signatures[0].header.alg, 'ES256')
})

t.test('EC P-384 and P-521 signed manifests verify', async (t) => {
  for (const curve of ['P-384', 'P-521'] as const) {
    const bytes = signSchema1(sampleManifest(), [ecKey(curve).privateKey])
    t.equal(verifySchema1(bytes).signatures, 1, curve)
  }
})

t.test('an RSA signed manifest verifies', async (t) => {
  const body = sampleManifest({ tag: 'rsa' })
  const manifest = verifySchema1(signSchema1(body, [rsa.privateKey]))
  t.same(manifest.canonical, payloadOf(body))
  t.equal(manifest.digest, digestOf(payloadOf(body)))
  t.equal(manifest.tag, 'rsa')
  for (const alg of ['RS384', 'RS512']) {
    t.equal(verifySchema1(signSchema1(body, [{ key: rsa.privateKey, alg }])).signatures, 1, alg)
  }
})

t.test('two signatures are both verified', async (t) => {
  const body = sampleManifest()
  const bytes = signSchema1(body, [p256.privateKey, rsa.privateKey])
  const manifest = verifySchema1(bytes)
  t.equal(manifest.signatures, 2)
  t.equal(manifest.digest, digestOf(payloadOf(body)))

  // The second signature broken: the first one verifying is not enough.
  const payload = payloadOf(body)
  const good = signPayload(payload, p256.privateKey)
  const bad = signPayload(payload, rsa.privateKey)
  bad.signature = good.signature
  refused(t, assemble(payload, [good, bad]), 'MANIFEST_UNVERIFIED', /does not verify/)
})

t.test('the jwk kid is not used for verification', async (t) => {
  const bytes = signedWith(([signature]) => {
    if (signature.header.jwk !== undefined) signature.header.jwk.kid = 'AAAA:BBBB'
    return [signature]
  })
  t.equal(verifySchema1(bytes).signatures, 1)
})

t.test('a tampered payload is refused', async (t) => {
  for (const key of [p256.privateKey, rsa.privateKey]) {
    const bytes = signSchema1(sampleManifest(), [key]).toString()
    refused(t, Buffer.from(bytes.replace('"tag": "latest"', '"tag": "lAtest"')), 'MANIFEST_UNVERIFIED', /does not verify/)
    // A change of length also moves the end of the signed payload.
    refused(t, Buffer.from(bytes.replace('"tag": "latest"', '"tag": "evil"')), 'MANIFEST_UNVERIFIED')
  }
})

t.test('a tampered signature is refused', async (t) => {
  for (const key of [p256.privateKey, rsa.privateKey]) {
    const bytes = signedWith(([signature]) => {
      const raw = Buffer.from(signature.signature, 'base64url')
      raw[5] = (raw[5] ?? 0) ^ 0x01
      return [{ ...signature, signature: raw.toString('base64url') }]
    }, key)
    refused(t, bytes, 'MANIFEST_UNVERIFIED', /does not verify/)
    const truncated = signSchema1(sampleManifest(), [key]).toString().replace(/"signature": "(.)/, '"signature": "')
    refused(t, Buffer.from(truncated), 'MANIFEST_UNVERIFIED')
  }
})

t.test('a signature by another key than the one announced is refused', async (t) => {
  const bytes = signSchema1(sampleManifest(), [{ key: p256.privateKey, jwk: libtrustJwk(otherP256.publicKey) }])
  refused(t, bytes, 'MANIFEST_UNVERIFIED', /does not verify/)
  const rsaBytes = signSchema1(sampleManifest(), [{ key: rsa.privateKey, jwk: libtrustJwk(rsaKey(1024).publicKey) }])
  refused(t, rsaBytes, 'MANIFEST_UNVERIFIED', /does not verify/)
})

t.test('unsupported or mismatched algorithms are refused', async (t) => {
  for (const alg of ['none', 'HS256', 'PS256', '', 'es256']) {
    refused(t, signedWith(([signature]) => [{ ...signature, header: { ...signature.header, alg } }]),
      'MANIFEST_UNVERIFIED', /unsupported signature algorithm/)
  }
  refused(t, signedWith(([signature]) => {
    const header = { ...signature.header }
    delete (header as { alg?: string }).alg
    return [{ ...signature, header }]
  }), 'MANIFEST_UNVERIFIED', /unsupported signature algorithm/)
  // libtrust ties an EC key to one algorithm, and RSA keys to RS*.
  refused(t, signSchema1(sampleManifest(), [{ key: p256.privateKey, alg: 'ES384' }]), 'MANIFEST_UNVERIFIED', /does not match alg/)
  refused(t, signSchema1(sampleManifest(), [{ key: rsa.privateKey, alg: 'ES256' }]), 'MANIFEST_UNVERIFIED', /does not match alg/)
  refused(t, signSchema1(sampleManifest(), [{ key: p256.privateKey, alg: 'RS256' }]), 'MANIFEST_UNVERIFIED', /does not match alg/)
})

t.test('an ECDSA signature in DER rather than JWS (r || s) form is refused', async (t) => {
  const payload = payloadOf(sampleManifest())
  const signature = signPayload(payload, p256.privateKey)
  const input = Buffer.from(`${signature.protected}.${payload.toString('base64url')}`)
  signature.signature = sign('sha256', input, p256.privateKey).toString('base64url')
  refused(t, assemble(payload, [signature]), 'MANIFEST_UNVERIFIED', /does not verify/)
})

t.test('unsigned or missing signatures are refused', async (t) => {
  const unsigned = payloadOf(sampleManifest())
  refused(t, unsigned, 'MANIFEST_UNVERIFIED', /not signed/)
  refused(t, signedWith(() => []), 'MANIFEST_UNVERIFIED', /no signatures/)
  refused(t, Buffer.from(unsigned.toString().replace(/\n}$/, ',\n   "signatures": {}\n}')), 'MANIFEST_UNVERIFIED', /not an array/)
  refused(t, Buffer.from(unsigned.toString().replace(/\n}$/, ',\n   "signatures": null\n}')), 'MANIFEST_UNVERIFIED')
  refused(t, signedWith(() => ['nope']), 'MANIFEST_UNVERIFIED', /malformed signature/)
  refused(t, signedWith(([signature]) => [{ ...signature, header: undefined }]), 'MANIFEST_UNVERIFIED', /malformed signature/)
  refused(t, signedWith(([signature]) => [{ ...signature, signature: 42 }]), 'MANIFEST_UNVERIFIED', /malformed signature/)
  refused(t, signedWith(([signature]) => [{ ...signature, signature: 'not base64url!' }]), 'MANIFEST_UNVERIFIED', /base64url/)
})

t.test('a malformed protected header is refused', async (t) => {
  const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  const variants: unknown[] = [
    undefined,
    '',
    'not base64!',
    Buffer.from('not json').toString('base64url'),
    encode([1, 2]),
    encode({ formatTail: 'Cn0' }),
    encode({ formatLength: '10', formatTail: 'Cn0' }),
    encode({ formatLength: 1.5, formatTail: 'Cn0' }),
    encode({ formatLength: -1, formatTail: 'Cn0' }),
    encode({ formatLength: 10_000_000, formatTail: 'Cn0' }),
    encode({ formatLength: 10 }),
    encode({ formatLength: 10, formatTail: 'C' })
  ]
  for (const protectedHeader of variants) {
    refused(t, signedWith(([signature]) => [{ ...signature, protected: protectedHeader }]), 'MANIFEST_UNVERIFIED')
  }
})

t.test('a protected header pointing at another payload is refused', async (t) => {
  // A validly signed header whose formatLength cuts the payload short.
  const body = sampleManifest()
  const payload = payloadOf(body)
  const bytes = signSchema1(body, [{ key: p256.privateKey, protectedFields: { formatLength: 10 } }])
  refused(t, bytes, 'MANIFEST_UNVERIFIED', /payload differs/)

  // Two signatures that disagree on the payload's format.
  const one = signPayload(payload, p256.privateKey)
  const two = signPayload(payload, rsa.privateKey, { protectedFields: { formatTail: Buffer.from('\n }').toString('base64url') } })
  refused(t, assemble(payload, [one, two]), 'MANIFEST_UNVERIFIED', /disagree/)
})

t.test('fields outside the signed payload are refused', async (t) => {
  const bytes = signSchema1(sampleManifest(), [p256.privateKey])
  const trailing = bytes.toString().replace(/\n}$/, ',\n   "tag": "evil"\n}')
  refused(t, Buffer.from(trailing), 'MANIFEST_UNVERIFIED', /payload differs/)
  const extra = bytes.toString().replace(/\n}$/, ',\n   "extra": true\n}')
  refused(t, Buffer.from(extra), 'MANIFEST_UNVERIFIED', /payload differs/)
})

t.test('deeply nested fields are compared without overflowing the stack', async (t) => {
  const bytes = signSchema1(sampleManifest(), [p256.privateKey]).toString()
  const deep = '['.repeat(200_000) + ']'.repeat(200_000)
  refused(t, Buffer.from(bytes.replace(/\n}$/, `,\n   "extra": ${deep}\n}`)), 'MANIFEST_UNVERIFIED', /payload differs/)
  const signedDeep = signSchema1(payloadOf(sampleManifest()).toString().replace(/\n}$/, `,\n   "extra": ${deep}\n}`), [p256.privateKey])
  t.equal(verifySchema1(signedDeep).signatures, 1)
})

t.test('malformed keys are refused', async (t) => {
  const jwk = libtrustJwk(p256.publicKey)
  const privateJwk = p256.privateKey.export({ format: 'jwk' })
  const withJwk = (value: unknown): Buffer => signedWith(([signature]) => [{ ...signature, header: { ...signature.header, jwk: value } }])
  refused(t, withJwk('key'), 'MANIFEST_UNVERIFIED', /not an object/)
  refused(t, withJwk({ ...jwk, kty: 'oct' }), 'MANIFEST_UNVERIFIED', /unsupported jwk key type/)
  refused(t, withJwk({ ...jwk, crv: 'secp256k1' }), 'MANIFEST_UNVERIFIED', /unsupported EC curve/)
  refused(t, withJwk({ ...jwk, x: jwk.x?.slice(1) }), 'MANIFEST_UNVERIFIED', /coordinate/)
  refused(t, withJwk({ ...jwk, y: 'A'.repeat(43) }), 'MANIFEST_UNVERIFIED', /not a valid public key/)
  refused(t, withJwk({ ...jwk, d: privateJwk.d }), 'MANIFEST_UNVERIFIED', /private key material/)
  refused(t, withJwk({ kty: 'RSA', n: 'AQAB' }), 'MANIFEST_UNVERIFIED', /malformed RSA jwk/)
  refused(t, signedWith(([signature]) => [{ ...signature, header: { alg: 'ES256' } }]), 'MANIFEST_UNVERIFIED', /exactly one of jwk and x5c/)
})

t.test('x5c certificate chains', async (t) => {
  const ca = ecKey('P-256')
  const leaf = rsaKey(2048)
  const caCert = makeCertificate({ subject: 'test CA', publicKey: ca.publicKey, signingKey: ca.privateKey, ca: true })
  const leafCert = makeCertificate({ subject: 'signer', issuer: 'test CA', publicKey: leaf.publicKey, signingKey: ca.privateKey })
  const body = sampleManifest()

  t.test('a leaf signed by the next certificate verifies', async (t) => {
    const bytes = signSchema1(body, [{ key: leaf.privateKey, chain: [leafCert, caCert] }])
    t.notOk(JSON.parse(bytes.toString()).signatures[0].header.jwk, 'no jwk is sent')
    const manifest = verifySchema1(bytes)
    t.equal(manifest.digest, digestOf(payloadOf(body)))
    t.equal(manifest.signatures, 1)
  })

  t.test('a self-signed EC certificate verifies, alongside a jwk signature', async (t) => {
    const self = makeCertificate({ subject: 'self', publicKey: p256.publicKey, signingKey: p256.privateKey })
    const bytes = signSchema1(body, [{ key: p256.privateKey, chain: [self] }, rsa.privateKey])
    t.equal(verifySchema1(bytes).signatures, 2)
  })

  t.test('an expired or not yet valid leaf is refused', async (t) => {
    const bytes = signSchema1(body, [{ key: leaf.privateKey, chain: [leafCert, caCert] }])
    refused(t, bytes, 'MANIFEST_UNVERIFIED', /expired/, { now: new Date(Date.now() + 2 * 365 * 86400_000) })
    refused(t, bytes, 'MANIFEST_UNVERIFIED', /not yet valid/, { now: new Date(Date.now() - 86400_000) })
    const expired = makeCertificate({
      subject: 'signer',
      issuer: 'test CA',
      publicKey: leaf.publicKey,
      signingKey: ca.privateKey,
      notBefore: new Date('2015-01-01T00:00:00Z'),
      notAfter: new Date('2016-01-01T00:00:00Z')
    })
    refused(t, signSchema1(body, [{ key: leaf.privateKey, chain: [expired, caCert] }]), 'MANIFEST_UNVERIFIED', /expired/)
  })

  t.test('a chain that does not link up is refused', async (t) => {
    const stranger = ecKey('P-256')
    const strangerCert = makeCertificate({ subject: 'test CA', publicKey: stranger.publicKey, signingKey: stranger.privateKey, ca: true })
    refused(t, signSchema1(body, [{ key: leaf.privateKey, chain: [leafCert, strangerCert] }]),
      'MANIFEST_UNVERIFIED', /not signed by the next one/)
    const notCa = makeCertificate({ subject: 'test CA', publicKey: ca.publicKey, signingKey: ca.privateKey })
    refused(t, signSchema1(body, [{ key: leaf.privateKey, chain: [leafCert, notCa] }]),
      'MANIFEST_UNVERIFIED', /not signed by the next one/)
    const otherIssuerName = makeCertificate({ subject: 'signer', issuer: 'another CA', publicKey: leaf.publicKey, signingKey: ca.privateKey })
    refused(t, signSchema1(body, [{ key: leaf.privateKey, chain: [otherIssuerName, caCert] }]),
      'MANIFEST_UNVERIFIED', /not signed by the next one/)
  })

  t.test('a signature by another key than the leaf\'s is refused', async (t) => {
    refused(t, signSchema1(body, [{ key: rsa.privateKey, chain: [leafCert, caCert] }]), 'MANIFEST_UNVERIFIED', /does not verify/)
  })

  t.test('malformed chains are refused', async (t) => {
    const withChain = (x5c: unknown): Buffer => signedWith(([signature]) => [{ ...signature, header: { alg: 'ES256', x5c } }])
    refused(t, withChain([]), 'MANIFEST_UNVERIFIED', /not a certificate chain/)
    refused(t, withChain('MIIB'), 'MANIFEST_UNVERIFIED', /not a certificate chain/)
    refused(t, withChain(['not base64!']), 'MANIFEST_UNVERIFIED', /not a certificate/)
    refused(t, withChain([Buffer.from('garbage').toString('base64')]), 'MANIFEST_UNVERIFIED', /not a certificate/)
    refused(t, withChain([' ' + leafCert.toString('base64')]), 'MANIFEST_UNVERIFIED', /not a certificate/)
    const both = signedWith(([signature]) => [{ ...signature, header: { ...signature.header, x5c: [caCert.toString('base64')] } }])
    refused(t, both, 'MANIFEST_UNVERIFIED', /exactly one of jwk and x5c/)
  })
})

t.test('documents that are not schema 1 manifests are invalid', async (t) => {
  refused(t, Buffer.from('{"schemaVersion": 1,'), 'MANIFEST_INVALID', /not a JSON object/)
  refused(t, Buffer.from('not json'), 'MANIFEST_INVALID', /not a JSON object/)
  refused(t, Buffer.from('[]'), 'MANIFEST_INVALID', /not a JSON object/)
  refused(t, Buffer.from([0x7b, 0xff, 0x7d]), 'MANIFEST_INVALID', /not a JSON object/)
  refused(t, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), signSchema1(sampleManifest(), [p256.privateKey])]),
    'MANIFEST_INVALID', /not a JSON object/)
  for (const schemaVersion of [2, '1', undefined]) {
    refused(t, signSchema1(sampleManifest({ schemaVersion: schemaVersion as number }), [p256.privateKey]),
      'MANIFEST_INVALID', /schemaVersion/)
  }
})

t.test('manifests with missing or malformed fields are invalid', async (t) => {
  const cases: Array<[string, object, RegExp]> = [
    ['no name', { name: undefined }, /missing name/],
    ['empty name', { name: '' }, /missing name/],
    ['no tag', { tag: undefined }, /missing tag/],
    ['numeric tag', { tag: 1 }, /missing tag/],
    ['no fsLayers', { fsLayers: undefined }, /missing fsLayers/],
    ['no history', { history: undefined }, /missing history/],
    ['architecture not a string', { architecture: 64 }, /architecture/],
    ['fewer history entries than layers', { history: [{ v1Compatibility: '{}' }] }, /differ in length/],
    ['layer without blobSum', { fsLayers: [{}, { blobSum: 'sha256:' + 'a'.repeat(64) }] }, /without a blobSum/],
    ['malformed blobSum', { fsLayers: [{ blobSum: 'sha256:xyz' }, { blobSum: 'sha256:' + 'a'.repeat(64) }] }, /not a valid digest/],
    ['tarsum blobSum', { fsLayers: [{ blobSum: 'tarsum.v1+sha256:' + 'a'.repeat(64) }, { blobSum: 'sha256:' + 'a'.repeat(64) }] }, /not a valid digest/],
    ['history entry without v1Compatibility', { history: [{}, { v1Compatibility: '{}' }] }, /v1Compatibility/]
  ]
  for (const [name, overrides, reason] of cases) {
    t.test(name, async (t) => {
      refused(t, signSchema1({ ...sampleManifest(), ...overrides }, [p256.privateKey]), 'MANIFEST_INVALID', reason)
    })
  }
})

t.test('a manifest without architecture or layers still verifies', async (t) => {
  const body: Record<string, unknown> = { ...sampleManifest(), fsLayers: [], history: [] }
  delete body.architecture
  const manifest = verifySchema1(signSchema1(body, [p256.privateKey]))
  t.equal(manifest.architecture, '')
  t.same(manifest.fsLayers, [])
})
