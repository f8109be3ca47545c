/**
 * Prometheus metrics: off by default; when on, requests are counted and timed by route name,
 * storage actions by driver and action, cache lookups, bytes pushed and pulled, uploads in
 * progress, auth failures by reason, GC and scrub runs from their events, and figures other
 * modules register.
 */

import t, { type Test } from 'tap'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import registry from '../../plugins/registry.js'
import { build, prepareImage, pushBlob, putManifest, urls } from '../helpers.js'
import { htpasswdFile } from '../auth/fixtures.js'
import { topWithRest } from '../../lib/metrics/metrics.js'
import type { GcReport, ScrubReport } from '../../lib/lifecycle/reports.js'

/** The value of one series of the exposition, or undefined when it is absent. */
function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null || match[1] !== name) continue
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((pair) => [pair[1], pair[2]]))
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[3])
  }
  return undefined
}

async function scrape (t: Test, app: FastifyInstance, path = '/metrics'): Promise<string> {
  const response = await app.inject({ method: 'GET', url: path })
  t.equal(response.statusCode, 200, 'the exposition is served')
  t.match(response.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  return response.body
}

t.test('off by default: no path, nothing exposed to the host', async (t) => {
  const app = await build(t, 'inmemory')
  t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 404)
  t.equal(app.ociRegistryOperations.metrics, undefined)
})

t.test('requests by route name, method and code; bytes pushed and pulled; storage actions; caches', async (t) => {
  const app = await build(t, 'inmemory', { metrics: { enabled: true } })
  const image = await prepareImage(app, 'team/app', { layers: 1 })
  t.equal((await putManifest(app, 'team/app', 'v1', image.manifest)).statusCode, 201)
  const layer = image.layers[0] as string
  const pulled = await app.inject({ method: 'GET', url: urls.blob('team/app', layer) })
  t.equal(pulled.statusCode, 200)
  await app.inject({ method: 'HEAD', url: urls.blob('team/app', layer) })
  await app.inject({ method: 'GET', url: urls.manifest('team/app', image.digest) })
  await app.inject({ method: 'GET', url: urls.manifest('team/app', image.digest) })
  await app.inject({ method: 'GET', url: '/v2/no/such/endpoint/here' })
  const text = await scrape(t, app)

  t.equal(sample(text, 'registry_http_requests_total', { handler: 'blob-upload', method: 'POST', code: '201' }), 2, 'two monolithic pushes')
  t.equal(sample(text, 'registry_http_requests_total', { handler: 'blob', method: 'GET', code: '200' }), 1)
  t.equal(sample(text, 'registry_http_requests_total', { handler: 'blob', method: 'HEAD', code: '200' }), 1)
  t.equal(sample(text, 'registry_http_requests_total', { handler: 'manifest', method: 'PUT', code: '201' }), 1)
  t.equal(sample(text, 'registry_http_requests_total', { handler: 'unmatched', method: 'GET', code: '404' }), 1, 'a path of no route is one series, whatever it is')
  t.equal(sample(text, 'registry_http_request_duration_seconds_count', { handler: 'blob', method: 'GET' }), 1)
  t.equal(sample(text, 'registry_http_response_size_bytes_sum', { handler: 'blob' }), pulled.rawPayload.length, 'HEAD answers no body')
  t.equal(sample(text, 'registry_http_request_size_bytes_sum', { handler: 'manifest' }), image.manifest.length)
  t.equal(sample(text, 'registry_http_in_flight_requests', { handler: 'blob' }), 0, 'nothing left in flight')
  t.equal(sample(text, 'registry_bytes_pulled_total', { kind: 'blob' }), pulled.rawPayload.length)
  t.equal(sample(text, 'registry_bytes_pulled_total', { kind: 'manifest' }), 2 * image.manifest.length)
  t.ok((sample(text, 'registry_bytes_pushed_total', { kind: 'blob' }) ?? 0) > 0)
  t.equal(sample(text, 'registry_bytes_pushed_total', { kind: 'manifest' }), image.manifest.length)
  t.ok((sample(text, 'registry_storage_action_seconds_count', { driver: 'inmemory', action: 'put_content' }) ?? 0) > 0, 'storage actions timed per driver and action')
  t.ok((sample(text, 'registry_storage_cache_total', { type: 'Hit', cache: 'manifest' }) ?? 0) >= 1, 'the second manifest read hits the cache')
  t.ok((sample(text, 'registry_storage_cache_total', { type: 'Request', cache: 'manifest' }) ?? 0) >= 2)
  t.ok(text.includes('process_cpu_user_seconds_total'), 'Node process metrics by default')
})

