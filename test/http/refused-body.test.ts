/**
 * A request refused before its body is read: a small rest of the body is read and dropped so
 * that the client, still sending, reads the error answer on a connection that stays usable;
 * a large one is not read, and the connection is closed. (Found by the differential corpus:
 * a 5 MiB manifest sent to a separate server process got a reset connection about every other
 * time instead of the 413.) The same holds when reading stops midway: a size limit reached, or
 * storage failing under an upload.
 */

import t, { type Test } from 'tap'
import net from 'node:net'
import Fastify from 'fastify'
import registry from '../../plugins/registry.js'
import { InMemoryDriver } from '../../lib/storage/drivers/inmemory.js'
import type { StorageDriver } from '../../lib/storage/driver.js'
import { build, urls } from '../helpers.js'
import { DRAIN_LIMIT } from '../../plugins/errors.js'

interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
}

/** A raw HTTP/1.1 connection: write bytes, read whole responses (Content-Length framed), see it close. */
class Connection {
  private buffer = Buffer.alloc(0)
  private waiting: (() => void) | undefined
  closed = false
  /** The error the connection failed with (a reset), if any. */
  failure: Error | undefined

  constructor (readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk])
      this.waiting?.()
    })
    socket.on('close', () => {
      this.closed = true
      this.waiting?.()
    })
    socket.on('error', (error) => { this.failure = error })
  }

  /** `allowHalfOpen`: keep sending after the server's FIN, as an HTTP client still writing a body does. */
  static async open (port: number, options: { allowHalfOpen?: boolean } = {}): Promise<Connection> {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: options.allowHalfOpen ?? false })
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
    return new Connection(socket)
  }

  async write (bytes: Buffer | string): Promise<void> {
    await new Promise<void>((resolve, reject) => this.socket.write(bytes, (error) => { if (error === undefined || error === null) resolve(); else reject(error) }))
  }

  async response (): Promise<RawResponse> {
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n')
      if (end !== -1) {
        const [statusLine, ...lines] = this.buffer.subarray(0, end).toString('latin1').split('\r\n')
        const headers: Record<string, string> = {}
        for (const line of lines) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim()
        const length = Number(headers['content-length'] ?? 0)
        if (this.buffer.length >= end + 4 + length) {
          const body = this.buffer.subarray(end + 4, end + 4 + length).toString('utf8')
          this.buffer = this.buffer.subarray(end + 4 + length)
          return { status: Number(statusLine?.split(' ')[1]), headers, body }
        }
      }
      if (this.closed) throw new Error('the connection closed before a whole response')
      await new Promise<void>((resolve) => { this.waiting = resolve })
    }
  }

  async closing (): Promise<void> {
    while (!this.closed) await new Promise<void>((resolve) => { this.waiting = resolve })
  }
}

/** A connection to a listening app; both are closed when the test ends. */
async function connectTo (t: Test, options: Parameters<typeof build>[2] = {}): Promise<Connection> {
  const app = await build(t, 'inmemory', options)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const connection = await Connection.open((app.server.address() as net.AddressInfo).port)
  t.teardown(() => connection.socket.destroy())
  return connection
}

const manifestHead = (length: number): string =>
  `PUT /v2/refused/body/manifests/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: ${length}\r\n\r\n`

