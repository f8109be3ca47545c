/**
 * Hostile requests `app.inject` cannot send, over a real socket to a listening server on
 * 127.0.0.1: raw request lines, bad Host headers, bodies sent in part. Every exchange has a
 * bounded wait; after each, the server still answers and storage is unchanged.
 */

import { connect } from 'node:net'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, prepareImage, putManifest, urls } from '../helpers.js'
import { keyPair } from '../auth/fixtures.js'
import { storageHash } from './oracle.js'

const WAIT_MS = 3000

interface Exchange {
  /** Status of the first answer, undefined when none came. */
  status: number | undefined
  head: string
  body: string
  /** The server closed the connection within the wait. */
  closed: boolean
}

/** Sends bytes on a fresh connection, optionally half-closes or resets it, and reads for at most `WAIT_MS`. */
async function exchange (port: number, bytes: string | Buffer, after: 'end' | 'keep' | 'destroy' = 'end'): Promise<Exchange> {
  return await new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    let closed = false
    const finish = (): void => {
      clearTimeout(timer)
      socket.destroy()
      const text = Buffer.concat(chunks).toString('latin1')
      const [head = '', body = ''] = text.split('\r\n\r\n', 2)
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1]
      resolve({ status: status === undefined ? undefined : Number(status), head, body, closed })
    }
    const timer = setTimeout(finish, after === 'destroy' ? 0 : WAIT_MS)
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', () => {})
    socket.on('close', () => { closed = true; finish() })
    socket.write(bytes, () => {
      if (after === 'end') socket.end()
      if (after === 'destroy') finish()
    })
  })
}

/** A registry listening on 127.0.0.1 with an image tagged twice (so tag lists page with Link). */
async function listening (t: Test, options: Parameters<typeof build>[2] = {}): Promise<{ app: FastifyInstance, port: number }> {
  const app = await build(t, 'inmemory', options)
  if (options.auth === undefined) {
    const image = await prepareImage(app, 'robust/app', { seed: 'socket' })
    for (const tag of ['one', 'two']) t.equal((await putManifest(app, 'robust/app', tag, image.manifest)).statusCode, 201, `tagged ${tag}`)
  }
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return { app, port: address.port }
}

