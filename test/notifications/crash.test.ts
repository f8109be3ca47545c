/**
 * Notifications survive a crash: with the receiver down, pushes to the example server succeed;
 * the server is killed with SIGKILL and started again on the same storage; once the receiver is
 * up, every event of every acknowledged push is delivered (repeats carry the same id).
 */

import t from 'tap'
import http from 'node:http'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startListening } from '../server-process.js'
import { freePort } from '../ports.js'
import { blobOf, tempDir, urls } from '../helpers.js'
import { digestOf } from '../../lib/digest.js'
import { Receiver } from './receiver.js'

interface Response { status: number, body: string }

async function request (base: string, method: string, path: string, body: Buffer, contentType: string): Promise<Response> {
  return await new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method, agent: false, headers: { 'content-type': contentType } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

t.test('events of pushes made while the receiver is down reach it after a SIGKILL and a restart', { timeout: 240_000 }, async (t) => {
  const dir = await tempDir(t)
  const root = join(dir, 'data')
  const port = await freePort()
  const config = join(dir, 'config.yml')
  await writeFile(config, `version: 0.1
notifications:
  endpoints:
    - name: ci
      url: http://127.0.0.1:${port}/events
      timeout: 2s
      threshold: 0
      backoff: 20ms
      maxbackoff: 200ms
      maxattempts: 100000
`)
  const args = ['--config', config, '--port', '0', '--root', root]
  const first = await startListening(t, args)
  const pushed: string[] = []
  for (let i = 0; i < 5; i++) {
    const blob = blobOf(`crash ${i}`)
    const response = await request(first.base, 'POST', urls.blobUpload('crash/app', { digest: blob.digest }), blob.content, 'application/octet-stream')
    t.equal(response.status, 201, `push ${i} succeeds with the receiver down`)
    pushed.push(blob.digest)
  }
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: pushed[0], size: 7 },
    layers: pushed.slice(1).map((digest) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: 7 }))
  }))
  t.equal((await request(first.base, 'PUT', urls.manifest('crash/app', 'v1'), manifest, 'application/vnd.oci.image.manifest.v1+json')).status, 201)
  pushed.push(digestOf(manifest))

  first.server.kill('SIGKILL')
  t.match(await first.server.exited, { signal: 'SIGKILL' })

  const receiver = new Receiver()
  await receiver.listen(port)
  t.teardown(async () => { await receiver.close() })
  await startListening(t, args)
  const delivered = (): string[] => [...new Map(receiver.events().map((event) => [event.id, event.target.digest as string])).values()]
  await receiver.until(() => delivered().length >= pushed.length)
  t.same(delivered(), pushed, 'every event once its id is de-duplicated, in push order')
  t.match(receiver.events().at(-1), { action: 'push', target: { repository: 'crash/app', tag: 'v1', mediaType: 'application/vnd.oci.image.manifest.v1+json' } })
})
