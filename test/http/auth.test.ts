/**
 * Access control over real sockets: htpasswd Basic auth and Bearer tokens, the challenges,
 * what a token grants and what it does not, and that a refused request changes nothing.
 */

import t, { type Test } from 'tap'
import http from 'node:http'
import { readdir, writeFile, rename } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { PassThrough } from 'node:stream'
import { randomBytes } from 'node:crypto'
import { calculateJwkThumbprint, exportJWK } from 'jose'
import Fastify from 'fastify'
import registry, { type RegistryOptions } from '../../plugins/registry.js'
import { urls, blobOf, errorCode, tempDir } from '../helpers.js'
import { htpasswdFile, htpasswdText, keyPair, signToken, type KeyPair } from '../auth/fixtures.js'
import { digestOf } from '../../lib/digest.js'

const octet = { 'content-type': 'application/octet-stream' }
const issuer = 'test-issuer'
const service = 'test-registry'

interface Served {
  base: string
  root: string
  logs: () => string
}

/** A registry on a real socket with filesystem storage and a captured JSON log at trace level. */
async function serve (t: Test, options: RegistryOptions): Promise<Served> {
  const root = await tempDir(t)
  let log = ''
  const stream = new PassThrough()
  stream.on('data', (chunk: Buffer) => { log += chunk.toString() })
  const app = Fastify({ logger: { level: 'trace', stream } })
  await app.register(registry, { ...options, storage: { driver: 'filesystem', root } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  const address = app.server.address() as { port: number }
  return { base: `http://127.0.0.1:${address.port}`, root, logs: () => log }
}

/** Every file under the storage root, so a refused request can be shown to change nothing. */
async function files (root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true })
  return entries.filter((entry) => entry.isFile()).map((entry) => relative(root, join(entry.parentPath, entry.name))).sort()
}

function basic (user: string, password: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` }
}

function bearer (token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` }
}

/** A request with the path sent exactly as given (fetch would normalize `..`). */
async function raw (base: string, method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number, headers: http.IncomingHttpHeaders, body: string }> {
  const { port } = new URL(base)
  return await new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, method, path, headers }, (response) => {
      let body = ''
      response.setEncoding('utf8').on('data', (chunk: string) => { body += chunk })
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }))
    })
    request.on('error', reject)
    request.end()
  })
}

t.test('htpasswd: Basic challenge, wrong and right passwords, unknown users', async (t) => {
  const path = await htpasswdFile(t, { alice: 'wonderland' })
  const { base } = await serve(t, { auth: { mode: 'htpasswd', path, realm: 'Test Realm' } })

  const none = await fetch(`${base}/v2/`)
  t.equal(none.status, 401)
  t.equal(none.headers.get('www-authenticate'), 'Basic realm="Test Realm"')
  t.equal(none.headers.get('docker-distribution-api-version'), 'registry/2.0')
  t.equal(errorCode(await none.text()), 'UNAUTHORIZED')

  const wrong = await fetch(`${base}/v2/`, { headers: basic('alice', 'Wonderland') })
  t.equal(wrong.status, 401)
  t.equal(wrong.headers.get('www-authenticate'), 'Basic realm="Test Realm"')
  t.equal((await fetch(`${base}/v2/`, { headers: basic('mallory', 'wonderland') })).status, 401, 'an unknown user')
  t.equal((await fetch(`${base}/v2/`, { headers: bearer('abc') })).status, 401, 'a bearer token is not Basic credentials')

  t.equal((await fetch(`${base}/v2/`, { headers: basic('alice', 'wonderland') })).status, 200)
  const pull = await fetch(`${base}${urls.manifest('any/repo', 'latest')}`, { headers: basic('alice', 'wonderland') })
  t.equal(pull.status, 404, 'an authenticated user reaches the handler')
  t.match(errorCode(await pull.text()), /^(NAME|MANIFEST)_UNKNOWN$/)
  const { content, digest } = blobOf('hello')
  const push = await fetch(`${base}${urls.blobUpload('any/repo', { digest })}`, { method: 'POST', body: content, headers: { ...octet, ...basic('alice', 'wonderland') } })
  t.equal(push.status, 201, 'and may push anywhere, as with distribution\'s htpasswd')
  const detail = await fetch(`${base}${urls.manifest('x', 'latest')}`)
  t.same(JSON.parse(await detail.text()).errors[0].detail, [{ Type: 'repository', Name: 'x', Action: 'pull' }], 'the detail lists the access needed, as distribution writes it')
})

