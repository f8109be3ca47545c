/**
 * The registry on OpenStack Swift's S3 API (stock Swift 2.30 with s3api, started by
 * test/swift.ts), unpatched: the S3 HTTP suite the fast tier runs on s3rver, the shipped
 * conformance checks, a 100 MiB blob pushed in three chunks, a skopeo round trip through the
 * example server, and two example server processes on one bucket behaving as one registry.
 */

import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import Fastify from 'fastify'
import registry from '../../plugins/registry.js'
import { digestOf } from '../../lib/digest.js'
import { formatResult, runConformance } from '../../lib/conformance/index.js'
import { S3Driver } from '../../lib/storage/drivers/s3.js'
import { s3HttpSuite } from '../http/s3-suite.js'
import { locationPath, urls } from '../helpers.js'
import { asOneRegistry, dataRemovedBehindTheirBacks, replica } from '../replicas.js'
import { sharedSwift, swiftCredentials } from '../swift.js'
import { requestLog, run, sha256File, startServer, tempDir } from './harness.js'
import { buildLargeImage } from './oci-layout.js'

const MiB = 1024 * 1024

// Swift's Python servers are slower than s3rver: the whole file may take longer than tap's default.
t.setTimeout(1_800_000)

const swift = await sharedSwift()
t.teardown(async () => { await swift.stop() })

async function storage (): Promise<{ driver: 's3' } & ReturnType<typeof swift.driverOptions>> {
  return { driver: 's3', ...swift.driverOptions(await swift.createBucket()) }
}

/** The example server's flags for a fresh bucket of this Swift. */
async function serverFlags (): Promise<string[]> {
  const { accessKeyId, secretAccessKey } = swiftCredentials()
  return ['--storage', 's3', '--s3-bucket', await swift.createBucket(), '--s3-endpoint', swift.endpoint, '--s3-region', swift.location,
    '--s3-force-path-style', '--s3-access-key', accessKeyId, '--s3-secret-key', secretAccessKey]
}

s3HttpSuite(t, storage)

t.test('the shipped conformance checks pass on Swift (deletes enabled)', async (t) => {
  const app = Fastify({ logger: false })
  await app.register(registry, { delete: true, storage: await storage() })
  t.teardown(async () => { await app.close() })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const report = await runConformance({ url })
  const failures = report.results.filter((result) => result.status !== 'pass').map(formatResult).join('\n\n')
  t.ok(report.summary.total > 100, `${report.summary.total} checks ran`)
  t.equal(report.summary.failed, 0, report.summary.failed === 0 ? 'no check failed' : `no check failed\n${failures}\n${swift.recentLogs()}`)
  t.equal(report.summary.unsupported, 0, `nothing unsupported\n${failures}`)
})

t.test('a 100 MiB blob pushed in three chunks', async (t) => {
  const app = Fastify({ logger: false })
  await app.register(registry, { storage: await storage() })
  t.teardown(async () => { await app.close() })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const content = randomBytes(100 * MiB)
  const digest = digestOf(content)
  const cuts = [0, 40 * MiB, 80 * MiB, content.length]
  const post = await fetch(new URL(urls.blobUpload('big/blob'), base), { method: 'POST' })
  t.equal(post.status, 202)
  let location = locationPath(post.headers.get('location') ?? undefined)
  for (let i = 0; i < 3; i++) {
    const chunk = content.subarray(cuts[i], cuts[i + 1])
    const range = { 'content-type': 'application/octet-stream', 'content-range': `${cuts[i] as number}-${(cuts[i + 1] as number) - 1}` }
    const last = i === 2
    const url = last ? `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}` : location
    const response = await fetch(new URL(url, base), { method: last ? 'PUT' : 'PATCH', headers: range, body: chunk })
    t.equal(response.status, last ? 201 : 202, `chunk ${i}: ${last ? 'the upload completes' : 'stored'} ${response.status >= 400 ? await response.text() : ''}`)
    if (!last) {
      location = locationPath(response.headers.get('location') ?? undefined)
      t.equal(response.headers.get('range'), `0-${(cuts[i + 1] as number) - 1}`)
    }
  }
  const get = await fetch(new URL(urls.blob('big/blob', digest), base))
  t.equal(get.status, 200)
  t.equal(createHash('sha256').update(Buffer.from(await get.arrayBuffer())).digest('hex'), digest.slice(7), 'the blob comes back whole')
  const ranged = await fetch(new URL(urls.blob('big/blob', digest), base), { headers: { range: `bytes=${60 * MiB}-${60 * MiB + 99}` } })
  t.equal(ranged.status, 206)
  t.ok(Buffer.from(await ranged.arrayBuffer()).equals(content.subarray(60 * MiB, 60 * MiB + 100)), 'and a range of it')
})

t.test('skopeo round trip through the example server on Swift', async (t) => {
  const work = await tempDir(t)
  const image = await buildLargeImage(work, 30 * MiB)
  const server = await startServer(t, [...await serverFlags(), '--delete'])
  const ref = (path: string): string => `docker://${server.host}/${path}`
  const skopeo = async (...args: string[]): Promise<string> => (await run('skopeo', args, { timeoutMs: 300_000 })).stdout

  await skopeo('copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${image.layout}:${image.tag}`, ref('swift/large:v1'))
  const info = JSON.parse(await skopeo('inspect', '--tls-verify=false', ref('swift/large:v1'))) as { Layers: string[] }
  t.same(info.Layers, [image.layer], 'inspect lists the layer pushed')

  const out = join(work, 'out')
  await skopeo('copy', '--src-tls-verify=false', ref('swift/large:v1'), `dir:${out}`)
  t.equal(await sha256File(join(out, image.layer.slice('sha256:'.length))), image.layer, 'the layer comes back byte for byte')

  const before = requestLog(server.service).length
  await skopeo('copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${image.layout}:${image.tag}`, ref('swift/large:v1'))
  t.same(requestLog(server.service).slice(before).filter((entry) => entry.url.includes('/blobs/uploads/')), [], 'a re-push uploads nothing')

  await skopeo('copy', '--src-tls-verify=false', '--dest-tls-verify=false', ref('swift/large:v1'), ref('swift/copy:v1'))
  const copied = JSON.parse(await skopeo('inspect', '--tls-verify=false', ref('swift/copy:v1'))) as { Layers: string[] }
  t.same(copied.Layers, [image.layer], 'a copy to another repository')

  await skopeo('delete', '--tls-verify=false', ref('swift/copy:v1'))
  const gone = await run('skopeo', ['inspect', '--tls-verify=false', ref('swift/copy:v1')], { allowFailure: true })
  t.match(gone.stderr, /manifest unknown/, 'deleted')
})

t.test('two replicas on one Swift bucket behave as one registry', { timeout: 600_000 }, async (t) => {
  const flags = [...await serverFlags(), '--delete', '--s3-root-directory', 'registry']
  const [one, two] = await Promise.all([replica(t, flags), replica(t, flags)])
  await asOneRegistry(t, one, two)
  const bucket = flags[flags.indexOf('--s3-bucket') + 1] as string
  const behind = new S3Driver(swift.driverOptions(bucket, { rootDirectory: 'registry' }))
  t.teardown(() => behind.close())
  await t.test('blob data removed behind their backs', async (t) => {
    await dataRemovedBehindTheirBacks(t, one, two, async (digest) => {
      const hex = digest.slice('sha256:'.length)
      await behind.delete(`/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}`)
    })
  })
})
