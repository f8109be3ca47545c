/**
 * The bundled token service over a real socket: GET and OAuth2 POST, htpasswd users and
 * anonymous callers, the ACL intersection, and tokens the registry's token mode accepts.
 */

import t, { type Test } from 'tap'
import { PassThrough } from 'node:stream'
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import registry from '../../plugins/registry.js'
import tokenService from '../../plugins/token.js'
import { urls, blobOf } from '../helpers.js'
import { htpasswdFile, keyPair } from '../auth/fixtures.js'
import type { AclDocument } from '../../lib/auth/acl.js'

const service = 'test-registry'
const issuer = 'test-issuer'

const acl: AclDocument = {
  groups: { dev: ['bob'] },
  rules: [
    { user: 'alice', repository: '**', actions: ['*'] },
    { user: 'alice', registry: 'catalog', actions: ['*'] },
    { group: 'dev', repository: 'team/*', actions: ['pull', 'push'] },
    { anonymous: true, repository: 'public/**', actions: ['pull'] }
  ]
}

interface Served { base: string, logs: () => string }

async function serve (t: Test, users: Record<string, string> = {}): Promise<Served & { password: string }> {
  const password = 'pw-' + randomBytes(8).toString('hex')
  const htpasswd = await htpasswdFile(t, { alice: password, bob: 'builder', ...users })
  const key = keyPair('ec')
  let log = ''
  const stream = new PassThrough()
  stream.on('data', (chunk: Buffer) => { log += chunk.toString() })
  const app = Fastify({ logger: { level: 'trace', stream } })
  await app.register(tokenService, { service, issuer, privateKey: key.privatePem, htpasswd, acl })
  await app.register(registry, { storage: { driver: 'inmemory' }, auth: { mode: 'token', realm: '/token', service, issuer, publicKeys: [key.publicPem] } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  const { port } = app.server.address() as { port: number }
  return { base: `http://127.0.0.1:${port}`, logs: () => log, password }
}

function basic (user: string, password: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` }
}

function claims (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as Record<string, unknown>
}

async function getToken (base: string, query: string, headers: Record<string, string> = {}): Promise<{ status: number, body: Record<string, unknown>, headers: Headers }> {
  const response = await fetch(`${base}/token?${query}`, { headers })
  return { status: response.status, body: await response.json() as Record<string, unknown>, headers: response.headers }
}

t.test('GET /token: the intersection of the requested scopes and the ACL', async (t) => {
  const { base, password } = await serve(t)
  const alice = await getToken(base, `service=${service}&scope=repository:a/b:pull,push,delete&scope=registry:catalog:*`, basic('alice', password))
  t.equal(alice.status, 200)
  t.equal(alice.body.token, alice.body.access_token, 'token and access_token, for old and new clients')
  t.equal(alice.body.expires_in, 300)
  t.match(alice.body.issued_at, /^\d{4}-\d\d-\d\dT/)
  t.equal(alice.headers.get('cache-control'), 'no-store')
  const aliceClaims = claims(alice.body.token as string)
  t.match(aliceClaims, { iss: issuer, aud: service, sub: 'alice' })
  t.same(aliceClaims.access, [{ type: 'repository', name: 'a/b', actions: ['pull', 'push', 'delete'] }, { type: 'registry', name: 'catalog', actions: ['*'] }])

  const bob = await getToken(base, 'scope=repository:team/app:pull,push,delete&scope=repository:teamx:pull&scope=repository:team/app/sub:pull', basic('bob', 'builder'))
  t.equal(bob.status, 200)
  t.same(claims(bob.body.token as string).access, [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }],
    'team/* gives neither teamx nor team/app/sub, and never delete')

  const anonymous = await getToken(base, 'scope=repository:public/x:pull,push&scope=repository:team/app:pull')
  t.equal(anonymous.status, 200, 'no credentials: anonymous')
  t.match(claims(anonymous.body.token as string), { sub: '', access: [{ type: 'repository', name: 'public/x', actions: ['pull'] }] })
  t.same(claims((await getToken(base, '')).body.token as string).access, [], 'no scope: a token for GET /v2/ only')
})

t.test('GET /token refusals', async (t) => {
  const { base } = await serve(t)
  const wrong = await getToken(base, 'scope=repository:a:pull', basic('alice', 'nope'))
  t.equal(wrong.status, 401, 'wrong credentials are an error, not anonymous')
  t.equal(wrong.headers.get('www-authenticate'), 'Basic realm="registry"')
  t.equal(wrong.body.error, 'invalid_grant')
  t.equal((await getToken(base, 'scope=repository:a:pull', basic('nobody', 'x'))).status, 401)
  t.equal((await getToken(base, 'scope=repository:a:pull', { authorization: 'Bearer x' })).status, 400)
  for (const scope of ['repository:a/../b:pull', 'repository:a%252Fb:pull', 'repository:A:pull', 'nonsense']) {
    const response = await getToken(base, `scope=${encodeURIComponent(scope)}`)
    t.equal(response.status, 400, scope)
    t.equal(response.body.error, 'invalid_scope', scope)
  }
  t.equal((await getToken(base, 'service=another')).status, 400, 'a token for another service')
})

t.test('POST /token (OAuth2 password grant)', async (t) => {
  const { base, password } = await serve(t)
  const form = (fields: Record<string, string>): RequestInit => ({ method: 'POST', body: new URLSearchParams(fields).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  const ok = await fetch(`${base}/token`, form({ grant_type: 'password', username: 'bob', password: 'builder', service, client_id: 'test', scope: 'repository:team/a:pull,push repository:other:pull' }))
  t.equal(ok.status, 200)
  const body = await ok.json() as Record<string, unknown>
  t.equal(body.scope, 'repository:team/a:pull,push')
  t.same(claims(body.access_token as string).access, [{ type: 'repository', name: 'team/a', actions: ['pull', 'push'] }])
  t.equal((await fetch(`${base}/token`, form({ grant_type: 'password', username: 'alice', password: 'nope', service }))).status, 401)
  const refresh = await fetch(`${base}/token`, form({ grant_type: 'refresh_token', refresh_token: 'x', service }))
  t.equal(refresh.status, 400)
  t.equal((await refresh.json() as Record<string, unknown>).error, 'unsupported_grant_type')
  t.equal((await fetch(`${base}/token`, form({ grant_type: 'password', service }))).status, 400)
  t.equal((await fetch(`${base}/token`, form({ grant_type: 'password', username: 'alice', password, service }))).status, 200)
})

t.test('a password longer than the 72 bytes bcrypt reads is refused, and says why', async (t) => {
  // bcrypt ignores bytes past 72: without the check, any password sharing the first 72 would do.
  const long = 'L'.repeat(72) + '-the-rest-of-it'
  const { base } = await serve(t, { carol: long, dave: 'd'.repeat(72) })
  const form = (username: string, password: string): RequestInit => ({ method: 'POST', body: new URLSearchParams({ grant_type: 'password', username, password, service }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  for (const attempt of [long, 'L'.repeat(72) + '-something-else']) {
    const refused = await fetch(`${base}/token`, form('carol', attempt))
    t.equal(refused.status, 401, `${attempt.slice(72)}: refused`)
    t.match(await refused.json(), { error: 'invalid_grant', error_description: /longer than 72 bytes/ })
  }
  const viaGet = await getToken(base, `service=${service}`, basic('carol', long))
  t.equal(viaGet.status, 401, 'by GET with Basic credentials too')
  t.equal((await fetch(`${base}/token`, form('dave', 'd'.repeat(72)))).status, 200, 'exactly 72 bytes is fine')
  t.equal((await fetch(`${base}/token`, form('dave', 'd'.repeat(71)))).status, 401)
})

t.test('the full flow: challenge, token request, retry', async (t) => {
  const { base, password, logs } = await serve(t)
  const { content, digest } = blobOf('layer')
  const target = urls.blobUpload('team/app', { digest })
  const first = await fetch(`${base}${target}`, { method: 'POST', body: content, headers: { 'content-type': 'application/octet-stream' } })
  t.equal(first.status, 401)
  const challenge = first.headers.get('www-authenticate') as string
  const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((match) => [match[1], match[2]]))
  t.same(params, { realm: `${base}/token`, service, scope: 'repository:team/app:pull,push' })
  const tokenUrl = new URL(params.realm as string)
  tokenUrl.searchParams.set('service', params.service as string)
  tokenUrl.searchParams.set('scope', params.scope as string)
  const issued = await fetch(tokenUrl, { headers: basic('bob', 'builder') })
  const { token } = await issued.json() as { token: string }
  const retry = await fetch(`${base}${target}`, { method: 'POST', body: content, headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${token}` } })
  t.equal(retry.status, 201)

  await fetch(`${base}/token?scope=repository:x:pull`, { headers: basic('alice', password) })
  const output = logs()
  t.match(output, /token issued/)
  t.notOk(output.includes(token), 'the token is not logged')
  t.notOk(output.includes(password), 'the password is not logged')
  t.notOk(output.includes(Buffer.from(`alice:${password}`).toString('base64')), 'the Basic credentials are not logged')
  t.notOk(output.includes(Buffer.from('bob:builder').toString('base64')))
})