t.test('htpasswd: a password longer than the 72 bytes bcrypt reads is refused', async (t) => {
  // Two bytes each: 37 of them make 74 bytes, past what bcrypt reads, though only 37 characters.
  const long = 'é'.repeat(37)
  const path = await htpasswdFile(t, { alice: long, bob: 'é'.repeat(36) })
  const { base, logs } = await serve(t, { auth: { mode: 'htpasswd', path } })
  t.equal((await fetch(`${base}/v2/`, { headers: basic('alice', long) })).status, 401, 'the very password of the file')
  t.equal((await fetch(`${base}/v2/`, { headers: basic('alice', 'é'.repeat(36) + 'x') })).status, 401, 'nor one sharing its first 72 bytes')
  t.match(logs(), /longer than 72 bytes/, 'the log says why')
  t.equal((await fetch(`${base}/v2/`, { headers: basic('bob', 'é'.repeat(36)) })).status, 200, '72 bytes is fine')
})

t.test('htpasswd: the file is read again when it changes', async (t) => {
  const path = await htpasswdFile(t, { alice: 'one' })
  const { base } = await serve(t, { auth: { mode: 'htpasswd', path } })
  t.equal((await fetch(`${base}/v2/`, { headers: basic('alice', 'one') })).status, 200)
  await writeFile(`${path}.new`, await htpasswdText({ alice: 'two', bob: 'three' }))
  await rename(`${path}.new`, path)
  t.equal((await fetch(`${base}/v2/`, { headers: basic('alice', 'one') })).status, 401, 'the old password is refused (even though it was remembered)')
  t.equal((await fetch(`${base}/v2/`, { headers: basic('alice', 'two') })).status, 200)
  t.equal((await fetch(`${base}/v2/`, { headers: basic('bob', 'three') })).status, 200)
})

t.test('htpasswd: a refused push changes nothing and its body is not read', async (t) => {
  const path = await htpasswdFile(t, { alice: 'wonderland' })
  const { base, root } = await serve(t, { auth: { mode: 'htpasswd', path } })
  const before = await files(root)
  const { content, digest } = blobOf(randomBytes(64 * 1024))
  const monolithic = await fetch(`${base}${urls.blobUpload('a/b', { digest })}`, { method: 'POST', body: content, headers: { ...octet, ...basic('alice', 'nope') } })
  t.equal(monolithic.status, 401)
  t.equal(monolithic.headers.get('connection'), 'close', 'the unread body is not kept on a live connection')
  t.equal((await fetch(`${base}${urls.blobUpload('a/b')}`, { method: 'POST' })).status, 401)
  t.same(await files(root), before, 'no upload, no blob, no link')

  const started = await fetch(`${base}${urls.blobUpload('a/b')}`, { method: 'POST', headers: basic('alice', 'wonderland') })
  t.equal(started.status, 202)
  const location = started.headers.get('location') as string
  const snapshot = await files(root)
  const patch = await fetch(location, { method: 'PATCH', body: content, headers: octet })
  t.equal(patch.status, 401)
  t.same(await files(root), snapshot)
  const status = await fetch(location, { headers: basic('alice', 'wonderland') })
  t.equal(status.headers.get('range'), '0-0', 'the upload received nothing')
  const manifest = await fetch(`${base}${urls.manifest('a/b', 'v1')}`, { method: 'PUT', body: '{}', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } })
  t.equal(manifest.status, 401)
  t.same(await files(root), snapshot, 'no tag')
})

t.test('names outside the grammar are refused before any check', async (t) => {
  const path = await htpasswdFile(t, { alice: 'wonderland' })
  const { base } = await serve(t, { auth: { mode: 'htpasswd', path } })
  for (const path of ['/v2/foo/../bar/tags/list', '/v2/foo%2Fbar/tags/list', '/v2/foo%2fbar/manifests/latest', '/v2/../v2/foo/tags/list', '/v2/Foo/tags/list']) {
    const response = await raw(base, 'GET', path, basic('alice', 'wonderland'))
    t.equal(response.status, 400, path)
    t.equal(errorCode(response.body), 'NAME_INVALID', path)
    const anonymous = await raw(base, 'GET', path)
    t.equal(anonymous.status, 400, `${path} without credentials: no challenge either`)
    t.equal(anonymous.headers['www-authenticate'], undefined)
  }
})

