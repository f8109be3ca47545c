/**
 * Clients that end their side of a connection early, over real sockets to the example server:
 * one that half-closes after a complete request still gets its answer; one that hangs up
 * (mid-body, mid-download, or before its answer) is logged as such, at info, never as a
 * server error. Each step waits for a signal from the server (a policy hook, a log line, a
 * socket event), never for a fixed time.
 */

import t, { type Test } from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { buildServer } from '../../examples/server.js'
import { parseConfig } from '../../examples/config.js'
import { locationPath, prepareImage, pushBlob, urls } from '../helpers.js'
import { digestOf } from '../../lib/digest.js'

interface LogLine {
  level: number
  msg: string
  reqId?: string
  req?: { method: string, url: string }
  err?: { stack?: string }
}

/** The server's log lines as they arrive, and promises of lines to come. */
class Log {
  readonly lines: LogLine[] = []
  private waiters: Array<{ matches: (line: LogLine) => boolean, resolve: (line: LogLine) => void }> = []
  readonly stream = new Writable({
    write: (chunk: Buffer, _encoding, done) => {
      for (const text of chunk.toString().split('\n')) {
        if (text !== '') this.add(JSON.parse(text) as LogLine)
      }
      done()
    }
  })

  private add (line: LogLine): void {
    this.lines.push(line)
    for (const waiter of this.waiters.filter((entry) => entry.matches(line))) waiter.resolve(line)
    this.waiters = this.waiters.filter((entry) => !entry.matches(line))
  }

  /** The first line (logged already or to come) that matches. */
  async next (matches: (line: LogLine) => boolean): Promise<LogLine> {
    const seen = this.lines.find(matches)
    if (seen !== undefined) return seen
    return await new Promise((resolve) => this.waiters.push({ matches, resolve }))
  }

  /** The id of the request to `url`, once Fastify has logged it. */
  async requestId (method: string, url: string): Promise<string> {
    const line = await this.next((entry) => entry.msg === 'incoming request' && entry.req?.method === method && entry.req.url === url)
    return line.reqId ?? ''
  }

  /** The line that ends a request's log: answered, or the client gone. */
  async end (reqId: string): Promise<LogLine> {
    return await this.next((line) => line.reqId === reqId && REQUEST_ENDS.has(line.msg))
  }

  of (reqId: string): LogLine[] {
    return this.lines.filter((line) => line.reqId === reqId)
  }
}

const REQUEST_ENDS = new Set(['request completed', 'client closed the request', 'stream closed prematurely'])

async function serve (t: Test): Promise<{ app: FastifyInstance, port: number, log: Log }> {
  const log = new Log()
  const app = buildServer(parseConfig(['--storage', 'inmemory'], {}), { level: 'info', stream: log.stream })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, port: (app.server.address() as net.AddressInfo).port, log }
}

async function connect (port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  return socket
}

/** Everything the server sends until it closes the connection. */
async function readToClose (socket: net.Socket): Promise<string> {
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
  if (!socket.closed) await once(socket, 'close')
  return received
}

/** The server's side of the next connection it accepts. */
async function nextServerSocket (app: FastifyInstance): Promise<net.Socket> {
  const [socket] = await once(app.server, 'connection') as [net.Socket]
  return socket
}

function manifestPut (name: string, tag: string, manifest: Buffer): string {
  return `PUT ${urls.manifest(name, tag)} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: ${manifest.length}\r\n\r\n${manifest.toString('latin1')}`
}

