/**
 * Digests: parsing, validation, and streaming digesters.
 * `algorithm:encoded`, with sha256 and sha512 supported for content.
 */

import { createHash, type Hash } from 'node:crypto'
import { RegistryError } from './errors.js'

export const ALGORITHM_PATTERN = '[a-z0-9]+(?:[.+_-][a-z0-9]+)*'
export const ENCODED_PATTERN = '[a-zA-Z0-9=_-]+'
export const DIGEST_PATTERN = `${ALGORITHM_PATTERN}:${ENCODED_PATTERN}`

const digestRegex = new RegExp(`^(${ALGORITHM_PATTERN}):(${ENCODED_PATTERN})$`)

/** Algorithms the registry can compute, with the length of their hex encoding. */
export const SUPPORTED_ALGORITHMS = { sha256: 64, sha512: 128 } as const
export type Algorithm = keyof typeof SUPPORTED_ALGORITHMS
export const DEFAULT_ALGORITHM: Algorithm = 'sha256'

export interface ParsedDigest {
  algorithm: Algorithm
  hex: string
  digest: string
}

export function isSupportedAlgorithm (algorithm: string): algorithm is Algorithm {
  return Object.hasOwn(SUPPORTED_ALGORITHMS, algorithm)
}

/** True when the string has the general shape of a digest (any algorithm). */
export function isDigestString (value: string): boolean {
  return digestRegex.test(value)
}

/**
 * Parses a digest the registry can verify. A malformed digest, and a well-formed one of an
 * algorithm we do not implement, are DIGEST_INVALID (400): the spec asks for 400 on an
 * unsupported algorithm, and CNCF distribution answers so.
 */
export function parseDigest (value: string): ParsedDigest {
  const match = digestRegex.exec(value)
  if (match === null) throw new RegistryError('DIGEST_INVALID', { digest: value, reason: 'malformed digest' })
  const algorithm = match[1] as string
  const hex = match[2] as string
  if (!isSupportedAlgorithm(algorithm)) {
    throw new RegistryError('DIGEST_INVALID', { digest: value, reason: `digest algorithm ${algorithm} is not supported` })
  }
  if (hex.length !== SUPPORTED_ALGORITHMS[algorithm] || !/^[a-f0-9]+$/.test(hex)) {
    throw new RegistryError('DIGEST_INVALID', { digest: value, reason: `not a lowercase hex ${algorithm} digest` })
  }
  return { algorithm, hex, digest: value }
}

/** Parses a `digest-algorithm` parameter. */
export function parseAlgorithm (value: string): Algorithm {
  if (isSupportedAlgorithm(value)) return value
  if (!new RegExp(`^${ALGORITHM_PATTERN}$`).test(value)) {
    throw new RegistryError('DIGEST_INVALID', { algorithm: value, reason: 'malformed digest algorithm' })
  }
  throw new RegistryError('DIGEST_INVALID', { algorithm: value, reason: `digest algorithm ${value} is not supported` })
}

/** Hashes bytes as they stream by. */
export class Digester {
  readonly algorithm: Algorithm
  private hash: Hash
  private bytes = 0

  constructor (algorithm: Algorithm = DEFAULT_ALGORITHM) {
    this.algorithm = algorithm
    this.hash = createHash(algorithm)
  }

  update (chunk: Uint8Array): void {
    this.hash.update(chunk)
    this.bytes += chunk.byteLength
  }

  /** Bytes hashed so far. */
  get size (): number {
    return this.bytes
  }

  /** The digest of what was hashed so far; the digester can keep going afterwards. */
  digest (): string {
    return `${this.algorithm}:${this.hash.copy().digest('hex')}`
  }
}

/** The digest of a buffer. */
export function digestOf (content: Uint8Array | string, algorithm: Algorithm = DEFAULT_ALGORITHM): string {
  return `${algorithm}:${createHash(algorithm).update(content).digest('hex')}`
}
