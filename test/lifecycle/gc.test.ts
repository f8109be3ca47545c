/**
 * The garbage collector over a registry: what it marks and sweeps (with and without
 * `deleteUntagged`), what it does with index children and referrers, its dry run, its report
 * and event, the caches it clears, and its safety rules beside pushes (grace delay, touched and
 * held blobs, one run at a time).
 */

import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { GarbageCollector, referencesOf } from '../../lib/lifecycle/gc.js'
import type { GcReport } from '../../lib/lifecycle/reports.js'
import { digestOf } from '../../lib/digest.js'
import { digestParts, pathFor } from '../../lib/storage/paths.js'
import { SharedHolds } from '../../lib/storage/shared-holds.js'
import { build, prepareImage, pushBlob, putManifest, tempDir, urls, type PushedImage } from '../helpers.js'

const INDEX = 'application/vnd.oci.image.index.v1+json'
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json'

async function pushImage (app: FastifyInstance, name: string, reference: string, options: Parameters<typeof prepareImage>[2] = {}): Promise<PushedImage> {
  const image = await prepareImage(app, name, options)
  const response = await putManifest(app, name, reference === '' ? image.digest : reference, image.manifest)
  if (response.statusCode !== 201) throw new Error(`manifest push failed: ${response.body}`)
  return image
}

async function pushIndex (app: FastifyInstance, name: string, reference: string, children: PushedImage[]): Promise<{ digest: string, manifest: Buffer }> {
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: INDEX,
    manifests: children.map((child, i) => ({ mediaType: MANIFEST, digest: child.digest, size: child.manifest.length, platform: { os: 'linux', architecture: `arch${i}` } }))
  }))
  const response = await putManifest(app, name, reference, manifest, INDEX)
  if (response.statusCode !== 201) throw new Error(`index push failed: ${response.body}`)
  return { digest: digestOf(manifest), manifest }
}

async function blobStored (app: FastifyInstance, digest: string): Promise<boolean> {
  return await app.ociRegistry.blobs.isStored(digest)
}

async function linked (app: FastifyInstance, name: string, digest: string): Promise<boolean> {
  return await app.ociRegistry.repository(name).blobs.hasLink(digest)
}

async function deleteManifest (app: FastifyInstance, name: string, reference: string): Promise<void> {
  const response = await app.inject({ method: 'DELETE', url: urls.manifest(name, reference) })
  if (response.statusCode !== 202) throw new Error(`delete failed: ${response.body}`)
}

t.test('referencesOf reads config, layers, children, schema 1 layers and subject leniently', async (t) => {
  const a = digestOf('a')
  const b = digestOf('b')
  const c = digestOf('c')
  t.same(referencesOf(Buffer.from(JSON.stringify({ config: { digest: a }, layers: [{ digest: b }, { digest: b }, { digest: 'bad' }], subject: { digest: c } }))), { blobs: [a, b], children: [], subject: c })
  t.same(referencesOf(Buffer.from(JSON.stringify({ manifests: [{ digest: a }] }))), { blobs: [], children: [a] })
  t.same(referencesOf(Buffer.from(JSON.stringify({ schemaVersion: 1, fsLayers: [{ blobSum: a }, { blobSum: c }] }))), { blobs: [a, c], children: [] })
  t.throws(() => referencesOf(Buffer.from('not json')))
})

