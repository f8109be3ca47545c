import t from 'tap'
import { EventEmitter } from 'node:events'
import http from 'node:http'
import { buildServer, handleSignals, loggerOptions } from '../../examples/server.js'
import { CONFIG_OPTIONS } from '../../examples/config.js'

// The spawned servers spend most of their time loading the TypeScript loader: run them side by side.
t.jobs = 4

// A hang (a shutdown that never finishes) should fail fast, not at the runner's limit.
const timeout = 240000

import { assertBase, get, isListening, start, urlOf, type LogLine } from '../server-process.js'

t.test('serves GET /v2/ and exits 0 on SIGTERM', { timeout }, async (t) => {
  const server = start(t, ['--port', '0', '--storage', 'inmemory'])
  const [listening] = await server.waitFor(isListening)
  t.match(urlOf(listening as LogLine), /^http:\/\/127\.0\.0\.1:[0-9]+$/, 'binds 127.0.0.1')
  await assertBase(t, urlOf(listening as LogLine))
  server.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
  t.ok(server.lines.some((line) => line.msg === 'server closed'))
})

t.test('--help prints every flag and exits 0; a bad flag exits 2 naming it', { timeout }, async (t) => {
  const help = start(t, ['--help'])
  t.same(await help.exited, { code: 0, signal: null })
  for (const option of CONFIG_OPTIONS) t.match(help.stdout, option.flag ?? option.file ?? option.key)

  const bad = start(t, ['--storage', 'gcs'])
  t.same(await bad.exited, { code: 2, signal: null })
  t.match(bad.stderr, /--storage: unknown storage driver "gcs"/)
})

t.test('buildServer answers GET /v2/ without listening', { timeout }, async (t) => {
  const app = buildServer({ logLevel: 'silent', registry: { storage: { driver: 'inmemory' } } })
  t.teardown(() => app.close())
  const response = await app.inject({ method: 'GET', url: '/v2/' })
  t.equal(response.statusCode, 200)
  t.equal(response.headers['docker-distribution-api-version'], 'registry/2.0')
  t.same(response.json(), {})
})

t.test('loggerOptions: JSON unless pretty output is asked for', { timeout }, async (t) => {
  t.same(loggerOptions('debug', false), { level: 'debug' })
  t.match(loggerOptions('info', true), { level: 'info', transport: { target: 'pino-pretty' } })
})

t.test('on a signal, a request in flight finishes before the process exits', { timeout }, async (t) => {
  const app = buildServer({ logLevel: 'silent', registry: { storage: { driver: 'inmemory' } } })
  let entered!: () => void
  const inHandler = new Promise<void>((resolve) => { entered = resolve })
  let release!: () => void
  const released = new Promise<void>((resolve) => { release = resolve })
  app.get('/slow', async () => {
    entered()
    await released
    return { done: true }
  })
  const signals = new EventEmitter()
  const exits: number[] = []
  let exited!: () => void
  const exitCalled = new Promise<void>((resolve) => { exited = resolve })
  handleSignals(app, {
    emitter: signals,
    exit: (code) => {
      exits.push(code)
      exited()
    }
  })
  t.teardown(() => app.close())
  const address = await app.listen({ host: '127.0.0.1', port: 0 })

  // An idle keep-alive connection must not hold the shutdown up.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  await new Promise<void>((resolve, reject) => {
    http.get(`${address}/v2/`, { agent }, (response) => { response.resume().on('end', resolve) }).on('error', reject)
  })

  const slow = get(`${address}/slow`)
  await inHandler
  signals.emit('SIGTERM', 'SIGTERM')
  // The refused connection shows that closing has begun, and gives it round trips to (wrongly) finish early.
  await t.rejects(get(`${address}/v2/`), 'new connections are refused while closing')
  t.same(exits, [], 'no exit while a request is in flight')
  release()
  const response = await slow
  t.equal(response.status, 200)
  t.same(JSON.parse(response.body), { done: true })
  await exitCalled
  t.same(exits, [0], 'exits 0 once the request is done')
})

t.test('a second signal exits at once', { timeout }, async (t) => {
  const app = buildServer({ logLevel: 'silent', registry: {} })
  const signals = new EventEmitter()
  const exits: number[] = []
  let release!: () => void
  const released = new Promise<void>((resolve) => { release = resolve })
  // Holds close() open, like a request that never finishes.
  app.addHook('onClose', async () => { await released })
  await app.ready()
  const dispose = handleSignals(app, { emitter: signals, exit: (code) => { exits.push(code) } })
  signals.emit('SIGINT', 'SIGINT')
  signals.emit('SIGTERM', 'SIGTERM')
  t.same(exits, [1])
  dispose()
  t.equal(signals.listenerCount('SIGINT'), 0, 'dispose removes the handlers')
  release()
  await app.close()

  const worker = buildServer({ logLevel: 'silent', registry: {} })
  const workerExits: number[] = []
  let workerExited!: () => void
  const workerExitCalled = new Promise<void>((resolve) => { workerExited = resolve })
  handleSignals(worker, { emitter: signals, exit: (code) => { workerExits.push(code); workerExited() }, forceOnRepeat: false })
  signals.emit('SIGINT', 'SIGINT')
  signals.emit('SIGINT', 'SIGINT')
  t.same(workerExits, [], 'a cluster worker leaves forcing to its primary')
  await workerExitCalled
  t.same(workerExits, [0], 'and exits 0 once closed')
})
