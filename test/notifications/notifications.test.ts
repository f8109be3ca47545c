/**
 * Notifications in one process: a receiver on loopback gets distribution's envelopes for push,
 * pull, mount and delete; filtered media types and actions are not sent; the HMAC signature
 * verifies; CloudEvents endpoints get CloudEvents; a receiver that does not answer never holds
 * a push; events given up on are listed and replayed through the admin API.
 */

import t, { type Test } from 'tap'
import { createHmac, timingSafeEqual } from 'node:crypto'
import { EventEmitter, once } from 'node:events'
import Fastify from 'fastify'
import registry, { registryFrameworkErrors, type RegistryPluginOptions } from '../../plugins/registry.js'
import { build, blobOf, prepareImage, pushBlob, putManifest, tempDir, urls } from '../helpers.js'
import { htpasswdFile } from '../auth/fixtures.js'
import { Receiver, type ReceivedEvent } from './receiver.js'
import { EVENTS_MEDIA_TYPE } from '../../lib/notifications/envelope.js'
import { resolveNotifications } from '../../lib/notifications/options.js'
import { retryDelay } from '../../lib/notifications/service.js'
import { pathFor } from '../../lib/storage/paths.js'

async function startReceiver (t: Test): Promise<{ receiver: Receiver, url: string }> {
  const receiver = new Receiver()
  const url = await receiver.listen()
  t.teardown(async () => { await receiver.close() })
  return { receiver, url }
}

/** Fast retries for tests. */
const quick = { threshold: 0, backoff: '10ms', maxbackoff: '50ms' }

t.test('push, pull, mount and delete reach the receiver as distribution\'s envelopes, in order', async (t) => {
  const { receiver, url } = await startReceiver(t)
  const app = await build(t, 'filesystem', { delete: true, notifications: { events: { includereferences: true }, endpoints: [{ name: 'ci', url, headers: { 'X-Team': ['builds'] }, ...quick }] } })
  const image = await prepareImage(app, 'team/app', { layers: 1 })
  t.equal((await putManifest(app, 'team/app', 'v1', image.manifest)).statusCode, 201)
  await receiver.until(() => receiver.events().length >= 3)
  const [config, layer, manifest] = receiver.events() as [ReceivedEvent, ReceivedEvent, ReceivedEvent]
  t.match(config, {
    action: 'push',
    target: { mediaType: 'application/octet-stream', digest: image.config, repository: 'team/app', url: `http://localhost:80${urls.blob('team/app', image.config)}` },
    request: { method: 'POST', host: 'localhost:80' },
    actor: {},
    source: { instanceID: /^[0-9a-f-]{36}$/ }
  })
  t.equal(config.target.size, config.target.length, 'length repeats size')
  t.match(layer, { action: 'push', target: { digest: image.layers[0] } })
  t.match(manifest, {
    action: 'push',
    target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: image.digest, size: image.manifest.length, length: image.manifest.length, repository: 'team/app', tag: 'v1', url: `http://localhost:80${urls.manifest('team/app', image.digest)}` },
    request: { method: 'PUT' }
  })
  t.same((manifest.target.references as Array<{ digest: string }>).map((reference) => reference.digest).sort(), [image.config, image.layers[0]].sort(), 'references listed')
  t.match(typeof manifest.timestamp === 'string' && !Number.isNaN(Date.parse(manifest.timestamp)), true, 'an RFC 3339 timestamp')
  const first = receiver.requests[0]
  t.equal(first?.headers['content-type'], EVENTS_MEDIA_TYPE)
  t.equal(first?.headers['x-registry-event-id'], config.id, 'each delivery carries the event id')
  t.equal(first?.headers['x-team'], 'builds', 'configured headers are sent')
  t.equal(first?.headers['x-registry-signature'], undefined, 'no signature without a secret')
  t.equal(new Set(receiver.events().map((event) => event.id)).size, 3, 'ids differ')

  t.equal((await app.inject({ method: 'GET', url: urls.manifest('team/app', 'v1') })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: urls.blob('team/app', image.layers[0] as string) })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: urls.blobUpload('other/app', { mount: image.layers[0] as string, from: 'team/app' }) })).statusCode, 201)
  t.equal((await app.inject({ method: 'DELETE', url: urls.manifest('team/app', image.digest) })).statusCode, 202)
  t.equal((await app.inject({ method: 'DELETE', url: urls.blob('team/app', image.config) })).statusCode, 202)
  await receiver.until(() => receiver.events().length >= 9)
  const rest = receiver.events().slice(3)
  t.match(rest, [
    { action: 'pull', target: { repository: 'team/app', digest: image.digest, tag: 'v1', mediaType: 'application/vnd.oci.image.manifest.v1+json' } },
    { action: 'pull', target: { repository: 'team/app', digest: image.layers[0], mediaType: 'application/octet-stream' } },
    { action: 'mount', target: { repository: 'other/app', fromRepository: 'team/app', digest: image.layers[0] } },
    { action: 'delete', target: { repository: 'team/app', digest: image.digest } },
    { action: 'delete', target: { repository: 'team/app', tag: 'v1' } },
    { action: 'delete', target: { repository: 'team/app', digest: image.config } }
  ])
  t.equal(rest[3]?.target.mediaType, undefined, 'a delete names no media type, as distribution\'s')
})

