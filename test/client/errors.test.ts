import t, { type Test } from 'tap'
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { createServer as createTcpServer, type Server, type Socket } from 'node:net'
import { once } from 'node:events'
import { RegistryClient, RegistryClientError, RegistryError, isRegistryClientError, isRegistryError } from '../../lib/client/index.js'

/** Listens on 127.0.0.1 with a free port; closed at the end of the test. */
async function listen (t: Test, server: Server | HttpServer): Promise<string> {
  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    const closed = new Promise<void>((resolve) => server.close(() => { resolve() }))
    for (const socket of sockets) socket.destroy()
    await closed
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return `http://127.0.0.1:${address.port}`
}

/** An HTTP server answering every request with `status`, `headers` and `body`. */
async function answering (t: Test, status: number, headers: Record<string, string>, body: string): Promise<string> {
  return await listen(t, createHttpServer((request, response) => {
    request.resume()
    response.writeHead(status, headers).end(body)
  }))
}

t.test('a refused connection is a CONNECTION_FAILED client error with the cause', async (t) => {
  const server = createTcpServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  const client = new RegistryClient({ url: `http://127.0.0.1:${port}` })
  const error = await client.ping().then(() => undefined, (error: unknown) => error)
  t.ok(isRegistryClientError(error), 'a client error')
  t.type(error, RegistryClientError)
  t.match(error, { code: 'CONNECTION_FAILED', url: `http://127.0.0.1:${port}/v2/`, cause: { code: 'ECONNREFUSED' } })
  t.notOk(isRegistryError(error), 'not a registry error: the registry never answered')
})

t.test('a server that never answers is a TIMEOUT', async (t) => {
  const url = await listen(t, createTcpServer())
  const client = new RegistryClient({ url, timeoutMs: 200 })
  await t.rejects(client.listTags('a/b'), { name: 'RegistryClientError', code: 'TIMEOUT', url: `${url}/v2/a/b/tags/list` })
})

t.test('a server that answers HTML is not a registry; a body that is not JSON is an INVALID_RESPONSE', async (t) => {
  const url = await answering(t, 200, { 'content-type': 'text/html' }, '<html><body>hello</body></html>')
  const client = new RegistryClient({ url })
  await t.rejects(client.ping(), { name: 'RegistryClientError', code: 'NOT_A_REGISTRY', url: `${url}/v2/` })
  const error = await client.listTags('a/b').then(() => undefined, (error: unknown) => error)
  t.match(error, { name: 'RegistryClientError', code: 'INVALID_RESPONSE' })
  t.type((error as Error).cause, SyntaxError, 'the parse error is the cause')
  await t.rejects(client.catalog(), { code: 'INVALID_RESPONSE' })
  await t.rejects(client.referrers('a/b', `sha256:${'a'.repeat(64)}`), { code: 'INVALID_RESPONSE' })
})

t.test('JSON of the wrong shape is an INVALID_RESPONSE, a bad referrer descriptor too', async (t) => {
  const url = await answering(t, 200, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0' },
    JSON.stringify({ name: 7, repositories: 'x', manifests: [{ digest: 'not a descriptor' }] }))
  const client = new RegistryClient({ url })
  await client.ping()
  await t.rejects(client.listTags('a/b'), { code: 'INVALID_RESPONSE' })
  await t.rejects(client.catalog(), { code: 'INVALID_RESPONSE' })
  await t.rejects(client.referrers('a/b', `sha256:${'a'.repeat(64)}`), { code: 'INVALID_RESPONSE', cause: { name: 'RegistryError' } })
})

t.test('a registry\'s refusal is a RegistryError with its code', async (t) => {
  const url = await answering(t, 404, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0' },
    JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }] }))
  const client = new RegistryClient({ url })
  const error = await client.listTags('a/b').then(() => undefined, (error: unknown) => error)
  t.ok(isRegistryError(error))
  t.type(error, RegistryError)
  t.equal((error as RegistryError).code, 'NAME_UNKNOWN')
  t.equal((error as RegistryError).statusCode, 404)
})