t.test('uploads in progress, and requests in flight, go back to zero when the client goes away', async (t) => {
  const app = Fastify({ logger: false })
  await app.register(registry, { storage: { driver: 'inmemory' }, metrics: { enabled: true } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => { await app.close() })
  const port = (app.server.address() as AddressInfo).port
  const started = await app.inject({ method: 'POST', url: urls.blobUpload('team/app') })
  const location = new URL(started.headers.location as string, 'http://placeholder')

  // A chunk whose declared body never arrives whole: the request stays in flight.
  const client = httpRequest({ host: '127.0.0.1', port, method: 'PATCH', path: location.pathname, headers: { 'content-type': 'application/octet-stream', 'content-length': '1000' } })
  client.on('error', () => {})
  client.write(Buffer.alloc(10))
  const metrics = app.ociRegistryOperations.metrics
  if (metrics === undefined) throw new Error('metrics are on')
  let text = await metrics.render()
  while (sample(text, 'registry_uploads_in_progress') !== 1) {
    await new Promise((resolve) => setImmediate(resolve))
    text = await metrics.render()
  }
  t.equal(sample(text, 'registry_http_in_flight_requests', { handler: 'blob-upload-chunk' }), 1)
  client.destroy()
  while (sample(text, 'registry_uploads_in_progress') !== 0) {
    await new Promise((resolve) => setImmediate(resolve))
    text = await metrics.render()
  }
  t.equal(sample(text, 'registry_http_in_flight_requests', { handler: 'blob-upload-chunk' }), 0)
})

t.test('auth failures by reason', async (t) => {
  const path = await htpasswdFile(t, { alice: 'secret' })
  const app = await build(t, 'inmemory', { metrics: { enabled: true }, auth: { mode: 'htpasswd', path } })
  const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
  t.equal((await app.inject({ method: 'GET', url: '/v2/' })).statusCode, 401)
  t.equal((await app.inject({ method: 'GET', url: '/v2/', headers: { authorization: basic('alice', 'wrong') } })).statusCode, 401)
  t.equal((await app.inject({ method: 'GET', url: '/v2/', headers: { authorization: basic('alice', 'secret') } })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/v2/_oci/admin/readonly', headers: { authorization: basic('alice', 'secret') } })).statusCode, 403, 'not an admin')
  const text = await scrape(t, app)
  t.equal(sample(text, 'registry_auth_failures_total', { reason: 'missing_credentials' }), 1)
  t.equal(sample(text, 'registry_auth_failures_total', { reason: 'invalid_credentials' }), 1)
  t.equal(sample(text, 'registry_auth_failures_total', { reason: 'denied' }), 1)
  t.equal(sample(text, 'registry_http_requests_total', { handler: 'base', method: 'GET', code: '401' }), 2)
})

t.test('GC and scrub runs, bytes freed and quarantines, from the lifecycle events', async (t) => {
  const app = await build(t, 'inmemory', { metrics: { enabled: true } })
  const startedAt = new Date().toISOString()
  const gc: GcReport = { id: 'run-1', trigger: 'admin', startedAt, durationMs: 12, dryRun: false, deleteUntagged: false, repositories: 1, manifestsMarked: 1, blobsMarked: 2, manifestsSwept: 1, blobsSwept: 3, bytesFreed: 4096, removed: { blobs: [], manifests: [] } }
  const scrub: ScrubReport = { id: 'run-2', trigger: 'schedule', startedAt, durationMs: 5, blobsChecked: 4, bytesChecked: 1000, blobsSkipped: 0, manifestsChecked: 1, corrupt: ['sha256:' + 'a'.repeat(64)], missingReferences: [] }
  const origin = {}
  await app.ociRegistry.events.emit(
    { type: 'gc.completed', time: new Date(), origin, report: gc },
    { type: 'gc.completed', time: new Date(), origin, report: { ...gc, dryRun: true } },
    { type: 'scrub.completed', time: new Date(), origin, report: scrub },
    { type: 'blob.quarantined', time: new Date(), origin, digest: 'sha256:' + 'a'.repeat(64), reason: 'digest mismatch' }
  )
  const text = await scrape(t, app)
  t.equal(sample(text, 'registry_gc_runs_total', { dry_run: 'false' }), 1)
  t.equal(sample(text, 'registry_gc_runs_total', { dry_run: 'true' }), 1)
  t.equal(sample(text, 'registry_gc_bytes_freed_total'), 4096, 'a dry run frees nothing')
  t.equal(sample(text, 'registry_gc_removed_total', { kind: 'blob' }), 3)
  t.equal(sample(text, 'registry_scrub_runs_total'), 1)
  t.equal(sample(text, 'registry_scrub_bytes_checked_total'), 1000)
  t.equal(sample(text, 'registry_scrub_corrupt_blobs_total'), 1)
  t.equal(sample(text, 'registry_blobs_quarantined_total'), 1)
})

t.test('other modules register gauges and counters; per-repository figures stay bounded', async (t) => {
  const app = await build(t, 'inmemory', { metrics: { enabled: true, path: '/internal/metrics', processMetrics: false } })
  const metrics = app.ociRegistryOperations.metrics
  if (metrics === undefined) throw new Error('metrics are on')
  const usage = new Map(Array.from({ length: 30 }, (_, i) => [`repo-${i}`, (i + 1) * 100] as const))
  metrics.registerGauge({
    name: 'registry_example_usage_bytes',
    help: 'Bytes per repository, the largest 10 and the rest.',
    labelNames: ['repository'],
    collect: () => topWithRest(usage, 10).map(([repository, value]) => ({ labels: { repository }, value }))
  })
  metrics.registerGauge({ name: 'registry_notifications_queue_length', help: 'Events waiting.', collect: async () => 7 })
  const failures = metrics.registerCounter({ name: 'registry_notifications_failures_total', help: 'Failed deliveries.', labelNames: ['endpoint'] })
  failures.inc({ endpoint: 'ci' })
  failures.inc({ endpoint: 'ci' }, 2)
  t.throws(() => { metrics.registerGauge({ name: 'registry_notifications_queue_length', help: 'again', collect: () => 1 }) }, /already been registered/)
  t.throws(() => { metrics.registerCounter({ name: 'queue', help: 'no prefix' }) }, /start with registry_/)

  t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 404, 'served at the configured path only')
  const text = await scrape(t, app, '/internal/metrics')
  t.equal(sample(text, 'registry_example_usage_bytes', { repository: 'repo-29' }), 3000)
  t.equal(sample(text, 'registry_example_usage_bytes', { repository: 'repo-19' }), undefined, 'beyond the top 10')
  t.equal(sample(text, 'registry_example_usage_bytes', { repository: '(other)' }), (1 + 20) * 20 / 2 * 100)
  t.equal(text.split('\n').filter((line) => line.startsWith('registry_example_usage_bytes{')).length, 11)
  t.equal(sample(text, 'registry_notifications_queue_length'), 7)
  t.equal(sample(text, 'registry_notifications_failures_total', { endpoint: 'ci' }), 3)
  t.notOk(text.includes('process_cpu_user_seconds_total'), 'process metrics can be left out')
})

t.test('usage per repository and the notification queue, from their modules', async (t) => {
  // A receiver that is never reached: the push's events wait in the outbox.
  const app = await build(t, 'filesystem', {
    metrics: { enabled: true, processMetrics: false },
    notifications: { endpoints: [{ name: 'ci', url: 'http://127.0.0.1:9/unreachable', timeout: '100ms', threshold: 1, backoff: '1h' }] }
  })
  const image = await prepareImage(app, 'team/app', { layers: 1 })
  t.equal((await putManifest(app, 'team/app', 'v1', image.manifest)).statusCode, 201)
  const usage = await app.inject({ method: 'GET', url: '/v2/_oci/admin/usage' })
  const text = await scrape(t, app)
  const stored = sample(text, 'registry_storage_usage_bytes', { repository: 'team/app' })
  t.ok(stored !== undefined && stored > 0, `the repository's bytes are a series (${String(stored)})`)
  t.equal(sample(text, 'registry_storage_stored_bytes'), stored, 'one repository: the store holds what it holds')
  t.equal(usage.statusCode, 403, 'the admin API itself stays closed without admin access')
  const pending = sample(text, 'registry_notifications_pending', { endpoint: 'ci' })
  t.ok(pending !== undefined && pending >= 1, `events wait for the endpoint (${String(pending)})`)
  t.equal(sample(text, 'registry_notifications_dead_lettered', { endpoint: 'ci' }), 0)
})

t.test('path false: collected for the host to serve elsewhere', async (t) => {
  const app = await build(t, 'inmemory', { metrics: { enabled: true, path: false } })
  await pushBlob(app, 'a/b', Buffer.from('x'))
  t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 404)
  const text = await app.ociRegistryOperations.metrics?.render() ?? ''
  t.equal(sample(text, 'registry_http_requests_total', { handler: 'blob-upload', method: 'POST', code: '201' }), 1)
})

t.test('bad metrics options fail registration', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(registry, { metrics: { enabled: true, path: 'metrics' } } as never).ready() }, /metrics\/path/)
})