t.test('a client that half-closes after a complete request gets its answer, then the connection closes', { timeout: 60_000 }, async (t) => {
  const { app, port } = await serve(t)
  const image = await prepareImage(app, 'half/closed', { seed: 'half-close' })
  const accepted = nextServerSocket(app)
  const socket = await connect(port)
  const sawFin = once(await accepted, 'end')
  // The manifest PUT waits in a policy hook until the server has seen the client's FIN.
  app.ociRegistry.policies.add(async (change) => {
    if (change.action === 'manifest.put') await sawFin
  })
  socket.end(manifestPut('half/closed', 'v1', image.manifest))
  const answer = await readToClose(socket)
  t.match(answer, /^HTTP\/1\.1 201 Created\r\n/, 'answered 201 after the FIN')
  t.match(answer, /\r\ndocker-content-digest: sha256:[0-9a-f]{64}\r\n/i)
  t.equal((await app.inject({ method: 'HEAD', url: urls.manifest('half/closed', 'v1') })).statusCode, 200, 'and stored')

  const base = await connect(port)
  base.end('GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
  t.match(await readToClose(base), /^HTTP\/1\.1 200 OK\r\n/, 'a keep-alive request half-closed is answered, then closed')
})

t.test('a client that hangs up is logged at info as a client gone, never as a server error', { timeout: 60_000 }, async (t) => {
  const { app, port, log } = await serve(t)
  const image = await prepareImage(app, 'hang/up', { seed: 'hang-up' })
  const big = Buffer.alloc(16 * 1024 * 1024, 7)
  await pushBlob(app, 'hang/up', big)
  const started = await app.inject({ method: 'POST', url: urls.blobUpload('hang/up') })
  const upload = locationPath(started.headers.location)

  /** Sends a request head and part of its body, hangs up once the server has the request, and returns its log. */
  async function hangUpMidBody (method: string, url: string, head: string, part: string): Promise<LogLine[]> {
    const socket = await connect(port)
    socket.write(`${method} ${url} HTTP/1.1\r\nHost: 127.0.0.1\r\n${head}\r\n${part}`)
    const reqId = await log.requestId(method, url)
    socket.destroy()
    await log.end(reqId)
    return log.of(reqId)
  }

  const cases: Record<string, () => Promise<LogLine[]>> = {
    'mid-body of a chunk': async () => await hangUpMidBody('PATCH', upload, 'Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n', 'x'.repeat(50_000)),
    'mid-body of a chunked chunk': async () => await hangUpMidBody('PATCH', upload, 'Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n', `100\r\n${'x'.repeat(256)}\r\n`),
    'mid-body of a monolithic upload': async () => await hangUpMidBody('POST', urls.blobUpload('hang/up', { digest: digestOf('abc') }), 'Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n', 'x'.repeat(50_000)),
    'mid-body of a manifest': async () => await hangUpMidBody('PUT', urls.manifest('hang/up', 'partial'), 'Content-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 100000\r\n', '{"schemaVersion":2,'),
    'mid-download': async () => {
      const socket = await connect(port)
      const url = urls.blob('hang/up', digestOf(big))
      socket.write(`GET ${url} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
      await once(socket, 'data')
      socket.destroy()
      const reqId = await log.requestId('GET', url)
      await log.end(reqId)
      return log.of(reqId)
    },
    'after a complete request, before its answer': async () => {
      let entered!: () => void
      const hookEntered = new Promise<void>((resolve) => { entered = resolve })
      let release!: () => void
      const released = new Promise<void>((resolve) => { release = resolve })
      const remove = app.ociRegistry.policies.add(async (change) => {
        if (change.action !== 'manifest.put') return
        entered()
        await released
      })
      const accepted = nextServerSocket(app)
      const socket = await connect(port)
      const serverSide = await accepted
      socket.write(manifestPut('hang/up', 'gone', image.manifest))
      await hookEntered
      socket.destroy()
      if (!serverSide.readableEnded) await once(serverSide, 'end')
      release()
      const reqId = await log.requestId('PUT', urls.manifest('hang/up', 'gone'))
      await log.end(reqId)
      remove()
      return log.of(reqId)
    }
  }
  for (const [what, run] of Object.entries(cases)) {
    const lines = await run()
    const loud = lines.filter((line) => line.level >= 40)
    t.same(loud.map((line) => line.msg), [], `${what}: nothing logged at warn or above`)
    t.notOk(lines.some((line) => line.msg === 'request failed' || line.err?.stack !== undefined), `${what}: no 'request failed', no stack`)
    t.ok(lines.some((line) => REQUEST_ENDS.has(line.msg) && line.level === 30), `${what}: its end logged at info (${lines.map((line) => line.msg).join(', ')})`)
  }
  t.equal((await app.inject({ url: '/v2/' })).statusCode, 200, 'the server serves on')
})
