import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import registry from '../../plugins/registry.js'
import { childEnv, loaderArgs } from '../server-process.js'
import { conformanceCli, USAGE, type ConformanceReport } from '../../lib/conformance/index.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

async function serve (t: Test): Promise<string> {
  const app = Fastify({ logger: false })
  await app.register(registry, { delete: true, storage: { driver: 'inmemory' } })
  t.teardown(async () => { await app.close() })
  return await app.listen({ host: '127.0.0.1', port: 0 })
}

async function cli (argv: string[], env: Record<string, string> = {}): Promise<{ status: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const status = await conformanceCli(argv, env, { stdout: (text) => { stdout += text }, stderr: (text) => { stderr += text } })
  return { status, stdout, stderr }
}

t.test('usage errors exit 2 and say what is wrong', async (t) => {
  t.same(await cli([]), { status: 2, stdout: USAGE, stderr: '' })
  t.same(await cli(['--help']), { status: 0, stdout: USAGE, stderr: '' })
  t.same(await cli(['conformance', '--help']), { status: 0, stdout: USAGE, stderr: '' })
  for (const [argv, message] of [
    [['serve'], /unknown command "serve"/],
    [['conformance'], /expected one registry URL/],
    [['conformance', 'a', 'b'], /expected one registry URL/],
    [['conformance', 'ftp://x'], /is not an http:\/\/ or https:\/\/ URL/],
    [['conformance', 'http://127.0.0.1:1', '--categories', 'pull,nope'], /unknown categories: nope/],
    [['conformance', 'http://127.0.0.1:1', '--bogus'], /Unknown option '--bogus'/]
  ] as const) {
    const result = await cli([...argv])
    t.equal(result.status, 2, argv.join(' '))
    t.match(result.stderr, message)
    t.match(result.stderr, /Usage: fastify-oci-registry conformance <url>/)
  }
})

t.test('text output: one line per check, then the summary; exit 0 when nothing failed', async (t) => {
  const url = await serve(t)
  const result = await cli(['conformance', url, '--categories', 'pull', '--repository', 'cli/text'])
  t.equal(result.status, 0, 'exit 0')
  t.notMatch(result.stdout, /^FAIL/m, 'no check failed')
  const lines = result.stdout.trim().split('\n')
  t.match(lines[0], /^ok {3}\[base\] GET \/v2\/ answers 200 \(the API version check\) \(\d+ ms\)$/)
  t.ok(lines.filter((line) => line.startsWith('ok   [pull]')).length > 10)
  t.match(lines[lines.length - 1], new RegExp(`^${url.replace(/\./g, '\\.')}: \\d+ checks, \\d+ passed, 0 failed, 0 not supported by the registry \\(pull; [0-9.]+ s\\)$`))
})

t.test('--json: the report; credentials from flags or the environment; exit 1 on a failure', async (t) => {
  const app = Fastify({ logger: false })
  app.addHook('onRequest', async (request, reply) => {
    const expected = `Basic ${Buffer.from('user:secret').toString('base64')}`
    if (request.headers.authorization !== expected) {
      await reply.code(401).header('www-authenticate', 'Basic realm="test"').send({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] })
    }
  })
  await app.register(registry, { delete: true, storage: { driver: 'inmemory' } })
  t.teardown(async () => { await app.close() })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })

  const withFlags = await cli(['conformance', url, '--json', '--categories', 'management', '--user', 'user', '--pass', 'secret'])
  t.equal(withFlags.status, 0)
  const report = JSON.parse(withFlags.stdout) as ConformanceReport
  t.same(report.categories, ['management'])
  t.equal(report.summary.failed, 0)
  t.equal(report.summary.passed, report.summary.total)

  const withEnv = await cli(['conformance', url, '--json', '--categories', 'management'], { OCI_USERNAME: 'user', OCI_PASSWORD: 'secret' })
  t.equal(withEnv.status, 0)

  const refused = await cli(['conformance', url, '--json', '--categories', 'pull'])
  t.equal(refused.status, 1, 'without credentials every check fails')
  const failed = JSON.parse(refused.stdout) as ConformanceReport
  t.equal(failed.summary.passed, 0)
  t.equal(failed.results[0]?.message, 'expected status 200, got 401 UNAUTHORIZED')
  t.equal(failed.results[0]?.exchanges?.[0]?.response?.status, 401)
  t.notMatch(withFlags.stdout + refused.stdout, /secret|dXNlcjpzZWNyZXQ/, 'no credentials in the output')
})

t.test('the bin entry runs the conformance command', async (t) => {
  const pkg = JSON.parse(await readFile(new URL('package.json', `file://${root}/`), 'utf8')) as { bin?: Record<string, string> }
  t.same(pkg.bin, { 'fastify-oci-registry': './dist/bin/fastify-oci-registry.js' }, 'package.json names the built file')
  const url = await serve(t)
  const child = spawn(process.execPath, [...loaderArgs(), 'bin/fastify-oci-registry.ts', 'conformance', url, '--categories', 'pull', '--repository', 'cli/bin'], { cwd: root, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve))
  t.equal(status, 0, 'exit 0')
  t.notMatch(output, /^FAIL/m, 'no check failed')
  t.match(output, / 0 failed, 0 not supported by the registry \(pull;/)
})
