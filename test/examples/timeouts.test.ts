/**
 * HTTP timeouts over real sockets: a client that stalls mid-headers, trickles headers forever,
 * or stalls mid-body is disconnected after the configured time; a client that keeps sending a
 * body slowly, for longer than the idle timeout, completes.
 */

import t, { type Test } from 'tap'
import { createHash } from 'node:crypto'
import net from 'node:net'
import { buildServer } from '../../examples/server.js'
import { parseConfig, type Timeouts } from '../../examples/config.js'

/** A server with short timeouts on a free port; its port. */
async function listen (t: Test, flags: string[]): Promise<number> {
  const config = parseConfig(['--storage', 'inmemory', ...flags], {})
  const app = buildServer(config, { level: 'silent', stream: process.stderr })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  return (app.server.address() as net.AddressInfo).port
}

interface Outcome { closedAfterMs: number, received: string }

/**
 * Opens a connection, runs `client` on it, and resolves when the server closes it; fails after
 * `limitMs` (the connection is then destroyed), so a missing timeout cannot hang the test.
 */
async function converse (port: number, client: (socket: net.Socket) => void, limitMs: number): Promise<Outcome> {
  const socket = net.connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  const started = Date.now()
  let received = ''
  socket.setEncoding('utf8').on('data', (chunk: string) => { received += chunk })
  socket.on('error', () => {})
  client(socket)
  return await new Promise((resolve, reject) => {
    const limit = setTimeout(() => {
      socket.destroy()
      reject(new Error(`the server kept the connection open for ${limitMs} ms; received: ${JSON.stringify(received)}`))
    }, limitMs)
    socket.once('close', () => {
      clearTimeout(limit)
      resolve({ closedAfterMs: Date.now() - started, received })
    })
  })
}

/** Writes `bytes` one at a time, every `everyMs`; returns a function that stops it. */
function trickle (socket: net.Socket, bytes: Buffer, everyMs: number, onDone: () => void = () => {}): () => void {
  let index = 0
  const timer = setInterval(() => {
    if (index >= bytes.length || socket.destroyed) {
      clearInterval(timer)
      if (index >= bytes.length) onDone()
      return
    }
    socket.write(bytes.subarray(index, index + 1))
    index++
  }, everyMs)
  socket.once('close', () => clearInterval(timer))
  return () => clearInterval(timer)
}

const blob = Buffer.from('slow but steady')
const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`
const uploadHead = `POST /v2/slow/app/blobs/uploads/?digest=${digest} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${blob.length}\r\n\r\n`

t.test('the timeouts reach the server', async (t) => {
  const config = parseConfig(['--header-timeout', '1s', '--idle-timeout', '90s', '--keep-alive-timeout', '5s', '--request-timeout', '1h'], {})
  t.same(config.timeouts, { headerMs: 1000, idleMs: 90_000, keepAliveMs: 5000, requestMs: 3_600_000 } satisfies Timeouts)
  const app = buildServer({ ...config, logLevel: 'silent' })
  t.teardown(() => app.close())
  await app.ready()
  t.equal(app.server.headersTimeout, 1000)
  t.equal(app.server.timeout, 90_000, 'the idle timeout is the socket timeout')
  t.equal(app.server.keepAliveTimeout, 5000)
  t.equal(app.server.requestTimeout, 3_600_000)
  const defaults = buildServer({ logLevel: 'silent', registry: {} })
  t.teardown(() => defaults.close())
  await defaults.ready()
  t.equal(defaults.server.requestTimeout, 0, 'no bound on a whole request by default')
  t.equal(defaults.server.timeout, 300_000, 'five idle minutes by default')
})

t.test('a client stalled mid-headers is disconnected after the header timeout', async (t) => {
  const port = await listen(t, ['--header-timeout', '1s', '--idle-timeout', '1m'])
  const outcome = await converse(port, (socket) => { socket.write('GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n') }, 6000)
  t.ok(outcome.closedAfterMs >= 900, `closed after ${outcome.closedAfterMs} ms, not before the timeout`)
  t.match(outcome.received, /^HTTP\/1\.1 408 /, 'told 408 Request Timeout')
})

t.test('a client trickling headers without end is disconnected after the header timeout', async (t) => {
  const port = await listen(t, ['--header-timeout', '1s', '--idle-timeout', '1m'])
  const endless = Buffer.from(`GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'a'.repeat(1000)}`)
  const outcome = await converse(port, (socket) => { trickle(socket, endless, 100) }, 6000)
  t.ok(outcome.closedAfterMs >= 900, `closed after ${outcome.closedAfterMs} ms although it kept sending`)
})

t.test('a client stalled mid-body is disconnected after the idle timeout', async (t) => {
  const port = await listen(t, ['--idle-timeout', '1s'])
  const outcome = await converse(port, (socket) => { socket.write(uploadHead + blob.subarray(0, 4).toString()) }, 6000)
  t.ok(outcome.closedAfterMs >= 900, `closed after ${outcome.closedAfterMs} ms`)
  t.notMatch(outcome.received, /201 Created/, 'the upload did not complete')
})

t.test('a client sending slowly for longer than the idle timeout completes', async (t) => {
  const port = await listen(t, ['--idle-timeout', '1s', '--header-timeout', '1s'])
  // 15 bytes, one each 200 ms: three seconds in all, three times the idle timeout.
  const outcome = await converse(port, (socket) => {
    socket.write(uploadHead)
    trickle(socket, blob, 200, () => { socket.end() })
  }, 10_000)
  t.ok(outcome.closedAfterMs >= 2800, `took ${outcome.closedAfterMs} ms`)
  t.match(outcome.received, /^HTTP\/1\.1 201 Created/, 'the upload completed')
  t.match(outcome.received, new RegExp(`docker-content-digest: ${digest}`, 'i'))
})
