import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import registry from '../../plugins/registry.js'
import { formatResult, runConformance, type CheckResult, type ConformanceReport } from '../../lib/conformance/index.js'

async function serve (t: Test, options: { delete: boolean }, faults?: (app: FastifyInstance) => void): Promise<string> {
  const app = Fastify({ logger: false })
  faults?.(app)
  await app.register(registry, { delete: options.delete, storage: { driver: 'inmemory' } })
  t.teardown(async () => { await app.close() })
  return await app.listen({ host: '127.0.0.1', port: 0 })
}

function result (report: ConformanceReport, name: string): CheckResult {
  const found = report.results.find((entry) => entry.name === name)
  if (found === undefined) throw new Error(`no check named ${name}`)
  return found
}

t.test('a registry that breaks the spec fails the checks that cover it, with the exchanges', async (t) => {
  const url = await serve(t, { delete: true }, (app) => {
    // Three faults: ranges ignored, OCI-Subject dropped, ?tag= acknowledged without OCI-Tag.
    app.addHook('onRequest', async (request) => { delete request.headers.range })
    app.addHook('onSend', async (_request, reply, payload) => {
      reply.removeHeader('oci-subject')
      reply.removeHeader('oci-tag')
      return payload
    })
  })
  const report = await runConformance({ url, categories: ['pull', 'push', 'discovery'] })

  const range = result(report, 'GET of a blob with Range: bytes=500-1499 is 206 with that part')
  t.equal(range.status, 'fail')
  t.equal(range.message, 'expected status 206, got 200')
  const text = formatResult(range)
  t.match(text, /^FAIL \[pull\] GET of a blob with Range: bytes=500-1499/)
  t.match(text, /> GET http:\/\/127\.0\.0\.1:\d+\/v2\/conformance\/repo1\/blobs\/sha256:[a-f0-9]{64}\n/, 'the request line')
  t.match(text, /> range: bytes=500-1499/, 'the request headers')
  t.match(text, /< 200\n/, 'the response status')
  t.match(text, /< content-length: 2048/, 'the response headers')
  t.equal(result(report, 'GET of a blob with Range: bytes=5000-10000 (unsatisfiable) is 416').status, 'fail')

  const subject = result(report, 'manifest PUT with a subject answers OCI-Subject with the subject\'s digest')
  t.equal(subject.status, 'fail')
  t.match(subject.message, /expected the OCI-Subject headers to be/)

  const tagged = result(report, 'manifests, tags as parameters: push the blobs, the manifests by digest with ?tag=')
  t.equal(tagged.status, 'unsupported', 'ignoring ?tag= is allowed')
  t.match(tagged.message, /ignores \?tag=/)
  t.equal(result(report, 'manifests, tags as parameters: HEAD and GET by digest and by tag serve the exact bytes').status, 'pass')

  const failed = report.results.filter((entry) => entry.status === 'fail').map((entry) => entry.name)
  t.same(failed, [
    'GET of a blob with Range: bytes=500-1499 is 206 with that part',
    'GET of a blob with Range: bytes=500- is 206 with that part',
    'GET of a blob with Range: bytes=-500 is 206 with that part',
    'GET of a blob with Range: bytes=2000-5000 is 206 with that part',
    'GET of a blob with Range: bytes=500-0 (unsatisfiable) is 416',
    'GET of a blob with Range: bytes=5000-10000 (unsatisfiable) is 416',
    'manifest PUT with a subject answers OCI-Subject with the subject\'s digest'
  ], 'only the checks that cover the faults fail')
  t.equal(report.summary.failed, failed.length)
  t.equal(report.summary.unsupported, 1)
  t.ok(report.results.filter((entry) => entry.status === 'pass').every((entry) => entry.exchanges === undefined), 'passing checks carry no exchanges')
})

t.test('a registry without deletes: the delete checks are unsupported, none fails', async (t) => {
  const url = await serve(t, { delete: false })
  const report = await runConformance({ url, categories: ['management'] })
  t.same(report.categories, ['management'])
  t.equal(report.summary.failed, 0, report.results.filter((entry) => entry.status === 'fail').map(formatResult).join('\n'))
  t.same(report.results.filter((entry) => entry.status === 'unsupported').map((entry) => entry.name), [
    'DELETE of a tag: 202 (or 400/405 UNSUPPORTED where tags cannot be deleted)',
    'after DELETE of a tag: the tag is 404, the manifest and the other tag remain',
    'DELETE of a manifest by digest: 202',
    'after DELETE of a manifest: GET and HEAD by digest are 404, and so are its tags',
    'after DELETE of a manifest: the tag list no longer has its tags',
    'DELETE of a manifest that is gone: 404',
    'DELETE of a blob: 202',
    'after DELETE of a blob: GET and HEAD are 404, DELETE again is 404'
  ])
  t.match(result(report, 'DELETE of a blob: 202').message, /does not delete \(405\)/)
})

t.test('categories choose the checks; the version check always runs', async (t) => {
  const url = await serve(t, { delete: true })
  const report = await runConformance({ url, categories: ['pull'], repository: 'custom/one', crossRepository: 'custom/two' })
  t.same(report.repositories, ['custom/one', 'custom/two'])
  t.same([...new Set(report.results.map((entry) => entry.category))], ['base', 'pull'])
  t.equal(report.results[0]?.name, 'GET /v2/ answers 200 (the API version check)')
  t.equal(report.summary.failed, 0)
})

t.test('a registry that is not there fails every check with the connection error', async (t) => {
  const report = await runConformance({ url: 'http://127.0.0.1:1', categories: ['pull'] })
  t.equal(report.summary.passed, 0)
  t.equal(report.summary.failed, report.summary.total)
  t.match(report.results[0]?.message, /ECONNREFUSED/)
  t.match(report.results[0]?.exchanges?.[0]?.error, /ECONNREFUSED/)
})
