/**
 * Minimal servers that bound what this machine can do, run as child processes by the limits
 * cases: `tcp-sink <port>` (counts the bytes of a connection, answers the count when it ends),
 * `fastify <port>` (a trivial JSON route) and `upload <port> <dir>` (hash, write and fsync a
 * request body: the least work a registry push needs).
 */

import { createHash, randomBytes } from 'node:crypto'
import { open, rm } from 'node:fs/promises'
import { createServer as createHttpServer } from 'node:http'
import { createServer as createTcpServer } from 'node:net'
import { join } from 'node:path'
import Fastify from 'fastify'

const [mode, portText, dir] = process.argv.slice(2)
const port = Number(portText)
const host = '127.0.0.1'

if (mode === 'tcp-sink') {
  createTcpServer({ allowHalfOpen: true }, (socket) => {
    let received = 0
    socket.on('data', (chunk) => { received += chunk.length })
    socket.on('end', () => { socket.end(String(received)) })
  }).listen(port, host)
} else if (mode === 'fastify') {
  const app = Fastify({ logger: false })
  app.get('/', async () => ({ hello: 'world' }))
  await app.listen({ port, host })
} else if (mode === 'upload' && dir !== undefined) {
  createHttpServer((request, response) => {
    const path = join(dir, randomBytes(8).toString('hex'))
    const store = async (): Promise<string> => {
      const hash = createHash('sha256')
      const file = await open(path, 'w')
      try {
        for await (const chunk of request) {
          hash.update(chunk as Buffer)
          await file.write(chunk as Buffer)
        }
        await file.sync()
      } finally {
        await file.close()
      }
      return `sha256:${hash.digest('hex')}`
    }
    store().then((digest) => {
      response.writeHead(201, { 'docker-content-digest': digest, 'content-length': 0 }).end()
    }, (error: unknown) => {
      response.writeHead(500).end(String(error))
    }).finally(() => { rm(path, { force: true }).catch(() => {}) })
  }).listen(port, host)
} else {
  process.stderr.write('usage: baselines.js tcp-sink|fastify <port> | upload <port> <dir>\n')
  process.exit(2)
}