t.test('ignored media types and actions are not sent; other endpoints still get them', async (t) => {
  const all = await startReceiver(t)
  const filtered = await startReceiver(t)
  const app = await build(t, 'inmemory', {
    notifications: {
      endpoints: [
        { name: 'filtered', url: filtered.url, ignoredmediatypes: ['application/vnd.oci.image.config.v1+json'], ignore: { mediatypes: ['application/octet-stream'], actions: ['pull'] }, ...quick },
        { name: 'all', url: all.url, ...quick },
        { name: 'off', url: 'http://127.0.0.1:9/never', disabled: true }
      ]
    }
  })
  const image = await prepareImage(app, 'filtered/app', { layers: 1 })
  await putManifest(app, 'filtered/app', 'latest', image.manifest)
  await app.inject({ method: 'GET', url: urls.manifest('filtered/app', 'latest') })
  const other = await prepareImage(app, 'filtered/app', { layers: 1, seed: 'second' })
  await putManifest(app, 'filtered/app', 'second', other.manifest)
  await all.receiver.until(() => all.receiver.events().length >= 7)
  await filtered.receiver.until(() => filtered.receiver.events().length >= 2)
  t.same(filtered.receiver.events().map((event) => [event.action, event.target.tag]), [['push', 'latest'], ['push', 'second']], 'only manifest pushes: blobs and pulls ignored')
  t.same(all.receiver.events().map((event) => event.action), ['push', 'push', 'push', 'pull', 'push', 'push', 'push'])
  // The second manifest push was appended after everything the filtered endpoint ignored: had
  // any of it been sent, it would have come first.
})

