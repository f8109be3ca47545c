/** Keys, certificates, htpasswd files and tokens made fresh for the auth tests. */

import { execFile } from 'node:child_process'
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import bcrypt from 'bcrypt'
import { SignJWT } from 'jose'
import { tempDir, type TestContext } from '../helpers.js'

const run = promisify(execFile)

export type KeyKind = 'rsa' | 'ec' | 'ed25519'

export interface KeyPair {
  privateKey: KeyObject
  publicKey: KeyObject
  publicPem: string
  privatePem: string
  alg: 'RS256' | 'ES256' | 'EdDSA'
}

export function keyPair (kind: KeyKind = 'ec'): KeyPair {
  const { privateKey, publicKey } = kind === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : kind === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519')
  return {
    privateKey,
    publicKey,
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    alg: kind === 'rsa' ? 'RS256' : kind === 'ec' ? 'ES256' : 'EdDSA'
  }
}

export interface Certificate {
  certPath: string
  keyPath: string
  certPem: string
  keyPem: string
}

/** A self-signed certificate (a CA, valid for a day) for 127.0.0.1 and localhost, made with openssl. */
export async function selfSigned (dir: string, name = 'cert', subject = '/CN=127.0.0.1'): Promise<Certificate> {
  const certPath = join(dir, `${name}.pem`)
  const keyPath = join(dir, `${name}-key.pem`)
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', subject, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyPath, '-out', certPath])
  return { certPath, keyPath, certPem: await readFile(certPath, 'utf8'), keyPem: await readFile(keyPath, 'utf8') }
}

/** A certificate signed by `ca` (not a CA itself), made with openssl. */
export async function signedBy (dir: string, ca: Certificate, name: string): Promise<Certificate> {
  const keyPath = join(dir, `${name}-key.pem`)
  const csrPath = join(dir, `${name}.csr`)
  const certPath = join(dir, `${name}.pem`)
  await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`, '-keyout', keyPath, '-out', csrPath])
  await run('openssl', ['x509', '-req', '-in', csrPath, '-CA', ca.certPath, '-CAkey', ca.keyPath, '-CAcreateserial', '-days', '1', '-out', certPath])
  return { certPath, keyPath, certPem: await readFile(certPath, 'utf8'), keyPem: await readFile(keyPath, 'utf8') }
}

/** The base64 DER of a PEM certificate, as an `x5c` entry. */
export function x5cOf (certPem: string): string {
  return certPem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '')
}

/** An htpasswd file with bcrypt entries written as `htpasswd -B` writes them (`$2y$`). */
export async function htpasswdFile (t: TestContext, users: Record<string, string>, cost = 4): Promise<string> {
  const dir = await tempDir(t, 'oci-registry-htpasswd-')
  const path = join(dir, 'htpasswd')
  await writeFile(path, await htpasswdText(users, cost))
  return path
}

export async function htpasswdText (users: Record<string, string>, cost = 4): Promise<string> {
  const lines = await Promise.all(Object.entries(users).map(async ([user, password]) =>
    `${user}:${(await bcrypt.hash(password, cost)).replace(/^\$2b\$/, '$2y$')}`))
  return lines.join('\n') + '\n'
}

export interface TokenClaims {
  iss?: string
  sub?: string
  aud?: string | string[]
  exp?: number
  nbf?: number
  iat?: number
  access?: unknown
}

/** Signs a token with `key`; claims default to a valid token for `service` from `issuer`, for 5 minutes. */
export async function signToken (key: KeyPair, claims: TokenClaims & Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const payload = { iat: now, nbf: now, exp: now + 300, ...claims }
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete (payload as Record<string, unknown>)[name]
  return await new SignJWT(payload).setProtectedHeader({ alg: key.alg, typ: 'JWT', ...header }).sign(key.privateKey)
}

export { tempDir }
