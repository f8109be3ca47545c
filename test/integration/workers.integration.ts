/**
 * The example server's cluster mode, as real processes: `--workers 2` serves from two worker
 * processes sharing the port, replaces a dead one, exits 0 on SIGTERM after both close
 * gracefully, and one metrics scrape on the debug listener sees every worker's requests.
 */

import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { assertBase, debugUrlOf, get, isDebugListening, isListening, metricSample, start, urlOf, type LogLine } from '../server-process.js'

// A hang (a shutdown that never finishes) should fail fast, not at the runner's limit.
const timeout = 240000
// Three processes loading the server on a loaded machine: allow most of the test's time to start.
const startup = 200000

t.test('--workers 2 serves from two processes, restarts a dead one, and exits 0 on SIGTERM', { timeout }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'registry-server-test-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const server = start(t, ['--port', '0', '--workers', '2', '--root', dir])
  const listening = await server.waitFor(isListening, 2, startup)
  const pids = new Set(listening.map((line) => line.pid))
  t.equal(pids.size, 2, 'two worker processes listen')
  t.notOk(pids.has(server.child.pid as number), 'the primary does not serve')
  const base = urlOf(listening[0] as LogLine)
  t.equal(urlOf(listening[1] as LogLine), base, 'the workers share the port')
  for (let i = 0; i < 4; i++) await assertBase(t, base)

  const [victim] = pids
  process.kill(victim as number, 'SIGKILL')
  const [replacement] = (await server.waitFor(isListening, 3, startup)).slice(2)
  t.notOk(pids.has((replacement as LogLine).pid), 'a new worker replaces the dead one')
  await assertBase(t, base)

  server.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
  t.equal(server.lines.filter((line) => line.msg === 'server closed').length, 2, 'both workers closed gracefully')
})

t.test('--workers 2: one scrape sees the whole cluster', { timeout }, async (t) => {
  const server = start(t, ['--port', '0', '--storage', 'inmemory', '--workers', '2'])
  const listening = await server.waitFor(isListening, 2, startup)
  const [debugListening] = await server.waitFor(isDebugListening, 2, startup)
  const base = urlOf(listening[0] as LogLine)
  const debug = debugUrlOf(debugListening as LogLine)
  const requests = 8
  for (let i = 0; i < requests; i++) {
    const answer = await get(`${base}/v2/`)
    t.equal(answer.status, 200)
  }
  for (let i = 0; i < 4; i++) {
    const metrics = await get(`${debug}/metrics`)
    t.equal(metricSample(metrics.body, 'registry_http_requests_total{handler="base",method="GET",code="200"}'), requests, 'every worker\'s requests, whichever worker answers')
  }
  server.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
})
