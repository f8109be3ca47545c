/**
 * The checks that need system packages (`.ci/run` installs them): the shared cache on a real
 * redis-server, htpasswd files written by apache2-utils' htpasswd, and token key chains of
 * certificates made with openssl. Kept out of `npm test` so that it needs nothing but Node.
 */

import t from 'tap'
import { execFile } from 'node:child_process'
import { createPrivateKey, createPublicKey } from 'node:crypto'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { calculateJwkThumbprint, exportJWK } from 'jose'
import { StorageUnavailableError } from '../../lib/storage/driver.js'
import { RegistryCache } from '../../lib/storage/cache.js'
import { RedisStore } from '../../lib/storage/redis-store.js'
import { bcryptCost, isBcryptHash, PasswordVerifier } from '../../lib/auth/password.js'
import { HtpasswdFile } from '../../lib/auth/htpasswd.js'
import { TrustedKeys } from '../../lib/auth/keys.js'
import { InvalidTokenError, TokenVerifier } from '../../lib/auth/token.js'
import { keyPair, selfSigned, signedBy, signToken, tempDir, x5cOf, type KeyPair } from '../auth/fixtures.js'
import { startRedis } from '../redis.js'

const run = promisify(execFile)

async function kidOf (key: KeyPair): Promise<string> {
  return await calculateJwkThumbprint(await exportJWK(key.publicKey))
}

t.test('a shared Redis cache: fills, tombstones, and what happens when Redis is gone', async (t) => {
  const url = await startRedis(t)
  const store = new RedisStore(url, 'test:')
  const cache = new RegistryCache({ shared: store, ttlSeconds: 60 })
  t.teardown(() => cache.close())
  let storage: string | undefined = 'sha256:one'
  let loads = 0
  const load = async (): Promise<string | undefined> => { loads++; return storage }

  t.equal(await cache.lookup('tag:r:t', load), 'sha256:one')
  t.equal(await cache.lookup('tag:r:t', load), 'sha256:one')
  t.equal(loads, 1, 'the second lookup is answered by Redis')
  t.ok(await store.redis.ttl('test:tag:r:t') > 0, 'entries expire')

  await cache.invalidate('tag:r:t')
  storage = 'sha256:two'
  t.equal(await cache.lookup('tag:r:t', load), 'sha256:two', 'after an invalidation the lookup reads storage')
  t.equal(await store.redis.get('test:tag:r:t'), '~', 'and the tombstone stays: no fill during the write window')
  // A replica that read storage before the write, filling afterwards, cannot put the old value back.
  await store.fill('tag:r:t', 'sha256:one', 60)
  t.equal(await cache.lookup('tag:r:t', load), 'sha256:two', 'a late fill is refused')

  storage = undefined
  t.equal(await cache.lookup('tag:r:missing', load), undefined)
  t.equal(await store.redis.exists('test:tag:r:missing'), 0, 'absence is never cached')

  store.redis.disconnect()
  storage = 'sha256:three'
  const before = loads
  t.equal(await cache.lookup('tag:r:t', load), 'sha256:three', 'with Redis gone, lookups read storage')
  t.equal(loads, before + 1)
  await t.rejects(cache.invalidate('tag:r:t'), StorageUnavailableError, 'and a write that cannot invalidate fails (UNAVAILABLE)')
})

