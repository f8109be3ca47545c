/**
 * The integrity scrub: a byte flipped in a stored layer is found and quarantined (moved aside),
 * pulls answer 404 instead of wrong bytes, a re-push stores it again, and it is reported in the
 * log, the admin API and as events. Later runs are incremental; the throttle holds; the command
 * line and the config file reach it.
 */

import t from 'tap'
import { PassThrough } from 'node:stream'
import { readFile, writeFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { urls, pushBlob, prepareImage, putManifest } from '../helpers.js'
import { pathFor, digestParts } from '../../lib/storage/paths.js'
import { globPattern, scrub } from '../../lib/lifecycle/scrub.js'
import type { RegistryEvent } from '../../lib/events.js'
import type { ScrubReport } from '../../lib/lifecycle/reports.js'
import { scrubMain } from '../../examples/lifecycle-cli.js'
import { parseConfig } from '../../examples/config.js'
import { adminApp, USER } from './admin.js'
import type { FastifyInstance } from 'fastify'

function dataFile (root: string, digest: string): string {
  return join(root, pathFor({ kind: 'blobData', ...digestParts(digest) }))
}

/** Starts a scrub through the admin API and resolves to its report, from the `scrub.completed` event. */
async function scrubThroughApi (app: FastifyInstance, query = ''): Promise<ScrubReport> {
  const completed = new Promise<ScrubReport>((resolve) => {
    const stop = app.ociRegistry.events.on('scrub.completed', (event) => { stop(); resolve(event.report) })
  })
  const started = await app.inject({ method: 'POST', url: `/v2/_oci/admin/scrub${query}` })
  t.equal(started.statusCode, 202, started.body)
  const report = await completed
  t.equal(started.json().id, report.id, 'the POST names the run its report comes from')
  return report
}

function captured (): { output: { stdout: (text: string) => void, stderr: (text: string) => void }, out: string[], err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { output: { stdout: (text) => out.push(text), stderr: (text) => err.push(text) }, out, err }
}

t.test('a flipped byte: quarantine, 404 on pull, re-push, log, admin API, events', async (t) => {
  const log = new PassThrough()
  const lines: Array<Record<string, unknown>> = []
  log.on('data', (chunk: Buffer) => { for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line)) })
  const { app, root } = await adminApp(t, { logTo: log })
  const events: RegistryEvent[] = []
  app.ociRegistry.events.on('blob.quarantined', (event) => { events.push(event) })
  app.ociRegistry.events.on('scrub.completed', (event) => { events.push(event) })

  const image = await prepareImage(app, 'scrub/app', { seed: 'scrubbed' })
  t.equal((await putManifest(app, 'scrub/app', 'v1', image.manifest)).statusCode, 201)
  const layer = image.layers[0] as string
  const good = await readFile(dataFile(root, layer))
  t.equal((await app.inject({ method: 'GET', url: urls.blob('scrub/app', layer) })).statusCode, 200, 'pulled once: its size is cached')

  // Bit rot: same size, one byte different.
  const rotten = Buffer.from(good)
  rotten[3] = (rotten[3] as number) ^ 0x20
  await writeFile(dataFile(root, layer), rotten)

  const report = await scrubThroughApi(app)
  t.match(report, { trigger: 'admin', blobsChecked: 4, blobsSkipped: 0, manifestsChecked: 1, corrupt: [layer], missingReferences: [`scrub/app@${image.digest} -> ${layer}`] })
  t.equal(report.bytesChecked, image.manifest.length + (await Promise.all([image.config, ...image.layers].map(async (digest) => digest === layer ? rotten.length : (await stat(dataFile(root, digest))).size))).reduce((a, b) => a + b, 0))

  // Quarantined: moved aside, with its bytes as found.
  t.same(await readFile(join(root, pathFor({ kind: 'quarantinedBlob', ...digestParts(layer) }))), rotten)
  await t.rejects(stat(dataFile(root, layer)), { code: 'ENOENT' })

  // Pulls answer 404, not wrong bytes.
  const pulled = await app.inject({ method: 'GET', url: urls.blob('scrub/app', layer) })
  t.equal(pulled.statusCode, 404)
  t.equal(pulled.json().errors[0].code, 'BLOB_UNKNOWN')
  t.equal((await app.inject({ method: 'HEAD', url: urls.blob('scrub/app', layer) })).statusCode, 404)

  // Events and the log.
  t.match(events.map((event) => event.type), ['blob.quarantined', 'scrub.completed'])
  t.match(events[0], { type: 'blob.quarantined', digest: layer, reason: /does not match/ })
  t.match(events[1], { type: 'scrub.completed', report: { id: report.id } })
  t.ok(lines.some((line) => line.digest === layer && String(line.msg).includes('quarantined') && line.level === 40), 'a warning names the blob')
  t.ok(lines.some((line) => line.msg === 'scrub completed'), 'the run is logged')

  // The admin API has the report.
  const runs = await app.inject({ method: 'GET', url: '/v2/_oci/admin/scrub' })
  t.equal(runs.statusCode, 200)
  t.same(runs.json(), { running: null, reports: [report] })
  t.equal((await app.inject({ method: 'GET', url: '/v2/_oci/admin/scrub', headers: { authorization: USER } })).statusCode, 403, 'for administrators only')
  t.equal((await app.inject({ method: 'POST', url: '/v2/_oci/admin/scrub', headers: { authorization: USER } })).statusCode, 403)

  // The next push of the digest uploads it again, and it pulls whole.
  t.equal(await pushBlob(app, 'scrub/app', good), layer)
  const again = await app.inject({ method: 'GET', url: urls.blob('scrub/app', layer) })
  t.equal(again.statusCode, 200)
  t.same(again.rawPayload, good)

  // Incremental: only the re-pushed blob is hashed again; nothing is wrong any more.
  const second = await scrubThroughApi(app)
  t.match(second, { blobsChecked: 1, blobsSkipped: 3, bytesChecked: good.length, corrupt: [], missingReferences: [] })
  const full = await scrubThroughApi(app, '?full=true')
  t.match(full, { blobsChecked: 4, blobsSkipped: 0, corrupt: [] })
  t.same((await app.inject({ method: 'GET', url: '/v2/_oci/admin/scrub' })).json().reports.map((kept: ScrubReport) => kept.id), [full.id, second.id, report.id], 'newest first')
})

