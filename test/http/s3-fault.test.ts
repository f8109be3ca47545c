/**
 * The S3 service going away mid-push: the client gets a clean UNAVAILABLE, nothing hangs, and
 * once the service is back the upload resumes from what was stored before the failure.
 */

import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import registry from '../../plugins/registry.js'
import { digestOf } from '../../lib/digest.js'
import { startS3Server } from '../s3.js'
import { locationPath, urls } from '../helpers.js'

const MiB = 1024 * 1024
const octet = { 'content-type': 'application/octet-stream' }

interface Reply { status: number, headers: http.IncomingHttpHeaders, body: string }

/** A request whose body is written in pieces, with `between` run after the first piece. */
async function send (base: string, method: string, path: string, pieces: Buffer[], headers: Record<string, string>, between?: () => Promise<void>): Promise<Reply> {
  return await new Promise((resolve, reject) => {
    const length = pieces.reduce((sum, piece) => sum + piece.length, 0)
    const request = http.request(new URL(path, base), { method, headers: { ...headers, 'content-length': String(length) } }, (response) => {
      let body = ''
      response.setEncoding('utf8').on('data', (chunk: string) => { body += chunk })
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }))
    })
    // The server may answer and close before the whole body is sent: that is its answer.
    request.on('error', reject)
    ;(async () => {
      for (const [i, piece] of pieces.entries()) {
        if (!request.write(piece)) await new Promise((resolve) => request.once('drain', resolve))
        if (i === 0) await between?.()
      }
      request.end()
    })().catch(reject)
  })
}

t.test('the S3 server stopped mid-push: a clean 503, then the upload resumes', { timeout: 180_000 }, async (t) => {
  const s3 = await startS3Server(t)
  const bucket = await s3.createBucket()
  const logs: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>)
      }
      callback()
    }
  })
  const app = Fastify({ logger: { level: 'warn', stream } })
  await app.register(registry, { storage: { driver: 's3', ...s3.driverOptions(bucket, { maxAttempts: 3 }) } })
  t.teardown(() => app.close())
  const base = await app.listen({ host: '127.0.0.1', port: 0 })

  const first = randomBytes(6 * MiB)
  const second = randomBytes(7 * MiB)
  const content = Buffer.concat([first, second])
  const digest = digestOf(content)
  const post = await send(base, 'POST', urls.blobUpload('fault/repo'), [], {})
  t.equal(post.status, 202)
  let location = locationPath(post.headers.location)
  const patch = await send(base, 'PATCH', location, [first], { ...octet, 'content-range': `0-${first.length - 1}` })
  t.equal(patch.status, 202, 'the first chunk is stored')
  location = locationPath(patch.headers.location)

  // The S3 server dies after the first MiB of the second chunk has reached the registry.
  const failed = await send(base, 'PATCH', location, [second.subarray(0, MiB), second.subarray(MiB)],
    { ...octet, 'content-range': `${first.length}-${content.length - 1}` }, async () => { await s3.stop() })
  t.equal(failed.status, 503, 'the client gets 503')
  t.same(JSON.parse(failed.body).errors.map((error: { code: string }) => error.code), ['UNAVAILABLE'], 'with the spec error body')
  t.equal(failed.headers['retry-after'], '5', 'and a hint to retry')
  const status = await send(base, 'GET', location, [], {})
  t.equal(status.status, 503, 'while S3 is down, the upload status is 503 too, at once')
  const logged = logs.find((line) => line.msg === 'request failed')
  t.match(logged, { err: { type: 'StorageUnavailableError' } }, 'the failure is logged with the storage error')

  await s3.start()
  const resumed = await send(base, 'GET', location, [], {})
  t.equal(resumed.status, 204, 'once S3 is back the upload is there')
  t.equal(resumed.headers.range, `0-${first.length - 1}`, 'holding the first chunk only: the failed one left nothing')
  const again = await send(base, 'PATCH', location, [second], { ...octet, 'content-range': `${first.length}-${content.length - 1}` })
  t.equal(again.status, 202, 'the second chunk is sent again')
  const finish = locationPath(again.headers.location)
  const put = await send(base, 'PUT', `${finish}${finish.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`, [], {})
  t.equal(put.status, 201, `the upload completes: ${put.body}`)
  const get = await fetch(new URL(urls.blob('fault/repo', digest), base))
  t.equal(createHash('sha256').update(Buffer.from(await get.arrayBuffer())).digest('hex'), digest.slice(7), 'and the blob is whole')
})
