/**
 * Upload properties that only a real server process can show: resuming after a crash, nothing
 * torn by a crash mid-push, a client that hangs up mid-body, and flat memory whatever the size.
 */

import t from 'tap'
import http from 'node:http'
import { createHash, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { once } from 'node:events'
import { startListening } from '../server-process.js'
import { tempDir, urls } from '../helpers.js'
import { digestOf } from '../../lib/digest.js'
import { FilesystemDriver } from '../../lib/storage/drivers/filesystem.js'
import { pathFor } from '../../lib/storage/paths.js'

t.jobs = 2

interface Response { status: number, headers: http.IncomingHttpHeaders, body: Buffer }

/** One request on a fresh connection; `body` may be a buffer or a generator of chunks. */
async function request (base: string, method: string, path: string, body?: Buffer | AsyncIterable<Buffer>, headers: Record<string, string> = {}): Promise<Response> {
  return await new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method, agent: false, headers: { 'content-type': 'application/octet-stream', ...headers } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    if (body === undefined) {
      req.end()
    } else if (Buffer.isBuffer(body)) {
      req.end(body)
    } else {
      const pump = async (): Promise<void> => {
        for await (const chunk of body) {
          if (!req.write(chunk)) await once(req, 'drain')
        }
        req.end()
      }
      pump().catch(reject)
    }
  })
}

function locationPath (headers: http.IncomingHttpHeaders): string {
  const url = new URL(headers.location as string, 'http://placeholder')
  return url.pathname + url.search
}

/** Resident set size of a process, in bytes. */
async function rssOf (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1]
  return Number(kb) * 1024
}

