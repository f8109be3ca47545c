/**
 * The write path: policy hooks refuse changes before anything is stored, and typed events follow
 * each committed change (and pulls) in order, on every storage driver.
 */

import t from 'tap'
import { RegistryError } from '../../lib/errors.js'
import { digestOf } from '../../lib/digest.js'
import { pathFor, digestParts } from '../../lib/storage/paths.js'
import type { RegistryEvent } from '../../lib/events.js'
import type { RepositoryChange } from '../../lib/policies.js'
import { build, errorCode, locationPath, prepareImage, pushBlob, putManifest, storageKinds, urls } from '../helpers.js'

/** What an event says, without its time and origin. */
function summary (event: RegistryEvent): string {
  const detail = 'tag' in event ? ` ${event.tag}` : 'digest' in event ? ` ${event.digest.slice(7, 15)}` : ''
  return `${event.type} ${'repository' in event ? event.repository : ''}${detail}`
}

for (const kind of storageKinds) {
  t.test(`${kind}: a policy hook refuses a manifest push with its error, and nothing is stored`, async (t) => {
    const app = await build(t, kind)
    const registry = app.ociRegistry
    const image = await prepareImage(app, 'policy/app')
    const seen: RepositoryChange[] = []
    registry.policies.add((change) => {
      seen.push(change)
      if (change.action === 'manifest.put' && change.tags.includes('forbidden')) {
        throw new RegistryError('DENIED', { reason: 'tag forbidden is reserved' })
      }
    })
    const events: RegistryEvent[] = []
    registry.events.onAny((event) => { events.push(event) })

    const refused = await putManifest(app, 'policy/app', 'forbidden', image.manifest)
    t.equal(refused.statusCode, 403)
    t.equal(errorCode(refused.body), 'DENIED', 'the hook\'s error, in the spec body')
    t.match(JSON.parse(refused.body), { errors: [{ detail: { reason: 'tag forbidden is reserved' } }] })
    const change = seen.find((entry) => entry.action === 'manifest.put')
    t.match(change, { action: 'manifest.put', repository: 'policy/app', digest: image.digest, tags: ['forbidden'], mediaType: 'application/vnd.oci.image.manifest.v1+json', size: image.manifest.length })
    t.same(change?.action === 'manifest.put' ? [...change.references].sort() : [], [image.config, ...image.layers].sort(), 'the hook sees what the manifest references')

    const revision = pathFor({ kind: 'manifestRevisionLink', name: 'policy/app', ...digestParts(image.digest) })
    await t.rejects(registry.driver.stat(revision), { name: 'PathNotFoundError' }, 'no revision was written')
    await t.rejects(registry.driver.stat(pathFor({ kind: 'tag', name: 'policy/app', tag: 'forbidden' })), { name: 'PathNotFoundError' }, 'no tag was written')
    await t.rejects(registry.driver.stat(registry.blobs.dataPath(image.digest)), { name: 'PathNotFoundError' }, 'the manifest bytes were not stored')
    t.equal((await app.inject({ url: urls.manifest('policy/app', image.digest) })).statusCode, 404)
    t.same(events.filter((event) => event.type.startsWith('manifest') || event.type.startsWith('tag')), [], 'no event for a refused change')

    t.equal((await putManifest(app, 'policy/app', 'allowed', image.manifest)).statusCode, 201, 'other tags pass')
  })

  t.test(`${kind}: a policy hook refuses a blob push before its bytes are stored`, async (t) => {
    const app = await build(t, kind)
    const registry = app.ociRegistry
    const content = Buffer.from('refused bytes')
    const digest = digestOf(content)
    registry.policies.add((change) => {
      if (change.action === 'blob.push' && change.repository.startsWith('frozen/')) throw new RegistryError('DENIED', { reason: 'frozen' })
    })
    const monolithic = await app.inject({ method: 'POST', url: urls.blobUpload('frozen/app', { digest }), payload: content, headers: { 'content-type': 'application/octet-stream' } })
    t.equal(monolithic.statusCode, 403)
    t.equal(errorCode(monolithic.body), 'DENIED')

    const started = await app.inject({ method: 'POST', url: urls.blobUpload('frozen/app') })
    t.equal(started.statusCode, 202, 'starting an upload is another change, allowed here')
    const location = locationPath(started.headers.location)
    const completeUrl = `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`
    const completed = await app.inject({ method: 'PUT', url: completeUrl, payload: content, headers: { 'content-type': 'application/octet-stream' } })
    t.equal(completed.statusCode, 403, 'completing is refused')
    await t.rejects(registry.driver.stat(registry.blobs.dataPath(digest)), { name: 'PathNotFoundError' }, 'no blob data was published')
    t.equal((await app.inject({ method: 'HEAD', url: urls.blob('frozen/app', digest) })).statusCode, 404)
  })

  t.test(`${kind}: read-only mode refuses every write with UNSUPPORTED and keeps serving reads`, async (t) => {
    const app = await build(t, kind, { delete: true })
    const image = await prepareImage(app, 'ro/app')
    t.equal((await putManifest(app, 'ro/app', 'v1', image.manifest)).statusCode, 201)
    app.ociRegistry.readOnly = true
    const writes = [
      await app.inject({ method: 'POST', url: urls.blobUpload('ro/app') }),
      await app.inject({ method: 'POST', url: urls.blobUpload('ro/app', { digest: digestOf(Buffer.from('x')) }), payload: Buffer.from('x'), headers: { 'content-type': 'application/octet-stream' } }),
      await app.inject({ method: 'POST', url: urls.blobUpload('ro/other', { mount: image.config, from: 'ro/app' }) }),
      await putManifest(app, 'ro/app', 'v2', image.manifest),
      await app.inject({ method: 'DELETE', url: urls.manifest('ro/app', 'v1') }),
      await app.inject({ method: 'DELETE', url: urls.manifest('ro/app', image.digest) }),
      await app.inject({ method: 'DELETE', url: urls.blob('ro/app', image.config) })
    ]
    for (const response of writes) {
      t.equal(response.statusCode, 405)
      t.match(JSON.parse(response.body), { errors: [{ code: 'UNSUPPORTED', detail: { reason: 'the registry is in read-only mode' } }] })
    }
    t.equal((await app.inject({ url: urls.manifest('ro/app', 'v1') })).statusCode, 200, 'reads go on')
    t.equal((await app.inject({ url: urls.blob('ro/app', image.config) })).statusCode, 200)
    app.ociRegistry.readOnly = false
    t.equal((await putManifest(app, 'ro/app', 'v2', image.manifest)).statusCode, 201, 'switched back at run time')
  })
}