t.test('a deleted manifest frees the blobs only it used, with their links; shared ones stay', async (t) => {
  const app = await build(t, 'inmemory', { delete: true })
  const kept = await pushImage(app, 'team/app', 'v1', { seed: 'kept', layers: 2 })
  const gone = await pushImage(app, 'team/app', 'v2', { seed: 'gone', layers: 2 })
  // The second image also uses the first one's first layer.
  const shared = kept.layers[0] as string
  const both = await prepareImage(app, 'team/app', { seed: 'kept', layers: 1 })
  t.equal(both.layers[0], shared)
  await deleteManifest(app, 'team/app', gone.digest)

  const events: GcReport[] = []
  app.ociRegistry.events.on('gc.completed', (event) => { events.push(event.report) })
  const collector = new GarbageCollector(app.ociRegistry)

  const dry = await collector.run({ dryRun: true })
  const expected = [gone.digest, gone.config, ...gone.layers].sort()
  t.same(dry.removed.blobs, expected, 'the dry run lists the blobs a run removes')
  t.same(dry.removed.manifests, [])
  t.ok(dry.dryRun)
  for (const digest of expected) t.ok(await blobStored(app, digest), 'a dry run removes nothing')

  const report = await collector.run({ trigger: 'admin' })
  t.same(report.removed.blobs, expected)
  t.match(report, { trigger: 'admin', dryRun: false, deleteUntagged: false, repositories: 1, manifestsMarked: 1, blobsSwept: 4, manifestsSwept: 0 })
  t.equal(report.bytesFreed, gone.manifest.length + Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed: 'gone' })).length + 'gone layer 0'.length + 'gone layer 1'.length)
  t.equal(report.blobsMarked, 4, 'the kept manifest, its config and its two layers')
  for (const digest of expected) {
    t.notOk(await blobStored(app, digest), `${digest} removed`)
    t.notOk(await linked(app, 'team/app', digest), `${digest} no longer linked`)
  }
  for (const digest of [kept.digest, kept.config, ...kept.layers]) t.ok(await blobStored(app, digest))
  t.same(events.map((event) => event.id), [dry.id, report.id], 'gc.completed for each run')
  t.same(collector.reports().map((entry) => entry.id), [report.id, dry.id], 'reports newest first')

  // Every replica's cache forgets: the blob is gone for a HEAD at once, not after the freshness.
  const head = await app.inject({ method: 'HEAD', url: urls.blob('team/app', gone.layers[0] as string) })
  t.equal(head.statusCode, 404)
  const pull = await app.inject({ method: 'GET', url: urls.manifest('team/app', 'v1') })
  t.equal(pull.statusCode, 200)

  const again = await collector.run()
  t.same(again.removed, { blobs: [], manifests: [] }, 'a second run finds nothing')
})

t.test('blobs linked but named by no manifest are collected; so are the layers of an untagged manifest only with deleteUntagged', async (t) => {
  const app = await build(t, 'inmemory', { delete: true })
  const orphan = await pushBlob(app, 'a/b', Buffer.from('orphan'))
  const untagged = await pushImage(app, 'a/b', '', { seed: 'untagged' })
  const tagged = await pushImage(app, 'a/b', 'latest', { seed: 'tagged' })
  const collector = new GarbageCollector(app.ociRegistry)

  const keepAll = await collector.run()
  t.same(keepAll.removed.blobs, [orphan], 'without deleteUntagged every revision is kept')

  const report = await collector.run({ deleteUntagged: true })
  t.same(report.removed.manifests, [`a/b@${untagged.digest}`])
  t.same(report.removed.blobs, [untagged.digest, untagged.config, ...untagged.layers].sort())
  t.equal((await app.inject({ method: 'GET', url: urls.manifest('a/b', untagged.digest) })).statusCode, 404)
  t.equal((await app.inject({ method: 'GET', url: urls.manifest('a/b', tagged.digest) })).statusCode, 200)
})

