/**
 * Rate limits: off by default; when on, each client (user, else IP) has a budget per route
 * class, answered over it with the spec's 429 TOOMANYREQUESTS and Retry-After; with Redis,
 * replicas share the counts.
 */

import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import registry, { type RegistryPluginOptions } from '../../plugins/registry.js'
import { htpasswdFile } from '../auth/fixtures.js'
import { errorCode, urls } from '../helpers.js'
import { startRedis } from '../redis.js'

async function build (t: Test, options: Omit<RegistryPluginOptions, 'storage'>): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  await app.register(registry, { storage: { driver: 'inmemory' }, ...options })
  await app.ready()
  t.teardown(async () => { await app.close() })
  return app
}

const manifest = urls.manifest('team/app', 'latest')

t.test('off by default', async (t) => {
  const app = await build(t, {})
  for (let i = 0; i < 20; i++) {
    const answer = await app.inject({ method: 'GET', url: manifest })
    t.equal(answer.statusCode, 404)
    t.equal(answer.headers['x-ratelimit-limit'], undefined)
  }
})

t.test('per client and route class, answered with TOOMANYREQUESTS and Retry-After', async (t) => {
  const app = await build(t, { rateLimit: { enabled: true, pull: 3, push: 1, base: 0, windowSeconds: 30 } })
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ method: 'GET', url: manifest })).statusCode, 404)
  const refused = await app.inject({ method: 'GET', url: manifest })
  t.equal(refused.statusCode, 429)
  t.equal(errorCode(refused.body), 'TOOMANYREQUESTS')
  t.match(refused.json(), { errors: [{ detail: { class: 'pull', limit: 3, windowSeconds: 30 } }] })
  t.ok(Number(refused.headers['retry-after']) > 0 && Number(refused.headers['retry-after']) <= 30, 'Retry-After in seconds')
  t.equal(refused.headers['docker-distribution-api-version'], 'registry/2.0')

  t.equal((await app.inject({ method: 'GET', url: manifest, remoteAddress: '10.0.0.2' })).statusCode, 404, 'another client has its own budget')
  t.equal((await app.inject({ method: 'POST', url: urls.blobUpload('team/app') })).statusCode, 202, 'another class has its own budget')
  t.equal((await app.inject({ method: 'POST', url: urls.blobUpload('team/app') })).statusCode, 429)
  for (let i = 0; i < 10; i++) t.equal((await app.inject({ method: 'GET', url: '/v2/' })).statusCode, 200, 'a class limited to 0 is not limited')
})

t.test('the authenticated user is the client; the allow list is never limited', async (t) => {
  const path = await htpasswdFile(t, { alice: 'a', bob: 'b' })
  const app = await build(t, { auth: { mode: 'htpasswd', path }, rateLimit: { enabled: true, pull: 2, allowList: ['10.9.9.9'] } })
  const as = (user: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${user}:${user[0] ?? ''}`).toString('base64')}` })
  for (let i = 0; i < 2; i++) t.equal((await app.inject({ method: 'GET', url: manifest, headers: as('alice') })).statusCode, 404)
  t.equal((await app.inject({ method: 'GET', url: manifest, headers: as('alice') })).statusCode, 429)
  t.equal((await app.inject({ method: 'GET', url: manifest, headers: as('bob') })).statusCode, 404, 'same address, another user')
  for (let i = 0; i < 5; i++) t.equal((await app.inject({ method: 'GET', url: manifest, headers: as('alice'), remoteAddress: '10.9.9.9' })).statusCode, 404)
})

t.test('with Redis, replicas share the counts', async (t) => {
  const redis = await startRedis(t)
  const options = { cache: { redis, keyPrefix: `rl-${process.pid}:` }, rateLimit: { enabled: true, pull: 3 } }
  const first = await build(t, options)
  const second = await build(t, options)
  t.equal((await first.inject({ method: 'GET', url: manifest })).statusCode, 404)
  t.equal((await second.inject({ method: 'GET', url: manifest })).statusCode, 404)
  t.equal((await first.inject({ method: 'GET', url: manifest })).statusCode, 404)
  t.equal((await second.inject({ method: 'GET', url: manifest })).statusCode, 429, 'the fourth request, on either replica')
})