t.test('credentials and tokens are never logged', async (t) => {
  const password = 'pw-' + randomBytes(8).toString('hex')
  const path = await htpasswdFile(t, { alice: password })
  const { base, logs } = await serve(t, { auth: { mode: 'htpasswd', path } })
  const header = basic('alice', password)
  await fetch(`${base}/v2/`, { headers: header })
  await fetch(`${base}${urls.manifest('a/b', 'latest')}`, { headers: header })
  await fetch(`${base}/v2/`, { headers: basic('alice', `${password}x`) })
  const key = keyPair('ec')
  const token = await signToken(key, { iss: issuer, aud: service, access: [] })
  const tokenServer = await serve(t, { auth: { mode: 'token', realm: 'https://auth.example/token', service, issuer: 'other', publicKeys: [key.publicPem] } })
  await fetch(`${tokenServer.base}/v2/`, { headers: bearer(token) })
  const output = logs() + tokenServer.logs()
  t.match(logs(), /"user":"alice"/, 'the user name is logged')
  t.match(tokenServer.logs(), /access refused/, 'the refused token is logged')
  for (const secret of [password, (header.authorization as string).slice(6), Buffer.from(`alice:${password}`).toString('base64'), token, ...token.split('.').slice(1)]) {
    t.notOk(output.includes(secret), `the log does not contain ${secret.slice(0, 12)}...`)
  }
  t.notOk(/authorization/i.test(output), 'no Authorization header in the log')
})

async function tokenServer (t: Test, key: KeyPair, options: Partial<RegistryOptions> = {}): Promise<Served & { token: (access: unknown, claims?: Record<string, unknown>) => Promise<string> }> {
  const served = await serve(t, { ...options, auth: { mode: 'token', realm: '/token', service, issuer, publicKeys: [key.publicPem] } })
  const kid = await calculateJwkThumbprint(await exportJWK(key.publicKey))
  return { ...served, token: async (access, claims = {}) => await signToken(key, { iss: issuer, aud: service, sub: 'alice', access, ...claims }, { kid }) }
}

t.test('token: challenges name the realm, the service and the scope needed', async (t) => {
  const key = keyPair('ec')
  const { base } = await tokenServer(t, key)
  const baseRoute = await fetch(`${base}/v2/`)
  t.equal(baseRoute.status, 401)
  t.equal(baseRoute.headers.get('www-authenticate'), `Bearer realm="${base}/token",service="${service}"`, 'a realm path is resolved against the request')
  const pull = await fetch(`${base}${urls.manifest('foo/bar', 'latest')}`)
  t.equal(pull.headers.get('www-authenticate'), `Bearer realm="${base}/token",service="${service}",scope="repository:foo/bar:pull"`)
  const push = await fetch(`${base}${urls.blobUpload('foo/bar')}`, { method: 'POST' })
  t.equal(push.headers.get('www-authenticate'), `Bearer realm="${base}/token",service="${service}",scope="repository:foo/bar:pull,push"`)
  const del = await fetch(`${base}${urls.manifest('foo/bar', 'latest')}`, { method: 'DELETE' })
  t.equal(del.headers.get('www-authenticate'), `Bearer realm="${base}/token",service="${service}",scope="repository:foo/bar:delete"`)
  const catalog = await fetch(`${base}${urls.catalog()}`)
  t.equal(catalog.headers.get('www-authenticate'), `Bearer realm="${base}/token",service="${service}",scope="registry:catalog:*"`)
  const mount = await fetch(`${base}${urls.blobUpload('foo/bar', { mount: digestOf('x'), from: 'other/repo' })}`, { method: 'POST' })
  t.equal(mount.headers.get('www-authenticate'), `Bearer realm="${base}/token",service="${service}",scope="repository:foo/bar:pull,push repository:other/repo:pull"`,
    'a mount also asks for pull on its source')
  const invalid = await fetch(`${base}/v2/`, { headers: bearer('a.b.c') })
  t.equal(invalid.status, 401)
  t.equal(invalid.headers.get('www-authenticate'), `Bearer realm="${base}/token",service="${service}",error="invalid_token"`)
  const external = await serve(t, { auth: { mode: 'token', realm: 'https://auth.example/token', service, issuer, publicKeys: [key.publicPem] } })
  t.equal((await fetch(`${external.base}/v2/`)).headers.get('www-authenticate'), `Bearer realm="https://auth.example/token",service="${service}"`)
})