/** Samples a process's RSS every 50 ms until stopped; resolves to the peak. */
function sampleRss (pid: number): { stop: () => Promise<number> } {
  const state = { peak: 0, running: true }
  const loop = (async () => {
    while (state.running) {
      state.peak = Math.max(state.peak, await rssOf(pid))
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })()
  return { stop: async () => { state.running = false; await loop; return state.peak } }
}

t.test('an upload continues after the server is killed between two PATCHes', async (t) => {
  const root = await tempDir(t)
  const content = randomBytes(3 * 1024 * 1024)
  const digest = digestOf(content)
  const first = await startListening(t, ['--port', '0', '--root', root])
  const post = await request(first.base, 'POST', urls.blobUpload('resume/me'))
  t.equal(post.status, 202)
  const patch = await request(first.base, 'PATCH', locationPath(post.headers), content.subarray(0, 1024 * 1024), { 'content-range': `0-${1024 * 1024 - 1}` })
  t.equal(patch.status, 202)
  first.server.kill('SIGKILL')
  await first.server.exited

  const second = await startListening(t, ['--port', '0', '--root', root])
  const status = await request(second.base, 'GET', locationPath(patch.headers))
  t.equal(status.status, 204)
  t.equal(status.headers.range, `0-${1024 * 1024 - 1}`, 'the new process sees the bytes of the old one')
  const rest = await request(second.base, 'PATCH', locationPath(status.headers), content.subarray(1024 * 1024), { 'content-range': `${1024 * 1024}-${content.length - 1}` })
  t.equal(rest.status, 202)
  const put = await request(second.base, 'PUT', `${locationPath(rest.headers)}?digest=${encodeURIComponent(digest)}`)
  t.equal(put.status, 201, put.body.toString())
  const pulled = await request(second.base, 'GET', urls.blob('resume/me', digest))
  t.ok(pulled.body.equals(content), 'the right bytes, with the right digest')
  second.server.kill('SIGTERM')
  t.same(await second.server.exited, { code: 0, signal: null })

  const third = await startListening(t, ['--port', '0', '--root', root])
  const again = await request(third.base, 'GET', urls.blob('resume/me', digest))
  t.ok(again.body.equals(content), 'a committed blob survives a restart')
})

t.test('a crash mid-push leaves no torn blob or link, and the push can be redone', async (t) => {
  const root = await tempDir(t)
  const content = randomBytes(32 * 1024 * 1024)
  const digest = digestOf(content)
  const { server, base } = await startListening(t, ['--port', '0', '--root', root])
  let sent = 0
  const slowBody = (async function * () {
    for (let offset = 0; offset < content.length; offset += 1024 * 1024) {
      yield content.subarray(offset, offset + 1024 * 1024)
      sent += 1024 * 1024
      if (sent === 8 * 1024 * 1024) {
        // Half way through the body: the server dies.
        server.kill('SIGKILL')
        await server.exited
      }
    }
  })()
  await t.rejects(request(base, 'POST', urls.blobUpload('crash', { digest }), slowBody, { 'content-length': String(content.length) }))

  const driver = new FilesystemDriver({ root })
  await t.rejects(driver.stat(pathFor({ kind: 'blobData', algorithm: 'sha256', hex: digest.slice(7) })), { name: 'PathNotFoundError' }, 'no blob published')
  await t.rejects(driver.stat(pathFor({ kind: 'layerLink', name: 'crash', algorithm: 'sha256', hex: digest.slice(7) })), { name: 'PathNotFoundError' }, 'no link written')

  const restarted = await startListening(t, ['--port', '0', '--root', root])
  t.equal((await request(restarted.base, 'HEAD', urls.blob('crash', digest))).status, 404)
  const redo = await request(restarted.base, 'POST', urls.blobUpload('crash', { digest }), content)
  t.equal(redo.status, 201)
  const pulled = await request(restarted.base, 'GET', urls.blob('crash', digest))
  t.equal(createHash('sha256').update(pulled.body).digest('hex'), digest.slice(7))
})

t.test('a client that hangs up mid-body gets a clean close; the upload keeps what arrived and resumes', async (t) => {
  const root = await tempDir(t)
  const { server, base } = await startListening(t, ['--port', '0', '--root', root])
  const content = randomBytes(4 * 1024 * 1024)
  const post = await request(base, 'POST', urls.blobUpload('hangup'))
  const location = locationPath(post.headers)
  const isPatch = (line: { msg: string, req?: unknown }): boolean => line.msg === 'incoming request' && (line.req as { method?: string } | undefined)?.method === 'PATCH'
  const req = http.request(`${base}${location}`, { method: 'PATCH', agent: false, headers: { 'content-type': 'application/octet-stream', 'content-length': String(content.length) } })
  req.on('error', () => {})
  req.write(content.subarray(0, 1024 * 1024))
  // Hangs up once the server has the request, mid-body; then waits for the server to see it go.
  const [incoming] = await server.waitFor(isPatch)
  req.destroy()
  await server.waitFor((line) => line.reqId === incoming?.reqId && line.msg === 'client closed the request')
  const status = await request(base, 'GET', location)
  t.equal(status.status, 204, 'the upload still exists')
  const received = Number((status.headers.range as string).split('-')[1]) + 1
  t.ok(received <= 1024 * 1024, `offset ${received} is at most what was sent`)
  const rest = await request(base, 'PATCH', locationPath(status.headers), content.subarray(received), { 'content-range': `${received}-${content.length - 1}` })
  t.equal(rest.status, 202)
  const put = await request(base, 'PUT', `${locationPath(rest.headers)}?digest=${encodeURIComponent(digestOf(content))}`)
  t.equal(put.status, 201, 'finishes with the right digest after resuming')
  t.notOk(server.lines.some((line) => (line.level as number) >= 50), 'no error logged for a client that went away')
})

t.test('pushing and pulling 4 GiB keeps the server\'s memory flat, with slow clients both ways', async (t) => {
  // tmpfs when there is one: the property is the server's RSS, not the disk's speed.
  const root = await tempDir(t, 'oci-registry-big-', true)
  const { server, base } = await startListening(t, ['--port', '0', '--root', root])
  const pid = server.lines[0]?.pid as number
  // Warm up: one small push and pull, so that idle means "has served requests".
  await request(base, 'POST', urls.blobUpload('big', { digest: digestOf('warm') }), Buffer.from('warm'))
  await request(base, 'GET', urls.blob('big', digestOf('warm')))
  const idle = await rssOf(pid)

  const size = 4 * 1024 * 1024 * 1024
  const block = randomBytes(4 * 1024 * 1024)
  const hash = createHash('sha256')
  const sampler = sampleRss(pid)
  const body = async function * () {
    for (let offset = 0, i = 0; offset < size; offset += block.length, i++) {
      const chunk = Buffer.from(block)
      chunk.writeUInt32BE(i, 0)
      hash.update(chunk)
      yield chunk
      // A slow moment for the client now and then: the server must wait, not buffer.
      if (i % 256 === 255) await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  const post = await request(base, 'POST', urls.blobUpload('big'))
  const patch = await request(base, 'PATCH', locationPath(post.headers), body(), { 'transfer-encoding': 'chunked' })
  t.equal(patch.status, 202)
  const digest = `sha256:${hash.digest('hex')}`
  const put = await request(base, 'PUT', `${locationPath(patch.headers)}?digest=${encodeURIComponent(digest)}`)
  t.equal(put.status, 201, put.body.toString())
  const pushPeak = await sampler.stop()

  const pullSampler = sampleRss(pid)
  const pulled = createHash('sha256')
  let bytes = 0
  await new Promise<void>((resolve, reject) => {
    http.get(`${base}${urls.blob('big', digest)}`, { agent: false }, (res) => {
      let paused = false
      res.on('data', (chunk: Buffer) => {
        pulled.update(chunk)
        bytes += chunk.length
        // A slow reader: stop for a second after the first 256 MiB.
        if (!paused && bytes > 256 * 1024 * 1024) {
          paused = true
          res.pause()
          setTimeout(() => res.resume(), 1000)
        }
      })
      res.on('end', resolve)
      res.on('error', reject)
    }).on('error', reject)
  })
  const pullPeak = await pullSampler.stop()
  t.equal(bytes, size)
  t.equal(`sha256:${pulled.digest('hex')}`, digest, 'the pulled bytes have the pushed digest')
  const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`
  t.comment(`idle ${mb(idle)}, push peak ${mb(pushPeak)}, pull peak ${mb(pullPeak)}`)
  t.ok(pushPeak - idle < 64 * 1024 * 1024, `push stays within 64 MiB of idle (grew ${mb(pushPeak - idle)})`)
  t.ok(pullPeak - idle < 64 * 1024 * 1024, `pull stays within 64 MiB of idle (grew ${mb(pullPeak - idle)})`)
})