t.test('a manifest over the limit, but not over the drain limit: 413, and the connection stays usable', async (t) => {
  const connection = await connectTo(t)
  const body = Buffer.alloc(5 * 1024 * 1024, 'x')
  await connection.write(manifestHead(body.length))
  // The whole body goes out even though the answer may already be on its way back.
  await connection.write(body)
  const refused = await connection.response()
  t.equal(refused.status, 413)
  t.match(JSON.parse(refused.body), { errors: [{ code: 'MANIFEST_INVALID' }] })
  t.not(refused.headers.connection, 'close', 'no close')
  await connection.write('GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
  const next = await connection.response()
  t.equal(next.status, 200, 'the same connection serves the next request')
})

t.test('a manifest over the limit on a connection the client asked to close: 413, and the client can send the rest of its body', async (t) => {
  // Node closed such a connection as soon as the answer was out; the client's next bytes then
  // met a reset, which could erase the 413 before the client read it (the differential corpus
  // saw about one connection in three fail so against a server in another process).
  const app = await build(t, 'inmemory')
  await app.listen({ host: '127.0.0.1', port: 0 })
  const connection = await Connection.open((app.server.address() as net.AddressInfo).port, { allowHalfOpen: true })
  t.teardown(() => connection.socket.destroy())
  const body = Buffer.alloc(5 * 1024 * 1024, 'x')
  await connection.write(manifestHead(body.length).replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n'))
  await connection.write(body.subarray(0, 1))
  // The answer comes first, before the client sends the rest: the worst order for a reset.
  const refused = await connection.response()
  t.equal(refused.status, 413)
  t.equal(refused.headers.connection, 'close', 'the connection closes, as the client asked')
  for (let offset = 1; offset < body.length; offset += 256 * 1024) {
    await connection.write(body.subarray(offset, offset + 256 * 1024))
  }
  connection.socket.end()
  await connection.closing()
  t.equal(connection.failure, undefined, 'the server read the whole body before closing: no reset')
})

t.test('a refused caller\'s body is never read: 401, then the connection closes', async (t) => {
  const { htpasswdFile } = await import('../auth/fixtures.js')
  const path = await htpasswdFile(t, { alice: 'wonderland' })
  const connection = await connectTo(t, { auth: { mode: 'htpasswd', path } })
  await connection.write(manifestHead(1024))
  const refused = await connection.response()
  t.equal(refused.status, 401)
  t.equal(refused.headers.connection, 'close')
  await connection.closing()
  t.ok(connection.closed, 'closed without waiting for the body')
})

t.test('a body over the drain limit is not read: the error, then the connection closes', async (t) => {
  const connection = await connectTo(t)
  await connection.write(manifestHead(DRAIN_LIMIT + 1))
  await connection.write(Buffer.alloc(1024, 'x'))
  const refused = await connection.response()
  t.equal(refused.status, 413)
  t.equal(refused.headers.connection, 'close')
  await connection.closing()
  t.ok(connection.closed, 'closed without reading the rest')
})

t.test('a chunked manifest over the limit (no Content-Length): 413, then the connection closes', async (t) => {
  const connection = await connectTo(t)
  await connection.write('PUT /v2/refused/body/manifests/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nTransfer-Encoding: chunked\r\n\r\n')
  const chunk = Buffer.alloc(1024 * 1024, 'x')
  // Past the 4 MiB limit; the client stops there, as one would that reads the answer while sending.
  for (let i = 0; i < 5; i++) await connection.write(Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]))
  const refused = await connection.response()
  t.equal(refused.status, 413)
  t.match(JSON.parse(refused.body), { errors: [{ code: 'MANIFEST_INVALID' }] })
  t.equal(refused.headers.connection, 'close', 'the rest of the body is not read')
  await connection.closing()
  t.ok(connection.closed)
})

t.test('storage failing mid-body: 500 with the storage error logged, and the connection serves the next request', async (t) => {
  // Upload data writes fail after 256 KiB, as a full disk or an unreachable bucket would.
  const inner = new InMemoryDriver()
  const driver = Object.create(inner) as StorageDriver
  driver.writer = async (path: string, append: boolean) => {
    const writer = await inner.writer(path, append)
    if (!path.includes('/_uploads/')) return writer
    let written = 0
    const write = writer.write.bind(writer)
    writer.write = async (chunk: Uint8Array) => {
      written += chunk.byteLength
      if (written > 256 * 1024) throw new Error('no space left on the test device')
      await write(chunk)
    }
    return writer
  }
  const logged: Array<Record<string, unknown>> = []
  const app = Fastify({ logger: { level: 'error', stream: { write: (line: string) => { logged.push(JSON.parse(line) as Record<string, unknown>) } } } })
  await app.register(registry, { storage: driver })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const connection = await Connection.open((app.server.address() as net.AddressInfo).port)
  t.teardown(() => connection.socket.destroy())

  await connection.write(`POST ${urls.blobUpload('failing/storage')} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n`)
  const started = await connection.response()
  t.equal(started.status, 202)
  const body = Buffer.alloc(4 * 1024 * 1024, 'x')
  const location = new URL(started.headers.location as string, 'http://127.0.0.1')
  await connection.write(`PATCH ${location.pathname}${location.search} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n`)
  await connection.write(body)
  const failed = await connection.response()
  t.equal(failed.status, 500, 'an answer, not a silent close')
  t.match(JSON.parse(failed.body), { errors: [{ code: 'UNKNOWN' }] })
  t.ok(logged.some((line) => line.msg === 'request failed' && JSON.stringify(line.err).includes('no space left')), 'the storage error is logged as such')
  await connection.write('GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
  t.equal((await connection.response()).status, 200, 'the rest of the body was read and dropped; the connection serves the next request')
})
