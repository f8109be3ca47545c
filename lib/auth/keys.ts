/**
 * The keys a registry trusts to sign tokens: public keys and certificates from PEM text (a
 * "root certificate bundle"), and JSON Web Key Sets. A token names its key by `kid` (a JWKS
 * key id, the key's RFC 7638 thumbprint as distribution 3 uses, or the libtrust key id that
 * distribution 2 and token servers written for it use), by an embedded `jwk`, or by an `x5c`
 * certificate chain that must lead to a trusted certificate.
 */

import { createHash, createPublicKey, X509Certificate, type JsonWebKey, type KeyObject } from 'node:crypto'
import { calculateJwkThumbprint, type JWK } from 'jose'

export interface JsonWebKeySet {
  keys: JWK[]
}

/** Unpadded RFC 4648 base32. */
function base32 (bytes: Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = 0
  let value = 0
  let out = ''
  for (const byte of bytes) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31]
  return out
}

/** The libtrust key id: SHA-256 of the DER public key, 240 bits in base32, groups of 4 joined by `:`. */
export function libtrustKeyId (key: KeyObject): string {
  const der = key.export({ type: 'spki', format: 'der' })
  const encoded = base32(createHash('sha256').update(der).digest().subarray(0, 30))
  return encoded.match(/.{1,4}/g)?.join(':') ?? encoded
}

/** The RFC 7638 JWK thumbprint (SHA-256, base64url) of a public key. */
export async function jwkThumbprint (key: KeyObject): Promise<string> {
  return await calculateJwkThumbprint(key.export({ format: 'jwk' }) as JWK)
}

/** The PEM blocks of a text, with their labels. */
function pemBlocks (text: string): Array<{ label: string, pem: string }> {
  const blocks: Array<{ label: string, pem: string }> = []
  const regex = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g
  for (const match of text.matchAll(regex)) blocks.push({ label: match[1] as string, pem: match[0] })
  return blocks
}

export class TrustedKeys {
  private constructor (
    private readonly byId: Map<string, KeyObject>,
    private readonly byThumbprint: Map<string, KeyObject>,
    readonly roots: X509Certificate[]
  ) {}

  /**
   * Builds the set from PEM texts (certificates and public keys; a private key is refused, it
   * has no business in a trust bundle) and key sets.
   */
  static async from (sources: { pem?: readonly string[], jwks?: readonly JsonWebKeySet[] }): Promise<TrustedKeys> {
    const byId = new Map<string, KeyObject>()
    const byThumbprint = new Map<string, KeyObject>()
    const roots: X509Certificate[] = []
    const add = async (key: KeyObject, kid?: string): Promise<void> => {
      if (key.type !== 'public') throw new TypeError('a trusted key must be a public key')
      const thumbprint = await jwkThumbprint(key)
      byThumbprint.set(thumbprint, key)
      byId.set(thumbprint, key)
      byId.set(libtrustKeyId(key), key)
      if (kid !== undefined) byId.set(kid, key)
    }
    for (const text of sources.pem ?? []) {
      for (const block of pemBlocks(text)) {
        if (block.label.includes('PRIVATE')) throw new TypeError('the trusted keys hold a private key; give its public key or certificate')
        if (block.label === 'CERTIFICATE') {
          const certificate = new X509Certificate(block.pem)
          roots.push(certificate)
          await add(certificate.publicKey)
        } else if (block.label === 'PUBLIC KEY') {
          await add(createPublicKey(block.pem))
        }
      }
    }
    for (const set of sources.jwks ?? []) {
      if (!Array.isArray(set?.keys)) throw new TypeError('a JWKS must be an object with a "keys" array')
      for (const jwk of set.keys) {
        if ('d' in jwk || 'k' in jwk) throw new TypeError('a trusted JWKS must hold public keys only')
        await add(createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }), jwk.kid)
      }
    }
    return new TrustedKeys(byId, byThumbprint, roots)
  }

  get size (): number {
    return this.byThumbprint.size
  }

  /**
   * The key a token's protected header points at, as distribution looks it up: an `x5c` chain
   * first, then an embedded `jwk` (trusted only when it is one of ours), then the `kid`.
   * Throws when none leads to a trusted key.
   */
  async resolve (header: { x5c?: string[], jwk?: JWK, kid?: string }, now: Date = new Date()): Promise<KeyObject> {
    if (header.x5c !== undefined) return this.verifyChain(header.x5c, now)
    if (header.jwk !== undefined) {
      const key = this.byThumbprint.get(await calculateJwkThumbprint(header.jwk))
      if (key === undefined) throw new Error('token signed by an untrusted embedded key')
      return key
    }
    if (header.kid !== undefined) {
      const key = this.byId.get(header.kid)
      if (key === undefined) throw new Error('token signed by an unknown key id')
      return key
    }
    throw new Error('token names no key (no kid, jwk or x5c)')
  }

  /**
   * Checks an `x5c` chain (leaf first): each certificate is in its validity period and signed
   * by the next, and the last is a trusted certificate or signed by one. Returns the leaf's key.
   */
  private verifyChain (x5c: readonly string[], now: Date): KeyObject {
    if (!Array.isArray(x5c) || x5c.length === 0 || x5c.length > 10) throw new Error('malformed x5c chain')
    const chain = x5c.map((der) => new X509Certificate(Buffer.from(der, 'base64')))
    const valid = (certificate: X509Certificate): boolean =>
      new Date(certificate.validFrom) <= now && now <= new Date(certificate.validTo)
    const signedBy = (child: X509Certificate, parent: X509Certificate): boolean =>
      parent.ca && child.checkIssued(parent) && child.verify(parent.publicKey)
    for (let i = 0; i < chain.length; i++) {
      const certificate = chain[i] as X509Certificate
      if (!valid(certificate)) throw new Error('a certificate of the x5c chain is expired or not yet valid')
      const parent = chain[i + 1]
      if (parent !== undefined && !signedBy(certificate, parent)) throw new Error('broken x5c chain')
    }
    const top = chain[chain.length - 1] as X509Certificate
    const trusted = this.roots.some((root) => valid(root) &&
      (root.fingerprint256 === top.fingerprint256 || signedBy(top, root)))
    if (!trusted) throw new Error('x5c chain does not lead to a trusted certificate')
    return (chain[0] as X509Certificate).publicKey
  }
}
