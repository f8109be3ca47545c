/**
 * The example server's operations: settings of the debug listener, health and rate limits from
 * flags, variables and distribution's config.yml keys; and, as real processes, metrics and
 * `/debug/health` on the debug listener, `/livez` and `/readyz` on the main one, and one scrape
 * seeing a whole cluster of workers.
 */

import t from 'tap'
import { parseConfig } from '../../examples/config.js'
import { debugUrlOf, get, isDebugListening, isListening, metricSample, start, urlOf, type LogLine } from '../server-process.js'

t.jobs = 2
const timeout = 240000
const parse = (argv: string[], env: Record<string, string | undefined> = {}, file?: string) =>
  parseConfig(file === undefined ? argv : ['--config', 'config.yml', ...argv], env, '/srv', () => file ?? '')

t.test('settings: the debug listener', async (t) => {
  t.same(parse(['--port', '6000']).operations?.debug, { host: '127.0.0.1', port: 6001, metricsPath: '/metrics' }, 'beside the main port by default')
  t.same(parse(['--port', '0']).operations?.debug?.port, 0, 'a free port when the main one is')
  t.same(parse(['--debug-addr', ':9100', '--metrics-path', '/prom']).operations?.debug, { host: '127.0.0.1', port: 9100, metricsPath: '/prom' })
  t.same(parse([], { REGISTRY_HTTP_DEBUG_ADDR: 'localhost:5001', REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED: 'false' }).operations?.debug, { host: 'localhost', port: 5001, metricsPath: false })
  t.match(parse([], { REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED: 'false' }).operations?.options.metrics, { enabled: false })
  const off = parse(['--debug-addr', 'none'])
  t.equal(off.operations?.debug, undefined, '`none` turns it off')
  t.match(off.operations?.options.metrics, { enabled: false }, 'and metrics with it')
  t.throws(() => parse(['--debug-addr', 'nowhere']), /^--debug-addr: "nowhere" is not host:port, :port or none/)
  t.throws(() => parse(['--metrics-path', 'metrics']), /^--metrics-path: "metrics" is not a path/)
})

t.test('settings: health and rate limits, from flags and from the config file', async (t) => {
  const file = `
health:
  storagedriver:
    enabled: true
    interval: 30s
    threshold: 5
  redis:
    interval: 5s
  failrequests: true
ratelimit:
  enabled: true
  window: 2m
  pull: 500
  push: 50
  allowlist: [10.0.0.1, 10.0.0.2]
`
  const options = parse([], {}, file).operations?.options
  t.same(options?.health, { enabled: true, storagedriver: { enabled: true, intervalSeconds: 30, threshold: 5 }, redis: { intervalSeconds: 5 }, failRequests: true })
  t.same(options?.rateLimit, { enabled: true, windowSeconds: 120, pull: 500, push: 50, allowList: ['10.0.0.1', '10.0.0.2'] })
  t.equal(parse([], {}, file).notices, undefined, 'every key is acted on')
  t.same(parse(['--rate-limit', '--rate-limit-pull', '7', '--rate-limit-allow', '10.1.1.1, 10.1.1.2']).operations?.options.rateLimit, { enabled: true, pull: 7, allowList: ['10.1.1.1', '10.1.1.2'] })
  t.same(parse([], { REGISTRY_RATELIMIT_ENABLED: 'true', REGISTRY_RATELIMIT_WINDOW: '10s' }).operations?.options.rateLimit, { enabled: true, windowSeconds: 10 })
  t.match(parse(['--health', 'false']).operations?.options.health, { enabled: true, livePath: false, readyPath: false }, 'checks still run for the debug listener')
  t.throws(() => parse(['--rate-limit-window', '0']), /^--rate-limit-window: "0" is not a duration of at least 1s/)
  const checks = [
    'health:',
    '  file:',
    '    - file: /srv/out-of-rotation',
    '      interval: 500ms',
    '  http:',
    '    - uri: http://127.0.0.1:9000/healthz',
    '      headers:',
    '        Authorization: [Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==]',
    '      statuscode: 204',
    '      timeout: 3s',
    '      threshold: 3',
    '  tcp:',
    '    - addr: 127.0.0.1:6379',
    '      timeout: 2s',
    '      interval: 1m',
    ''
  ].join('\n')
  const withChecks = parse([], {}, checks)
  t.equal(withChecks.notices, undefined, 'distribution\'s file, HTTP and TCP checks are acted on')
  t.match(withChecks.operations?.options.health, {
    file: [{ path: '/srv/out-of-rotation', intervalSeconds: 0.5 }],
    http: [{ uri: 'http://127.0.0.1:9000/healthz', headers: { Authorization: ['Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=='] }, statusCode: 204, timeoutSeconds: 3, threshold: 3 }],
    tcp: [{ address: '127.0.0.1:6379', timeoutSeconds: 2, intervalSeconds: 60 }]
  })
  t.throws(() => parse([], {}, 'health:\n  tcp:\n    - address: 127.0.0.1:6379\n'), /health\.tcp/, 'a key distribution does not know is refused, naming the section')
})

t.test('metrics and /debug/health on the debug listener; /livez and /readyz on the main one', { timeout }, async (t) => {
  const server = start(t, ['--port', '0', '--storage', 'inmemory'])
  const [listening] = await server.waitFor(isListening)
  const [debugListening] = await server.waitFor(isDebugListening)
  const base = urlOf(listening as LogLine)
  const debug = debugUrlOf(debugListening as LogLine)
  t.not(debug, base)
  t.equal((await get(`${base}/v2/`)).status, 200)
  t.same(JSON.parse((await get(`${base}/livez`)).body), { live: true })
  const ready = await get(`${base}/readyz`)
  t.equal(ready.status, 200)
  t.match(JSON.parse(ready.body), { ready: true, checks: { storagedriver_inmemory: { healthy: true } } })
  t.equal((await get(`${base}/metrics`)).status, 404, 'metrics are not on the registry\'s port')

  const metrics = await get(`${debug}/metrics`)
  t.equal(metrics.status, 200)
  t.equal(metricSample(metrics.body, 'registry_http_requests_total{handler="base",method="GET",code="200"}'), 1)
  const health = await get(`${debug}/debug/health`)
  t.equal(health.status, 200)
  t.same(JSON.parse(health.body), {}, 'distribution\'s answer when healthy')
  t.equal((await get(`${debug}/readyz`)).status, 200)
  server.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
})
