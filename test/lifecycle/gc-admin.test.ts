/**
 * Garbage collection in the plugin: the admin API (start a run, 409 while one runs, read the
 * reports; admins only), the schedule (`gc.enabled`) and its window, and the lease that keeps
 * one collector at a time across replicas sharing a storage root.
 */

import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import registry from '../../plugins/registry.js'
import type { RegistryPluginOptions } from '../../plugins/registry.js'
import { inWindow, resolveGcOptions } from '../../lib/lifecycle/gc-options.js'
import { StorageLease } from '../../lib/lifecycle/lease.js'
import { FilesystemDriver } from '../../lib/storage/drivers/filesystem.js'
import type { GcReport } from '../../lib/lifecycle/reports.js'
import { htpasswdFile } from '../auth/fixtures.js'
import { build, pushBlob, tempDir } from '../helpers.js'

async function serve (t: Parameters<typeof build>[0], options: RegistryPluginOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: false }) as unknown as FastifyInstance
  await app.register(registry, options)
  await app.ready()
  t.teardown(async () => { await app.close() })
  return app
}

t.test('the admin API starts a run (dry or not), refuses a second at once, and lists the reports', async (t) => {
  const root = await tempDir(t)
  const writer = await build(t, 'filesystem', { root })
  const orphan = await pushBlob(writer, 'a/b', Buffer.from('orphan'))
  await writer.close()

  const path = await htpasswdFile(t, { alice: 'wonderland', bob: 'builder' })
  const app = await serve(t, { storage: { driver: 'filesystem', root }, auth: { mode: 'htpasswd', path, admins: ['alice'] }, gc: { delaySeconds: 0 } })
  const as = (user: string, password: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` })
  const alice = as('alice', 'wonderland')

  t.equal((await app.inject({ method: 'POST', url: '/v2/_oci/admin/gc' })).statusCode, 401)
  t.equal((await app.inject({ method: 'POST', url: '/v2/_oci/admin/gc', headers: as('bob', 'builder') })).statusCode, 403)
  t.equal((await app.inject({ method: 'GET', url: '/v2/_oci/admin/gc', headers: as('bob', 'builder') })).statusCode, 403)

  const dry = await app.inject({ method: 'POST', url: '/v2/_oci/admin/gc?wait=true', headers: { ...alice, 'content-type': 'application/json' }, payload: JSON.stringify({ dryRun: true }) })
  t.equal(dry.statusCode, 200)
  t.match(dry.json(), { trigger: 'admin', dryRun: true, removed: { blobs: [orphan] } })
  t.ok(await app.ociRegistry.blobs.isStored(orphan))

  const bad = await app.inject({ method: 'POST', url: '/v2/_oci/admin/gc?dryRun=maybe', headers: alice })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().errors[0].code, 'PARAMETER_INVALID', 'a flag is true, false, 1 or 0')
  t.match(bad.json().errors[0].detail, { field: 'dryRun', value: 'maybe' }, 'the detail names the parameter')
  const badBody = await app.inject({ method: 'POST', url: '/v2/_oci/admin/gc', headers: { ...alice, 'content-type': 'application/json' }, payload: '{"dryRun":"yes"}' })
  t.equal(badBody.statusCode, 400)
  t.match(badBody.json().errors[0], { code: 'PARAMETER_INVALID', detail: { reason: 'dryRun must be true or false' } }, 'so is one in the body')

  const completed = new Promise<GcReport>((resolve) => { app.ociRegistry.events.on('gc.completed', (event) => { resolve(event.report) }) })
  const started = await app.inject({ method: 'POST', url: '/v2/_oci/admin/gc?dryRun=false', headers: alice })
  t.equal(started.statusCode, 202)
  const busy = await app.inject({ method: 'POST', url: '/v2/_oci/admin/gc', headers: alice })
  t.equal(busy.statusCode, 409, 'one run at a time')
  t.match(busy.json(), { errors: [{ code: 'UNAVAILABLE' }] })
  const report = await completed
  t.same(report.removed.blobs, [orphan])
  t.notOk(await app.ociRegistry.blobs.isStored(orphan))

  const listed = await app.inject({ method: 'GET', url: '/v2/_oci/admin/gc', headers: alice })
  t.equal(listed.statusCode, 200)
  t.match(listed.json(), { running: false, reports: [{ id: report.id, dryRun: false }, { dryRun: true }] })
})

t.test('the schedule collects while serving, with its grace delay', async (t) => {
  const root = await tempDir(t)
  const app = await serve(t, { storage: { driver: 'filesystem', root }, gc: { enabled: true, intervalSeconds: 1, delaySeconds: 0 } })
  // Listening keeps the process alive, as a server does (the schedule's timer does not).
  await app.listen({ host: '127.0.0.1', port: 0 })
  const orphan = await pushBlob(app, 'scheduled', Buffer.from('scheduled orphan'))
  const report = await new Promise<GcReport>((resolve) => {
    app.ociRegistry.events.on('gc.completed', (event) => { if (event.report.blobsSwept > 0) resolve(event.report) })
  })
  t.equal(report.trigger, 'schedule')
  t.same(report.removed.blobs, [orphan])
})

t.test('options and the UTC window', async (t) => {
  t.same(resolveGcOptions(), { enabled: false, intervalMs: 3_600_000, delayMs: 3_600_000, window: undefined, deleteUntagged: false })
  t.ok(inWindow(undefined, new Date()))
  t.ok(inWindow('01:00-05:00', new Date('2026-01-01T01:00:00Z')))
  t.notOk(inWindow('01:00-05:00', new Date('2026-01-01T05:00:00Z')))
  t.ok(inWindow('22:00-04:00', new Date('2026-01-01T23:30:00Z')), 'across midnight')
  t.ok(inWindow('22:00-04:00', new Date('2026-01-01T03:59:00Z')))
  t.notOk(inWindow('22:00-04:00', new Date('2026-01-01T12:00:00Z')))
  const app = Fastify({ logger: false })
  await t.rejects(async () => { await app.register(registry, { gc: { window: '25:00-26:00' } }).ready() }, /gc\/window/)
  await app.close()
})

t.test('a lease in storage: one holder at a time, free again once released or expired', async (t) => {
  const driver = new FilesystemDriver({ root: await tempDir(t) })
  const first = new StorageLease(driver, 'gc', { ttlMs: 60_000, settleMs: 10 })
  const second = new StorageLease(driver, 'gc', { ttlMs: 60_000, settleMs: 10 })
  t.ok(await first.acquire())
  t.notOk(await second.acquire(), 'held by another')
  await first.release()
  t.ok(await second.acquire(), 'free once released')
  await second.release()

  const short = new StorageLease(driver, 'gc', { ttlMs: 1, settleMs: 10 })
  t.ok(await short.acquire())
  // Renewals are stopped as a crashed holder's would be: the lease expires.
  await short.release().catch(() => {})
  await driver.putContent('/docker/registry/v2/_oci/leases/gc', JSON.stringify({ owner: 'crashed', expiresAt: Date.now() - 1 }))
  t.ok(await first.acquire(), 'an expired lease is free')
  await first.release()
})

t.test('read-only mode: a collection or a scrub is refused as every change; a dry run still runs', async (t) => {
  const root = await tempDir(t)
  const writer = await build(t, 'filesystem', { root })
  const orphan = await pushBlob(writer, 'a/b', Buffer.from('orphan while frozen'))
  await writer.close()
  const path = await htpasswdFile(t, { alice: 'wonderland' })
  const app = await serve(t, { storage: { driver: 'filesystem', root }, auth: { mode: 'htpasswd', path, admins: ['alice'] }, gc: { delaySeconds: 0 }, readOnly: true })
  const alice = { authorization: `Basic ${Buffer.from('alice:wonderland').toString('base64')}` }

  const refused = await app.inject({ method: 'POST', url: '/v2/_oci/admin/gc?wait=true', headers: alice })
  t.equal(refused.statusCode, 405)
  t.match(refused.json(), { errors: [{ code: 'UNSUPPORTED', detail: { reason: 'the registry is in read-only mode', action: 'gc' } }] })
  const dry = await app.inject({ method: 'POST', url: '/v2/_oci/admin/gc?wait=true&dryRun=true', headers: alice })
  t.equal(dry.statusCode, 200)
  t.match(dry.json(), { dryRun: true, removed: { blobs: [orphan] } })
  const scrub = await app.inject({ method: 'POST', url: '/v2/_oci/admin/scrub', headers: alice })
  t.equal(scrub.statusCode, 405)
  t.match(scrub.json(), { errors: [{ code: 'UNSUPPORTED', detail: { action: 'scrub' } }] })
  t.ok(await app.ociRegistry.blobs.isStored(orphan), 'nothing was removed')

  app.ociRegistry.readOnly = false
  const run = await app.inject({ method: 'POST', url: '/v2/_oci/admin/gc?wait=true', headers: alice })
  t.equal(run.statusCode, 200, 'out of read-only mode, the collection runs')
  t.notOk(await app.ociRegistry.blobs.isStored(orphan))
})