t.test('blob data removed in one process is forgotten by every process listening on Redis', async (t) => {
  const url = await startRedis(t)
  const remover = new RegistryCache({ shared: new RedisStore(url, 'removals:'), blobFreshnessMs: 60_000 })
  const other = new RegistryCache({ shared: new RedisStore(url, 'removals:'), blobFreshnessMs: 60_000 })
  t.teardown(async () => { await remover.close(); await other.close() })
  await other.listenForRemovals()
  let loads = 0
  const load = async (): Promise<string> => { loads++; return '42' }
  await other.blobSize('sha256:gone', load)
  await other.blobSize('sha256:kept', load)
  t.equal(loads, 2)
  await remover.blobsRemoved(['sha256:gone'])
  // The announcement arrives over Redis: wait for the other process to ask storage again.
  const deadline = Date.now() + 5000
  for (let asked = false; !asked && Date.now() < deadline;) {
    await other.blobSize('sha256:gone', load)
    asked = loads > 2
    if (!asked) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.equal(loads, 3, 'the removed blob is asked of storage again, long before its freshness ends')
  await other.blobSize('sha256:kept', load)
  t.equal(loads, 3, 'other blobs stay known')
})

t.test('the native check runs off the event loop and reads htpasswd -B hashes', async (t) => {
  const { stdout } = await run('htpasswd', ['-nbB', '-C', '12', 'alice', 's3cret'])
  const hash = stdout.trim().split(':')[1] as string
  t.match(hash, /^\$2y\$12\$/, 'htpasswd -B writes $2y$')
  t.ok(isBcryptHash(hash))
  t.equal(bcryptCost(hash), 12)
  const verifier = new PasswordVerifier()
  let turns = 0
  let done = false
  const spin = (): void => {
    if (done) return
    turns++
    setImmediate(spin)
  }
  setImmediate(spin)
  const ok = await verifier.verify('alice', 's3cret', hash)
  done = true
  t.equal(ok, true)
  // A check on the event loop would return before any setImmediate callback ran.
  t.ok(turns > 1, `the event loop kept turning during the check (${turns} turns)`)
  t.equal(await new PasswordVerifier().verify('alice', 'S3cret', hash), false)
})

t.test('a real htpasswd -B file', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'htpasswd')
  await run('htpasswd', ['-cbB', path, 'alice', 'wonderland'])
  await run('htpasswd', ['-bB', path, 'bob', 'builder'])
  const file = new HtpasswdFile(path)
  await file.load()
  t.equal(await file.verify({ username: 'alice', password: 'wonderland' }), true)
  t.equal(await file.verify({ username: 'bob', password: 'builder' }), true)
  t.equal(await file.verify({ username: 'bob', password: 'wonderland' }), false)
  t.same(await file.users(), ['alice', 'bob'])
})

t.test('token keys: x5c chains to a trusted certificate', async (t) => {
  const issuer = 'test-issuer'
  const service = 'test-registry'
  const access = [{ type: 'repository', name: 'foo/bar', actions: ['pull', 'push'] }]
  const key = keyPair('ec')
  const claims = { iss: issuer, aud: service, sub: 'alice', access }
  const dir = await tempDir(t)
  const ca = await selfSigned(dir, 'ca', '/CN=token-ca')
  const leaf = await signedBy(dir, ca, 'signer')
  const leafKey: KeyPair = { ...key, privateKey: createPrivateKey(leaf.keyPem), publicKey: createPublicKey(leaf.certPem), alg: 'ES256' }
  const chained = new TokenVerifier({ issuer, service, keys: await TrustedKeys.from({ pem: [ca.certPem] }) })
  t.equal((await chained.verify(await signToken(leafKey, claims, { x5c: [x5cOf(leaf.certPem)] }))).subject, 'alice', 'x5c: a leaf signed by the trusted CA')
  const caKey: KeyPair = { ...key, privateKey: createPrivateKey(ca.keyPem), publicKey: createPublicKey(ca.certPem), alg: 'ES256' }
  t.equal((await chained.verify(await signToken(caKey, claims, { x5c: [x5cOf(ca.certPem)] }))).subject, 'alice', 'x5c: the trusted certificate itself')
  t.equal((await chained.verify(await signToken(caKey, claims, { kid: await kidOf(caKey) }))).subject, 'alice', 'the bundle certificate by thumbprint')
  const rogue = await selfSigned(dir, 'rogue', '/CN=token-ca')
  const rogueKey: KeyPair = { ...key, privateKey: createPrivateKey(rogue.keyPem), publicKey: createPublicKey(rogue.certPem), alg: 'ES256' }
  await t.rejects(chained.verify(await signToken(rogueKey, claims, { x5c: [x5cOf(rogue.certPem)] })), InvalidTokenError, 'x5c: a look-alike self-signed certificate')
  const rogueLeaf = await signedBy(dir, rogue, 'rogue-signer')
  const rogueLeafKey: KeyPair = { ...key, privateKey: createPrivateKey(rogueLeaf.keyPem), publicKey: createPublicKey(rogueLeaf.certPem), alg: 'ES256' }
  await t.rejects(chained.verify(await signToken(rogueLeafKey, claims, { x5c: [x5cOf(rogueLeaf.certPem), x5cOf(rogue.certPem)] })), InvalidTokenError, 'x5c: a chain to an untrusted root')
  await t.rejects(chained.verify(await signToken(key, claims, { x5c: [x5cOf(leaf.certPem)] })), InvalidTokenError, 'x5c: a trusted chain but another signing key')
})
