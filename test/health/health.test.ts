/**
 * Liveness and readiness: off by default; when on, readiness follows the storage and Redis
 * checks with their threshold of consecutive failures, API requests go on while a dependency is
 * unhealthy (unless `failRequests`), and readiness fails once the server starts closing.
 */

import t, { type Test } from 'tap'
import Fastify from 'fastify'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import registry, { type RegistryPluginOptions } from '../../plugins/registry.js'
import { InMemoryDriver } from '../../lib/storage/drivers/inmemory.js'
import { StorageUnavailableError } from '../../lib/storage/driver.js'
import { HealthChecks } from '../../lib/health/checks.js'
import { errorCode } from '../helpers.js'
import { freePort } from '../ports.js'
import { startRedis } from '../redis.js'

/** An in-memory driver whose listing fails while `failing` is set: storage gone away. */
class FlakyDriver extends InMemoryDriver {
  failing = false
  override async list (path: string): Promise<string[]> {
    if (this.failing) throw new StorageUnavailableError(this.name, path, 'connection refused')
    return await super.list(path)
  }
}

/** Checks that only run when the test asks (an hour apart). */
const manual = { intervalSeconds: 3600, threshold: 2 }

async function build (t: Test, options: Omit<RegistryPluginOptions, 'storage'> = {}, driver = new FlakyDriver()) {
  const app = Fastify({ logger: false })
  await app.register(registry, { storage: driver, ...options })
  await app.ready()
  t.teardown(async () => { await app.close() })
  return { app, driver }
}

t.test('off by default', async (t) => {
  const { app } = await build(t)
  t.equal((await app.inject({ method: 'GET', url: '/livez' })).statusCode, 404)
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 404)
  t.equal(app.ociRegistryOperations.health, undefined)
})

t.test('readiness follows storage with a threshold of consecutive failures; the API goes on', async (t) => {
  const { app, driver } = await build(t, { health: { enabled: true, storagedriver: manual } })
  const checks = app.ociRegistryOperations.health as HealthChecks
  t.same((await app.inject({ method: 'GET', url: '/livez' })).json(), { live: true })
  const ready = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 200)
  t.match(ready.json(), { ready: true, checks: { storagedriver_inmemory: { healthy: true, consecutiveFailures: 0 } } })
  t.same(checks.debugHealth(), { statusCode: 200, body: {} }, 'distribution\'s /debug/health: {} when healthy')

  driver.failing = true
  await checks.runAll()
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200, 'one failure is below the threshold')
  await checks.runAll()
  const unready = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(unready.statusCode, 503)
  t.match(unready.json(), { ready: false, checks: { storagedriver_inmemory: { healthy: false, consecutiveFailures: 2, lastError: /connection refused/ } } })
  t.match(checks.debugHealth(), { statusCode: 503, body: { storagedriver_inmemory: /connection refused/ } })
  t.equal((await app.inject({ method: 'GET', url: '/v2/' })).statusCode, 200, 'the API still answers: pulls that can work, work')
  t.equal((await app.inject({ method: 'GET', url: '/livez' })).statusCode, 200, 'still live')

  driver.failing = false
  await checks.runAll()
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200, 'one success makes it healthy again')
})

t.test('failRequests: every API request answers 503 UNAVAILABLE while unhealthy, as distribution does', async (t) => {
  const { app, driver } = await build(t, { health: { enabled: true, storagedriver: { ...manual, threshold: 1 }, failRequests: true, livePath: '/health/live', readyPath: '/health/ready' } })
  t.equal((await app.inject({ method: 'GET', url: '/v2/' })).statusCode, 200)
  driver.failing = true
  await app.ociRegistryOperations.health?.runAll()
  const refused = await app.inject({ method: 'GET', url: '/v2/' })
  t.equal(refused.statusCode, 503)
  t.equal(errorCode(refused.body), 'UNAVAILABLE')
  t.equal(refused.headers['retry-after'], '5')
  t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 503, 'paths as configured')
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200, 'liveness is not an API request')
})

t.test('the storage check can be turned off, and readiness fails while the server closes', async (t) => {
  const { app, driver } = await build(t, { health: { enabled: true, storagedriver: { enabled: false } } })
  driver.failing = true
  await app.ociRegistryOperations.health?.runAll()
  t.match((await app.inject({ method: 'GET', url: '/readyz' })).json(), { ready: true, checks: {} })
  const checks = new HealthChecks([])
  checks.drain()
  t.equal(checks.readiness().statusCode, 503, 'a draining server is not ready')
})

t.test('Redis: checked when the cache has one', async (t) => {
  const url = await startRedis(t)
  const { app } = await build(t, { cache: { redis: url }, health: { enabled: true, redis: manual, storagedriver: manual } })
  t.match((await app.inject({ method: 'GET', url: '/readyz' })).json(), { ready: true, checks: { redis: { healthy: true } } })

  const closedPort = await freePort()
  const { app: away } = await build(t, { cache: { redis: `redis://127.0.0.1:${closedPort}` }, health: { enabled: true, redis: { intervalSeconds: 3600, threshold: 1 }, storagedriver: manual } })
  const answer = await away.inject({ method: 'GET', url: '/readyz' })
  t.equal(answer.statusCode, 503, 'an unreachable Redis fails readiness')
  t.match(answer.json(), { checks: { redis: { healthy: false }, storagedriver_inmemory: { healthy: true } } })
})

t.test('distribution\'s file, HTTP and TCP checks: named by path, URI and address, unhealthy at the first failure', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'oci-health-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const outOfRotation = join(dir, 'out-of-rotation')
  let status = 200
  let seenHeaders: http.IncomingHttpHeaders = {}
  const service = http.createServer((request, response) => {
    seenHeaders = request.headers
    response.writeHead(request.method === 'HEAD' ? status : 405).end()
  })
  await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { service.close() })
  const uri = `http://127.0.0.1:${(service.address() as AddressInfo).port}/healthz`
  const listener = net.createServer((socket) => { socket.destroy() })
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve))
  const address = `127.0.0.1:${(listener.address() as AddressInfo).port}`

  const { app } = await build(t, {
    health: {
      enabled: true,
      storagedriver: { enabled: false },
      file: [{ path: outOfRotation, intervalSeconds: 3600 }],
      http: [{ uri, headers: { Authorization: ['Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=='] }, statusCode: 200, timeoutSeconds: 5, intervalSeconds: 3600 }],
      tcp: [{ address, timeoutSeconds: 5, intervalSeconds: 3600 }]
    }
  })
  const checks = app.ociRegistryOperations.health as HealthChecks
  t.same(checks.debugHealth(), { statusCode: 200, body: {} }, 'all healthy at start')
  t.equal(seenHeaders.authorization, 'Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==', 'the HTTP check sends its headers')

  await writeFile(outOfRotation, '')
  status = 503
  await new Promise<void>((resolve) => listener.close(() => { resolve() }))
  await checks.runAll()
  t.same(checks.debugHealth(), {
    statusCode: 503,
    body: {
      [outOfRotation]: 'file exists',
      [uri]: 'downstream service returned unexpected status: 503',
      [address]: checks.failures()[address]
    }
  }, 'each fails at its first failure (distribution\'s default threshold)')
  t.match(checks.failures()[address], /^connection to 127\.0\.0\.1:[0-9]+ failed: /)
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 503, 'readiness fails')

  await rm(outOfRotation)
  status = 200
  await checks.runAll()
  t.same(Object.keys(checks.failures()), [address], 'the file and HTTP checks pass again; the TCP service is still gone')
})