t.test('with a secret, the signature verifies with the documented recipe', async (t) => {
  const { receiver, url } = await startReceiver(t)
  const secret = 's3cr3t-key'
  const app = await build(t, 'inmemory', { notifications: { endpoints: [{ name: 'signed', url, secret, ...quick }] } })
  await pushBlob(app, 'signed/app', Buffer.from('signed content'))
  await receiver.until(() => receiver.requests.length >= 1)
  const { headers, body } = receiver.requests[0] as { headers: Record<string, string>, body: string }
  const timestamp = headers['x-registry-timestamp'] as string
  t.match(timestamp, /^[0-9]{10}$/, 'seconds since the epoch')
  t.ok(Math.abs(Date.now() / 1000 - Number(timestamp)) < 300, 'recent')
  // The receiver's recipe (README): HMAC-SHA256 of "<timestamp>.<body>", hex, behind "sha256=".
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`)
  const given = Buffer.from(headers['x-registry-signature'] as string)
  t.ok(given.length === expected.length && timingSafeEqual(given, expected), 'the signature verifies')
  const forged = createHmac('sha256', 'wrong').update(`${timestamp}.${body}`).digest('hex')
  t.not(headers['x-registry-signature'], `sha256=${forged}`, 'another key does not')
})

t.test('format cloudevents sends CloudEvents 1.0 JSON', async (t) => {
  const { receiver, url } = await startReceiver(t)
  const app = await build(t, 'inmemory', { notifications: { endpoints: [{ name: 'ce', url, format: 'cloudevents', ...quick }] } })
  const image = await prepareImage(app, 'ce/app', { layers: 1 })
  await putManifest(app, 'ce/app', 'v2', image.manifest)
  await receiver.until(() => receiver.requests.length >= 3)
  const manifest = receiver.requests[2]
  t.match(manifest?.headers['content-type'], /^application\/cloudevents\+json/)
  t.match(manifest?.json, {
    specversion: '1.0',
    type: 'registry.manifest.pushed',
    source: '/v2/ce/app',
    subject: 'v2',
    datacontenttype: 'application/json',
    data: { action: 'push', target: { digest: image.digest, tag: 'v2', repository: 'ce/app' } }
  })
  t.equal(manifest?.json.id, (manifest?.json.data as { id: string }).id, 'the CloudEvent id is the event id')
  t.equal(manifest?.headers['x-registry-event-id'], manifest?.json.id)
  t.match(receiver.requests[0]?.json, { type: 'registry.blob.pushed' })
})

t.test('a receiver that does not answer never holds a push', async (t) => {
  const { receiver, url } = await startReceiver(t)
  let release: () => void = () => {}
  receiver.hold = new Promise<void>((resolve) => { release = resolve })
  const app = await build(t, 'filesystem', { notifications: { endpoints: [{ name: 'slow', url, timeout: '60s', ...quick }] } })
  // Every push answers while the receiver still sits on the first delivery.
  const digests: string[] = []
  for (let i = 0; i < 20; i++) digests.push(await pushBlob(app, 'slow/app', Buffer.from(`slow ${i}`)))
  t.equal(receiver.requests.length, 0, 'nothing answered by the receiver yet')
  release()
  receiver.hold = undefined
  await receiver.until(() => receiver.events().length >= 20)
  t.same(receiver.events().map((event) => event.target.digest), digests, 'then all delivered, in push order')
})

t.test('failed deliveries are retried, then moved to the dead letters; the admin API lists and replays them', async (t) => {
  const { receiver, url } = await startReceiver(t)
  receiver.status = 503
  const lines: Array<{ msg: string }> = []
  const logged = new EventEmitter()
  const buried = async (): Promise<void> => {
    while (!lines.some((line) => line.msg === 'notifications: event moved to the dead letters')) await once(logged, 'line')
  }
  const path = await htpasswdFile(t, { admin: 'secret-admin', user: 'secret-user' })
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { lines.push(JSON.parse(line) as { msg: string }); logged.emit('line') } } }, frameworkErrors: registryFrameworkErrors() })
  const options: RegistryPluginOptions = {
    storage: { driver: 'filesystem', root: await tempDir(t) },
    auth: { mode: 'htpasswd', path, admins: ['admin'] },
    notifications: { endpoints: [{ name: 'flaky', url, maxattempts: 2, ...quick }] }
  }
  await app.register(registry, options)
  await app.ready()
  t.teardown(async () => { await app.close() })
  const admin = { authorization: `Basic ${Buffer.from('admin:secret-admin').toString('base64')}` }
  const user = { authorization: `Basic ${Buffer.from('user:secret-user').toString('base64')}` }
  const blob = blobOf('given up on')
  t.equal((await app.inject({ method: 'POST', url: urls.blobUpload('dead/app', { digest: blob.digest }), payload: blob.content, headers: { ...user, 'content-type': 'application/octet-stream' } })).statusCode, 201, 'the push succeeds')
  await buried()
  const deadLetters = '/v2/_oci/admin/notifications/deadletters'
  t.equal((await app.inject({ method: 'GET', url: deadLetters, headers: user })).statusCode, 403, 'admins only')
  t.equal((await app.inject({ method: 'GET', url: deadLetters })).statusCode, 401)
  const listed = await app.inject({ method: 'GET', url: deadLetters, headers: admin })
  t.equal(listed.statusCode, 200)
  const letters = (listed.json() as { deadletters: Array<{ endpoint: string, attempts: number, lastError: string, type: string, event: ReceivedEvent }> }).deadletters
  t.match(letters, [{ endpoint: 'flaky', attempts: 2, lastError: 'answered 503', type: 'blob.pushed', event: { action: 'push', target: { digest: blob.digest } } }])

  receiver.status = 200
  const replayed = await app.inject({ method: 'POST', url: `${deadLetters}/replay?endpoint=flaky`, headers: admin })
  t.same(replayed.json(), { replayed: 1 })
  await receiver.until(() => receiver.events().length >= 1)
  t.equal(receiver.events()[0]?.id, letters[0]?.event.id, 'the same event, with its id')
  t.same((await app.inject({ method: 'GET', url: deadLetters, headers: admin })).json(), { deadletters: [] }, 'nothing left')
})

t.test('options: defaults, distribution\'s durations, duplicate names; retry delays; outbox paths', async (t) => {
  const resolved = resolveNotifications({ endpoints: [{ name: 'a', url: 'http://x/', timeout: '1s', backoff: '250ms', threshold: 2 }, { name: 'b', url: 'http://y/', disabled: true }] })
  t.equal(resolved.endpoints.length, 1, 'disabled endpoints are left out')
  t.match(resolved.endpoints[0], { timeoutMs: 1000, backoffMs: 250, threshold: 2, maxAttempts: 20, maxBackoffMs: 300_000, format: 'envelope' })
  t.throws(() => resolveNotifications({ endpoints: [{ name: 'a', url: 'http://x/' }, { name: 'a', url: 'http://y/' }] }), /two endpoints are named 'a'/)
  const endpoint = resolved.endpoints[0] as Parameters<typeof retryDelay>[0]
  t.same([1, 2, 3, 4, 5].map((failures) => retryDelay(endpoint, failures)), [0, 250, 500, 1000, 2000], 'at once below the threshold, then doubling')
  t.equal(retryDelay(endpoint, 1000), 300_000, 'bounded')
  t.equal(pathFor({ kind: 'notificationEntry', endpoint: 'ci', key: 'k1' }), '/docker/registry/v2/_oci/notifications/ci/outbox/k1')
  t.equal(pathFor({ kind: 'notificationLease', endpoint: 'my hook' }), '/docker/registry/v2/_oci/notifications/x-6d7920686f6f6b/lease', 'any name is a path component')
  t.not(pathFor({ kind: 'notificationLease', endpoint: 'x-6d7920686f6f6b' }), pathFor({ kind: 'notificationLease', endpoint: 'my hook' }), 'and never another name\'s')
  const app = Fastify()
  await t.rejects(async () => { await app.register(registry, { notifications: { endpoints: [{ name: 'a', url: 'ftp://x' }] } }).ready() }, /notifications\/endpoints\/0\/url/)
})