t.test('a missing child of an index and a glob of repositories', async (t) => {
  const { app, root } = await adminApp(t)
  const child = await prepareImage(app, 'glob/one/app', { seed: 'child' })
  t.equal((await putManifest(app, 'glob/one/app', child.digest, child.manifest)).statusCode, 201)
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: child.digest, size: child.manifest.length }] }))
  t.equal((await putManifest(app, 'glob/one/app', 'multi', index, 'application/vnd.oci.image.index.v1+json')).statusCode, 201)
  await pushBlob(app, 'other', Buffer.from('not in the glob'))
  // The child's revision disappears behind the registry's back.
  const { rm } = await import('node:fs/promises')
  await rm(join(root, pathFor({ kind: 'manifestRevision', name: 'glob/one/app', ...digestParts(child.digest) })), { recursive: true })

  const report = await scrub(app.ociRegistry, { trigger: 'cli', repository: 'glob/**' })
  t.equal(report.manifestsChecked, 1, 'the index; its child is gone')
  t.same(report.missingReferences, [`glob/one/app@${(await app.inject({ method: 'HEAD', url: urls.manifest('glob/one/app', 'multi') })).headers['docker-content-digest']} -> ${child.digest}`])
  t.equal(report.blobsChecked, 4, 'the index and the blobs of the repository (config, two layers), not the other repository\'s')

  t.ok(globPattern('glob/*/app').test('glob/one/app'))
  t.notOk(globPattern('glob/*').test('glob/one/app'), '* stays inside a component')
  t.ok(globPattern('**').test('a/b/c'))
  t.notOk(globPattern('a.b').test('axb'), 'a dot is a dot')
})

t.test('the throttle holds a scrub to its bytes per second', async (t) => {
  const { app } = await adminApp(t)
  await pushBlob(app, 'slow', Buffer.alloc(30_000, 7))
  const report = await scrub(app.ociRegistry, { trigger: 'cli', full: true, bytesPerSecond: 60_000 })
  t.equal(report.bytesChecked, 30_000)
  t.ok(report.durationMs >= 450, `30,000 bytes at 60,000 per second took ${report.durationMs} ms`)
})