t.test('the events of a push, a pull, a mount and deletes, in order, with origin', async (t) => {
  const app = await build(t, 'inmemory', { delete: true })
  const events: RegistryEvent[] = []
  app.ociRegistry.events.onAny((event) => { events.push(event) })
  const typed: string[] = []
  app.ociRegistry.events.on('manifest.pushed', (event) => { typed.push(`${event.mediaType} ${event.tags.join(',')}`) })

  const image = await prepareImage(app, 'events/app', { layers: 1 })
  t.equal((await putManifest(app, 'events/app', 'v1', image.manifest)).statusCode, 201)
  t.same(events.map(summary), [
    'repository.created events/app',
    `blob.pushed events/app ${image.config.slice(7, 15)}`,
    `blob.pushed events/app ${(image.layers[0] as string).slice(7, 15)}`,
    `manifest.pushed events/app ${image.digest.slice(7, 15)}`,
    'tag.updated events/app v1'
  ], 'a push: the repository, its blobs, the manifest, then its tag')
  t.same(typed, ['application/vnd.oci.image.manifest.v1+json v1'], 'a typed listener sees the typed payload')
  t.match(events.at(-2), { type: 'manifest.pushed', size: image.manifest.length, tags: ['v1'], origin: { request: { method: 'PUT' } } })
  t.ok(events.every((event) => event.time instanceof Date && typeof event.origin.request?.id === 'string'), 'each event has a time and its request')

  events.length = 0
  await putManifest(app, 'events/app', 'v1', image.manifest)
  t.same(events.map(summary), [`manifest.pushed events/app ${image.digest.slice(7, 15)}`], 'a tag that already points there is not updated again')

  events.length = 0
  t.equal((await app.inject({ url: urls.manifest('events/app', 'v1') })).statusCode, 200)
  t.equal((await app.inject({ method: 'HEAD', url: urls.manifest('events/app', 'v1') })).statusCode, 200)
  t.equal((await app.inject({ url: urls.blob('events/app', image.config) })).statusCode, 200)
  t.equal((await app.inject({ method: 'HEAD', url: urls.blob('events/app', image.config) })).statusCode, 200)
  t.same(events.map(summary), ['manifest.pulled events/app v1', `blob.pulled events/app ${image.config.slice(7, 15)}`], 'a pull: GETs only, not HEADs')

  events.length = 0
  const mount = await app.inject({ method: 'POST', url: urls.blobUpload('events/copy', { mount: image.config, from: 'events/app' }) })
  t.equal(mount.statusCode, 201)
  t.same(events.map(summary), ['repository.created events/copy', `blob.mounted events/copy ${image.config.slice(7, 15)}`])
  t.match(events.at(-1), { from: 'events/app' })

  events.length = 0
  const second = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: image.config, size: 1 }, layers: [] }))
  t.equal((await putManifest(app, 'events/app', 'v2', second)).statusCode, 201)
  t.equal((await putManifest(app, 'events/app', 'v1', second)).statusCode, 201)
  t.match(events.at(-1), { type: 'tag.updated', tag: 'v1', digest: digestOf(second), previous: image.digest }, 'a moved tag names where it pointed')

  events.length = 0
  t.equal((await app.inject({ method: 'DELETE', url: urls.manifest('events/app', 'v2') })).statusCode, 202)
  t.equal((await app.inject({ method: 'DELETE', url: urls.manifest('events/app', digestOf(second)) })).statusCode, 202)
  t.equal((await app.inject({ method: 'DELETE', url: urls.blob('events/app', image.config) })).statusCode, 202)
  t.same(events.map(summary), [
    'tag.deleted events/app v2',
    `manifest.deleted events/app ${digestOf(second).slice(7, 15)}`,
    'tag.deleted events/app v1',
    `blob.deleted events/app ${image.config.slice(7, 15)}`
  ], 'deletes: a tag, a manifest with the tags it took along, a blob link')
  t.match(events[1], { tags: ['v1'] })
})