t.test('deleteUntagged keeps the children of a tagged index and the referrers of kept manifests', async (t) => {
  const app = await build(t, 'inmemory', { delete: true })
  const amd64 = await pushImage(app, 'multi', '', { seed: 'amd64' })
  const arm64 = await pushImage(app, 'multi', '', { seed: 'arm64' })
  const index = await pushIndex(app, 'multi', 'latest', [amd64, arm64])
  // A signature of the tagged index (untagged, as signatures are pushed).
  const signature = await pushImage(app, 'multi', '', { seed: 'signature', layers: 1, artifactType: 'application/example.signature', subject: { mediaType: INDEX, digest: index.digest, size: index.manifest.length } })
  // An untagged image with its own signature: both go.
  const old = await pushImage(app, 'multi', '', { seed: 'old' })
  const oldSignature = await pushImage(app, 'multi', '', { seed: 'old-signature', layers: 1, subject: { mediaType: MANIFEST, digest: old.digest, size: old.manifest.length } })
  // A tagged referrer of a subject that was deleted stays: a tag is a root.
  const deleted = await pushImage(app, 'multi', '', { seed: 'deleted' })
  const taggedReferrer = await pushImage(app, 'multi', 'sbom', { seed: 'sbom', layers: 1, subject: { mediaType: MANIFEST, digest: deleted.digest, size: deleted.manifest.length } })
  await deleteManifest(app, 'multi', deleted.digest)

  const report = await new GarbageCollector(app.ociRegistry).run({ deleteUntagged: true })
  t.same(report.removed.manifests, [`multi@${old.digest}`, `multi@${oldSignature.digest}`].sort())
  for (const image of [amd64, arm64, signature, taggedReferrer]) {
    const pull = await app.inject({ method: 'GET', url: urls.manifest('multi', image.digest) })
    t.equal(pull.statusCode, 200, 'kept manifest pulls')
    for (const digest of [image.config, ...image.layers]) t.ok(await blobStored(app, digest), 'and its blobs are kept (distribution\'s #3178 is not repeated)')
  }
  for (const digest of [old.digest, old.config, ...old.layers, oldSignature.digest, deleted.digest, ...deleted.layers]) {
    t.notOk(await blobStored(app, digest), 'removed')
  }
  const referrers = await app.inject({ method: 'GET', url: urls.referrers('multi', index.digest) })
  t.equal((referrers.json() as { manifests: unknown[] }).manifests.length, 1, 'the index keeps its signature')
})

t.test('blobs younger than the delay and untagged manifests younger than it are kept', async (t) => {
  const app = await build(t, 'inmemory', { delete: true })
  const orphan = await pushBlob(app, 'young', Buffer.from('young orphan'))
  const untagged = await pushImage(app, 'young', '', { seed: 'young' })
  const report = await new GarbageCollector(app.ociRegistry).run({ deleteUntagged: true, delayMs: 3_600_000 })
  t.same(report.removed, { blobs: [], manifests: [] })
  t.ok(await blobStored(app, orphan))
  t.ok(await blobStored(app, untagged.digest))
})

t.test('a blob touched during a run (a HEAD) or held by a change in flight is kept', async (t) => {
  const app = await build(t, 'inmemory', { delete: true })
  const touchedOrphan = await pushBlob(app, 'busy', Buffer.from('asked about'))
  const heldOrphan = await pushBlob(app, 'busy', Buffer.from('held'))
  const plainOrphan = await pushBlob(app, 'busy', Buffer.from('plain'))
  const registry = app.ociRegistry
  const release = await registry.blobUse.hold([heldOrphan])
  let asked = false
  const report = await new GarbageCollector(registry).run({
    onProgress: (progress) => {
      if (progress.phase === 'mark' && !asked) {
        asked = true
        // A client asks about the blob while the run marks: it may be about to name it.
        registry.repository('busy').statBlob(touchedOrphan).catch(() => {})
      }
    }
  })
  release()
  t.same(report.removed.blobs, [plainOrphan])
  t.ok(await blobStored(app, touchedOrphan))
  t.ok(await blobStored(app, heldOrphan))
})

t.test('a manifest PUT and the removal of a blob it names never interleave', async (t) => {
  const app = await build(t, 'inmemory', { delete: true })
  const registry = app.ociRegistry
  const image = await prepareImage(app, 'race', { seed: 'race' })
  const layer = image.layers[0] as string
  // The removal runs first; the PUT waits for it, then finds the layer gone.
  let putAnswer: Promise<Awaited<ReturnType<typeof putManifest>>> | undefined
  await registry.blobUse.exclusive(layer, async () => {
    putAnswer = putManifest(app, 'race', 'v1', image.manifest)
    await registry.driver.delete(pathFor({ kind: 'blobDir', ...digestParts(layer) }))
  })
  const refused = await (putAnswer as Promise<Awaited<ReturnType<typeof putManifest>>>)
  t.equal(refused.statusCode, 400)
  t.match(refused.json(), { errors: [{ code: 'MANIFEST_BLOB_UNKNOWN' }] })

  // A PUT holding its blobs makes the removal wait until it is committed, and touches them.
  const other = await prepareImage(app, 'race', { seed: 'held' })
  const held = await registry.blobUse.hold(other.layers)
  let removed = false
  const removal = registry.blobUse.exclusive(other.layers[0] as string, async () => { removed = true })
  await Promise.resolve()
  t.notOk(removed, 'waits for the hold')
  held()
  await removal
  t.ok(removed)
})