t.test('token: a valid token lacking access answers 401 insufficient_scope; a token for one repository never grants another', async (t) => {
  const key = keyPair('rsa')
  const { base, token } = await tokenServer(t, key)
  const pullFoo = await token([{ type: 'repository', name: 'foo', actions: ['pull'] }])
  t.equal((await fetch(`${base}/v2/`, { headers: bearer(pullFoo) })).status, 200)
  const get = await fetch(`${base}${urls.manifest('foo', 'latest')}`, { headers: bearer(pullFoo) })
  t.equal(get.status, 404, 'pull on foo reaches the handler')
  for (const name of ['foobar', 'foo/bar', 'fo', 'other']) {
    const response = await fetch(`${base}${urls.manifest(name, 'latest')}`, { headers: bearer(pullFoo) })
    t.equal(response.status, 401, `not ${name}`)
    t.equal(response.headers.get('www-authenticate'), `Bearer realm="${base}/token",service="${service}",scope="repository:${name}:pull",error="insufficient_scope"`)
    t.equal(errorCode(await response.text()), 'UNAUTHORIZED')
  }
  const push = await fetch(`${base}${urls.blobUpload('foo')}`, { method: 'POST', headers: bearer(pullFoo) })
  t.equal(push.status, 401)
  t.match(push.headers.get('www-authenticate'), /scope="repository:foo:pull,push",error="insufficient_scope"/)
  t.equal((await fetch(`${base}${urls.catalog()}`, { headers: bearer(pullFoo) })).status, 401)
  const catalog = await token([{ type: 'registry', name: 'catalog', actions: ['*'] }])
  t.equal((await fetch(`${base}${urls.catalog()}`, { headers: bearer(catalog) })).status, 200)
  const globby = await token([{ type: 'repository', name: 'foo/*', actions: ['*'] }])
  t.equal((await fetch(`${base}${urls.manifest('foo/bar', 'latest')}`, { headers: bearer(globby) })).status, 401, 'a name in a token is not a glob')
  const expired = await token([{ type: 'repository', name: 'foo', actions: ['pull'] }], { exp: Math.floor(Date.now() / 1000) - 3600 })
  const refused = await fetch(`${base}${urls.manifest('foo', 'latest')}`, { headers: bearer(expired) })
  t.equal(refused.status, 401)
  t.match(refused.headers.get('www-authenticate'), /error="invalid_token"/)
})