t.test('a waiting listener is awaited before the request answers; a failing one never fails the write', async (t) => {
  const app = await build(t, 'inmemory')
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  let delivered = false
  app.ociRegistry.events.on('blob.pushed', async () => { await gate; delivered = true }, { wait: true })
  app.ociRegistry.events.on('blob.pushed', () => { throw new Error('listener bug') })
  const pushing = pushBlob(app, 'wait/app', Buffer.from('waited'))
  let answered = false
  pushing.then(() => { answered = true }, () => {})
  // The push cannot answer before the gate opens: its listener has not finished.
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(answered, false)
  release()
  t.equal(await pushing, digestOf(Buffer.from('waited')), 'the push succeeds despite the failing listener')
  t.equal(delivered, true, 'the waiting listener finished first')
})

t.test('a manifest naming many missing blobs is refused after a bounded amount of work', async (t) => {
  const app = await build(t, 'inmemory')
  const registry = app.ociRegistry
  const driver = registry.driver
  const stat = driver.stat.bind(driver)
  let stats = 0
  driver.stat = async (path) => { stats++; return await stat(path) }
  const layers = Array.from({ length: 20_000 }, (_, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf(Buffer.from(`missing ${i}`)), size: 1 }))
  const config = await pushBlob(app, 'many/app', Buffer.from('{}'))
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 }, layers }))
  stats = 0
  const response = await putManifest(app, 'many/app', 'v1', manifest)
  t.equal(response.statusCode, 400)
  t.equal(errorCode(response.body), 'MANIFEST_BLOB_UNKNOWN')
  const detail = (JSON.parse(response.body) as { errors: Array<{ detail: { missing: string[] } }> }).errors[0]?.detail
  t.ok(detail !== undefined && detail.missing.length >= 1 && detail.missing.length <= 10, 'a few missing digests are named, not every one')
  t.ok(response.body.length < 4096, `the error body stays small (${response.body.length} bytes)`)
  t.ok(stats < 100, `storage was asked ${stats} times, not once per layer`)
})

t.test('the readOnly option starts the registry in read-only mode', async (t) => {
  const app = await build(t, 'inmemory', { readOnly: true })
  const refused = await app.inject({ method: 'POST', url: urls.blobUpload('ro/option') })
  t.equal(refused.statusCode, 405)
  t.equal(errorCode(refused.body), 'UNSUPPORTED')
  t.equal((await app.inject({ url: '/v2/' })).statusCode, 200, 'reads go on')
  app.ociRegistry.readOnly = false
  t.equal((await app.inject({ method: 'POST', url: urls.blobUpload('ro/option') })).statusCode, 202, 'and it can be switched off at run time')
})