t.test('the command line: plain lines, --json, --repository, and the exit status', async (t) => {
  const { app, root } = await adminApp(t)
  const image = await prepareImage(app, 'cli/app', { seed: 'cli' })
  t.equal((await putManifest(app, 'cli/app', 'v1', image.manifest)).statusCode, 201)
  await app.close()

  const plain = captured()
  t.equal(await scrubMain(['--storage', 'filesystem', '--root', root], {}, plain.output), 0)
  t.match(plain.out.join(''), /^scrubbed 4 blobs \(\d+ bytes\), skipped 0 verified recently, checked 1 manifests in \d+ ms\n$/)
  t.match(plain.err.join(''), /^blobs 1\/4 verified sha256:[0-9a-f]{64}\n/)
  t.match(plain.err.join(''), new RegExp(`manifests 1/1 checked cli/app@${image.digest}\\n$`))

  const config = image.config
  const file = dataFile(root, config)
  const bytes = await readFile(file)
  bytes[0] = (bytes[0] as number) ^ 1
  await writeFile(file, bytes)
  const json = captured()
  t.equal(await scrubMain(['--json', '--full', '--repository', 'cli/*', '--storage', 'filesystem', '--root', root], {}, json.output), 1, 'exit status 1 when something is wrong')
  t.match(JSON.parse(json.out.join('')), { trigger: 'cli', blobsChecked: 4, corrupt: [config], missingReferences: [`cli/app@${image.digest} -> ${config}`] })

  // On a terminal: one line redrawn with the bar, the blobs done out of all and the bytes.
  const terminal = captured()
  const drawn: string[] = []
  t.equal(await scrubMain(['--full', '--repository', 'cli/*', '--storage', 'filesystem', '--root', root], {}, {
    ...terminal.output,
    progress: { write: (text: string) => drawn.push(text), isTTY: true, columns: 200 }
  }), 1)
  t.match(drawn.join(''), /\rscrub \[[= ]{20}\] blobs: \d\/4, [\d.]+ (B|KiB) walked/, 'a redrawn bar with the blobs done out of all')
  t.match(drawn.at(-1), '\r\x1b[K', 'the line is cleared at the end')
  t.equal(terminal.err.join(''), '', 'no plain lines beside the bar')

  const none = captured()
  t.equal(await scrubMain(['--repository', 'nothing/*', '--storage', 'filesystem', '--root', root], {}, none.output), 0)
  t.match(none.out.join(''), /^scrubbed 0 blobs/)
  const help = captured()
  t.equal(await scrubMain(['-h'], {}, help.output), 0)
  t.match(help.out.join(''), /Usage: fastify-oci-registry scrub/)
})

t.test('storage.scrub in the config file and its variables', async (t) => {
  const file = 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /srv/registry\n  scrub:\n    enabled: true\n    interval: 12h\n    bytespersecond: 5000000\n    reverify: 720h\n'
  const fromFile = parseConfig(['--config', 'config.yml'], {}, '/srv', () => file)
  t.same(fromFile.registry.scrub, { enabled: true, intervalSeconds: 12 * 3600, bytesPerSecond: 5_000_000, reverifySeconds: 720 * 3600 })
  t.same(fromFile.registry.storage, { driver: 'filesystem', root: '/srv/registry' }, '`scrub` is a setting of storage, not a driver')
  t.equal(fromFile.notices, undefined)
  t.same(parseConfig([], { REGISTRY_STORAGE_SCRUB_ENABLED: 'true', REGISTRY_STORAGE_SCRUB_INTERVAL: '2h', REGISTRY_STORAGE_SCRUB_BYTESPERSECOND: '1000' }).registry.scrub, { enabled: true, intervalSeconds: 7200, bytesPerSecond: 1000 })
  t.throws(() => parseConfig([], { REGISTRY_STORAGE_SCRUB_INTERVAL: '10s' }), /REGISTRY_STORAGE_SCRUB_INTERVAL/, 'an interval below a minute is refused')
  t.equal(parseConfig([], {}).registry.scrub, undefined)
})

t.test('a scheduled scrub runs on its interval', async (t) => {
  const { app } = await adminApp(t, { scrub: { enabled: true, intervalSeconds: 1 } })
  await pushBlob(app, 'scheduled', Buffer.from('checked on schedule'))
  // The schedule's timer does not hold the process open (a server's socket does): this does, until the run is seen.
  const holdOpen = setInterval(() => {}, 60_000)
  const report = await new Promise<ScrubReport>((resolve) => {
    const stop = app.ociRegistry.events.on('scrub.completed', (event) => { stop(); resolve(event.report) })
  }).finally(() => { clearInterval(holdOpen) })
  t.match(report, { trigger: 'schedule', blobsChecked: 1, corrupt: [] })
})