t.test('one run at a time', async (t) => {
  const app = await build(t, 'inmemory', { delete: true })
  await pushImage(app, 'one', 'v1')
  const collector = new GarbageCollector(app.ociRegistry)
  const first = collector.run()
  t.ok(collector.running)
  await t.rejects(collector.run(), { statusCode: 409, code: 'UNAVAILABLE' })
  await first
  t.notOk(collector.running)
})

t.test('holds shared through storage: a collection in one process keeps what another holds, and a hold waits for a removal', async (t) => {
  const root = await tempDir(t)
  const serving = await build(t, 'filesystem', { root, delete: true })
  const collecting = await build(t, 'filesystem', { root, delete: true })
  // Pushed before holds are shared: a hold that ended just before a run keeps its blobs too.
  const held = await pushBlob(serving, 'shared', Buffer.from('held elsewhere'))
  const free = await pushBlob(serving, 'shared', Buffer.from('free'))
  serving.ociRegistry.blobUse.share(new SharedHolds(serving.ociRegistry.driver))
  collecting.ociRegistry.blobUse.share(new SharedHolds(collecting.ociRegistry.driver))

  const release = await serving.ociRegistry.blobUse.hold([held])
  const report = await new GarbageCollector(collecting.ociRegistry).run()
  release()
  t.same(report.removed.blobs, [free], 'the blob another process holds is kept')

  // A hold that ended after a run started (a PUT between its mark and its removal) keeps it too.
  const ended = await pushBlob(collecting, 'shared', Buffer.from('named meanwhile'))
  const releaseEnded = await serving.ociRegistry.blobUse.hold([ended])
  releaseEnded()
  const listing = await new Promise<string[]>((resolve) => {
    const poll = (): void => {
      collecting.ociRegistry.driver.list('/docker/registry/v2/_oci/blobuse/released').then(resolve, () => { setImmediate(poll) })
    }
    poll()
  })
  t.ok(listing.length > 0, 'the ended hold is recorded')
  const second = await new GarbageCollector(collecting.ociRegistry).run()
  t.notOk(second.removed.blobs.includes(ended), 'kept: its hold ended moments ago')

  // A removal announced by the collector: the other process's hold waits until it ends.
  const removal = await (collecting.ociRegistry.blobUse.shared as SharedHolds).beginRemoval([held])
  t.same([...removal.held], [])
  let holding = false
  const waiting = serving.ociRegistry.blobUse.hold([held]).then((end) => { holding = true; return end })
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.notOk(holding, 'waits while the removal is announced')
  await removal.end()
  const end = await waiting
  t.ok(holding)
  end()
})

t.test('a run corrects storage usage from the tree it leaves', async (t) => {
  const app = await build(t, 'filesystem', { delete: true })
  const kept = await pushImage(app, 'usage/app', 'v1')
  const orphan = await pushBlob(app, 'usage/app', Buffer.from('a blob no manifest names, linked here'))
  const { readUsage } = await import('../../lib/lifecycle/usage.js')
  // The write path's updates of usage run after the answers: wait for them.
  await app.ociRegistryOperations.usage?.flush()
  const before = (await readUsage(app.ociRegistry)).repositories.find((entry) => entry.repository === 'usage/app')
  t.equal(before?.blobs, kept.layers.length + 2, 'the layers, the config and the orphan are counted')
  const report = await new GarbageCollector(app.ociRegistry).run({ delayMs: 0 })
  t.same(report.removed.blobs, [orphan])
  const after = (await readUsage(app.ociRegistry)).repositories.find((entry) => entry.repository === 'usage/app')
  t.equal(after?.blobs, kept.layers.length + 1, 'the swept link no longer counts')
  t.equal(after?.blobBytes, (before?.blobBytes ?? 0) - Buffer.byteLength('a blob no manifest names, linked here'))
})