/** The server answers `GET /v2/` at once (200, or 401 with auth): nothing a hostile client did has stalled it. */
async function healthy (port: number): Promise<boolean> {
  const answer = await exchange(port, 'GET /v2/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  return answer.status === 200 || answer.status === 401
}

function specBody (body: string): boolean {
  try {
    const errors = (JSON.parse(body) as { errors?: Array<{ code?: unknown, message?: unknown }> }).errors
    return Array.isArray(errors) && errors.length > 0 && errors.every((error) => typeof error.code === 'string' && typeof error.message === 'string')
  } catch {
    return false
  }
}

function noLeak (t: Test, answer: Exchange, what: string): void {
  t.notMatch(answer.head + answer.body, /\n\s+at |node:internal|\.[cm]?[jt]s:\d+|\/tmp\//, `${what}: no stack or server path`)
}

t.test('raw request lines: a 4xx (the spec body under /v2/), never a 5xx, and the server stays up', async (t) => {
  const { app, port } = await listening(t)
  const driver = app.ociRegistry.driver
  const cases: Array<{ line: string, specBody: boolean }> = [
    { line: 'GET /v2/%2e%2e/%2e%2e/etc/passwd HTTP/1.1', specBody: true },
    { line: 'GET /v2/../../etc/passwd HTTP/1.1', specBody: true },
    { line: 'GET /v2/robust/app/..%2f..%2fblobs/sha256:x HTTP/1.1', specBody: true },
    { line: 'DELETE /v2/robust/app/manifests/one/.. HTTP/1.1', specBody: true },
    { line: 'GET /v2/robust/app/manifests/one%00 HTTP/1.1', specBody: true },
    { line: 'GET /v2/robust/app/manifests/one%ff HTTP/1.1', specBody: true },
    { line: 'GET /v2/%ff/tags/list HTTP/1.1', specBody: true },
    { line: 'OPTIONS /v2/ HTTP/1.1', specBody: true },
    { line: 'TRACE /v2/robust/app/tags/list HTTP/1.1', specBody: true },
    { line: 'OPTIONS * HTTP/1.1', specBody: false },
    { line: 'GET /v2/robust/app/tags/list?n=1&n=%zz HTTP/1.1', specBody: true },
    { line: `GET /v2/${'a/'.repeat(3000)}a/tags/list HTTP/1.1`, specBody: false },
    { line: 'GET /v2/ HTTP/9.9', specBody: false },
    { line: 'GET\t/v2/ HTTP/1.1', specBody: false },
    { line: 'get /v2/ HTTP/1.1', specBody: false },
    { line: 'GET /v2/ robust HTTP/1.1', specBody: false }
  ]
  const before = await storageHash(driver)
  for (const { line, specBody: spec } of cases) {
    const shown = line.length > 80 ? `${line.slice(0, 80)}…` : line
    const answer = await exchange(port, `${line}\r\nHost: localhost\r\nConnection: close\r\n\r\n`)
    t.ok(answer.status !== undefined && answer.status >= 400 && answer.status < 500, `${shown}: a 4xx (${String(answer.status)})`)
    if (spec) t.ok(specBody(answer.body), `${shown}: the spec's error body`)
    noLeak(t, answer, shown)
  }
  // The absolute form is valid (RFC 9112 section 3.2.2): routed by its path, like Fastify does.
  const absolute = await exchange(port, 'GET http://evil.example/v2/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n')
  t.equal(absolute.status, 200, 'an absolute-form request line is served by its path')
  t.equal(await storageHash(driver), before, 'storage unchanged')
  t.ok(await healthy(port), 'the server still answers')
})

t.test('bad Host headers are never reflected, never a 5xx', async (t) => {
  const { app, port } = await listening(t)
  const before = await storageHash(app.ociRegistry.driver)
  for (const host of ['a"b', 'a>;rel="x",<b', 'a b', '[::1', 'a:99999', 'a\\b', '__proto__', '']) {
    const answer = await exchange(port, `GET ${urls.tags('robust/app', { n: 1 })} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
    t.ok(answer.status !== undefined && answer.status < 500, `Host ${JSON.stringify(host)}: not a 5xx (${String(answer.status)})`)
    const link = /^link: (.*)$/im.exec(answer.head)?.[1] ?? ''
    const reflected = host.length > 1 && /["<> \\[]/.test(host) && link.includes(host)
    t.notOk(reflected, `Host ${JSON.stringify(host)} is not reflected in Link (${link})`)
    noLeak(t, answer, `Host ${JSON.stringify(host)}`)
  }
  // RFC 9112 section 3.2: a request with more than one Host field is answered 400 (Node keeps the first).
  const twice = await exchange(port, 'GET /v2/ HTTP/1.1\r\nHost: a\r\nhost: b\r\nConnection: close\r\n\r\n')
  t.equal(twice.status, 400, 'two Host headers: 400')
  t.ok(specBody(twice.body), 'two Host headers: the spec\'s error body')
  t.equal(await storageHash(app.ociRegistry.driver), before, 'storage unchanged')
  t.ok(await healthy(port), 'the server still answers')
})

t.test('token mode: a bad Host header without credentials gets a 4xx in the spec body', async (t) => {
  const key = keyPair('ec')
  const { port } = await listening(t, { auth: { mode: 'token', realm: 'https://auth.example/token', service: 'registry', issuer: 'issuer', publicKeys: [key.publicPem] } })
  for (const host of ['a"b', 'a>;rel="x",<b']) {
    const answer = await exchange(port, `GET /v2/robust/app/tags/list HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
    const good = answer.status !== undefined && answer.status >= 400 && answer.status < 500 && specBody(answer.body)
    t.ok(good, `Host ${JSON.stringify(host)}: a 4xx in the spec body (${String(answer.status)})`)
    noLeak(t, answer, `Host ${JSON.stringify(host)}`)
  }
  t.ok(await healthy(port), 'the server still answers')
})

t.test('bodies sent in part change nothing and stall nothing', async (t) => {
  const { app, port } = await listening(t)
  const driver = app.ociRegistry.driver
  const started = await app.inject({ method: 'POST', url: urls.blobUpload('robust/app') })
  const upload = String(started.headers['docker-upload-uuid'])
  const digest = `sha256:${'a'.repeat(64)}`
  const partial = {
    'a manifest PUT': `PUT ${urls.manifest('robust/app', 'partial')} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 1000\r\n\r\n{"schemaVersion":2,`,
    'a monolithic upload': `POST ${urls.blobUpload('robust/app', { digest })} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n${'x'.repeat(1000)}`,
    'an upload completion': `PUT ${urls.blobUploadChunk('robust/app', upload, { digest })} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: 5000\r\n\r\n${'y'.repeat(100)}`,
    'a request head': `GET ${urls.manifest('robust/app', 'one')} HTTP/1.1\r\nHost: localhost\r\nAccept: application/vnd.oci`
  }
  const published = async (): Promise<number> => (await app.inject({ method: 'HEAD', url: urls.blob('robust/app', digest) })).statusCode
  for (const [what, bytes] of Object.entries(partial)) {
    for (const after of ['destroy', 'end'] as const) {
      const before = await storageHash(driver)
      const answer = await exchange(port, bytes, after)
      if (answer.status !== undefined) {
        t.ok(answer.status >= 400 && answer.status < 500, `${what}, then ${after}: a 4xx if any answer (${answer.status})`)
        noLeak(t, answer, what)
      }
      t.ok(await healthy(port), `${what}, then ${after}: the server still answers`)
      t.equal(await published(), 404, `${what}, then ${after}: no blob published`)
      // An open upload keeps the bytes it received (as distribution does), so the client can
      // resume from the offset status reports; everything else is untouched.
      if (what !== 'an upload completion') t.equal(await storageHash(driver), before, `${what}, then ${after}: storage unchanged`)
    }
  }
  const status = await app.inject({ url: urls.blobUploadChunk('robust/app', upload) })
  t.equal(status.statusCode, 204, 'the upload whose completion was cut off is still there')
  t.match(status.headers.range, /^0-(0|99|199)$/, 'and reports what it received of the cut-off requests')
})