t.test('token: a push without push access changes nothing; with it, it works', async (t) => {
  const key = keyPair('ed25519')
  const { base, root, token } = await tokenServer(t, key)
  const pullOnly = await token([{ type: 'repository', name: 'app', actions: ['pull'] }])
  const pushOther = await token([{ type: 'repository', name: 'other', actions: ['pull', 'push'] }])
  const before = await files(root)
  const { content, digest } = blobOf(randomBytes(32 * 1024))
  for (const credentials of [pullOnly, pushOther]) {
    t.equal((await fetch(`${base}${urls.blobUpload('app', { digest })}`, { method: 'POST', body: content, headers: { ...octet, ...bearer(credentials) } })).status, 401)
    t.equal((await fetch(`${base}${urls.blobUpload('app')}`, { method: 'POST', headers: bearer(credentials) })).status, 401)
    t.equal((await fetch(`${base}${urls.manifest('app', 'v1')}`, { method: 'PUT', body: '{}', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json', ...bearer(credentials) } })).status, 401)
  }
  t.same(await files(root), before, 'no upload, link or tag')
  const push = await token([{ type: 'repository', name: 'app', actions: ['pull', 'push'] }])
  t.equal((await fetch(`${base}${urls.blobUpload('app', { digest })}`, { method: 'POST', body: content, headers: { ...octet, ...bearer(push) } })).status, 201)
  t.equal((await fetch(`${base}${urls.blob('app', digest)}`, { headers: bearer(pullOnly) })).status, 200)
  t.equal((await fetch(`${base}${urls.blob('app', digest)}`, { method: 'DELETE', headers: bearer(push) })).status, 401, 'delete needs delete')
})

t.test('token: a mount needs pull on its source, else it is a plain upload', async (t) => {
  const key = keyPair('ec')
  const { base, token } = await tokenServer(t, key, { mountWithoutFrom: true })
  const { content, digest } = blobOf('shared layer')
  const writer = await token([{ type: 'repository', name: 'private', actions: ['pull', 'push'] }])
  t.equal((await fetch(`${base}${urls.blobUpload('private', { digest })}`, { method: 'POST', body: content, headers: { ...octet, ...bearer(writer) } })).status, 201)

  const thief = await token([{ type: 'repository', name: 'mine', actions: ['pull', 'push'] }])
  const stolen = await fetch(`${base}${urls.blobUpload('mine', { mount: digest, from: 'private' })}`, { method: 'POST', headers: bearer(thief) })
  t.equal(stolen.status, 202, 'no pull on the source: a plain upload starts instead')
  t.equal((await fetch(`${base}${urls.blob('mine', digest)}`, { method: 'HEAD', headers: bearer(thief) })).status, 404, 'the blob was not linked')
  const anywhere = await fetch(`${base}${urls.blobUpload('mine', { mount: digest })}`, { method: 'POST', headers: bearer(thief) })
  t.equal(anywhere.status, 202, 'a mount from anywhere needs pull on everything, which a token never grants')
  t.equal((await fetch(`${base}${urls.blob('mine', digest)}`, { method: 'HEAD', headers: bearer(thief) })).status, 404)

  const both = await token([{ type: 'repository', name: 'mine', actions: ['pull', 'push'] }, { type: 'repository', name: 'private', actions: ['pull'] }])
  const mounted = await fetch(`${base}${urls.blobUpload('mine', { mount: digest, from: 'private' })}`, { method: 'POST', headers: bearer(both) })
  t.equal(mounted.status, 201, 'with pull on the source the blob is mounted')
  t.equal((await fetch(`${base}${urls.blob('mine', digest)}`, { method: 'HEAD', headers: bearer(both) })).status, 200)
})

t.test('token: the caller is in the request context', async (t) => {
  const key = keyPair('ec')
  const root = await tempDir(t)
  const app = Fastify({ logger: false })
  await app.register(async (scope) => {
    await scope.register(registry, { storage: { driver: 'filesystem', root }, auth: { mode: 'token', realm: '/token', service, issuer, publicKeys: [key.publicPem] } })
  })
  const seen: Array<{ user: string | undefined, pull: boolean, push: boolean }> = []
  app.addHook('onResponse', async (request) => {
    if (request.ociContext !== undefined && request.ociContext !== null) {
      seen.push({ user: request.ociContext.user, pull: request.ociContext.access.allows('repository', 'foo', 'pull'), push: request.ociContext.access.allows('repository', 'foo', 'push') })
    }
  })
  await app.ready()
  t.teardown(async () => { await app.close() })
  const kid = await calculateJwkThumbprint(await exportJWK(key.publicKey))
  const token = await signToken(key, { iss: issuer, aud: service, sub: 'carol', access: [{ type: 'repository', name: 'foo', actions: ['pull'] }] }, { kid })
  const response = await app.inject({ method: 'GET', url: urls.tags('foo'), headers: bearer(token) })
  t.equal(response.statusCode, 404)
  t.same(seen, [{ user: 'carol', pull: true, push: false }])
})

t.test('options: a token mode without keys fails at start', async (t) => {
  const app = Fastify({ logger: false })
  await t.rejects(async () => {
    await app.register(registry, { auth: { mode: 'token', realm: '/token', service, issuer } })
    await app.ready()
  }, /at least one signing key/)
  await app.close()
  const quoted = Fastify({ logger: false })
  await t.rejects(async () => {
    await quoted.register(registry, { auth: { mode: 'htpasswd', path: '/nonexistent', realm: 'a"b' } })
    await quoted.ready()
  }, /invalid fastify-oci-registry options/)
  await quoted.close()
})
