import t from 'tap'
import { readFile } from 'node:fs/promises'
import Fastify from 'fastify'
import registry from '../../plugins/registry.js'
import { formatResult, runConformance, type ConformanceReport } from '../../lib/conformance/index.js'
import { storageKinds, tempDir } from '../helpers.js'

function failures (report: ConformanceReport): string {
  return report.results.filter((result) => result.status !== 'pass').map(formatResult).join('\n\n')
}

for (const kind of storageKinds) {
  t.test(`the conformance suite passes against our registry (${kind}, deletes enabled)`, async (t) => {
    const app = Fastify({ logger: false })
    await app.register(registry, { delete: true, storage: kind === 'inmemory' ? { driver: 'inmemory' } : { driver: 'filesystem', root: await tempDir(t) } })
    t.teardown(async () => { await app.close() })
    const url = await app.listen({ host: '127.0.0.1', port: 0 })
    const report = await runConformance({ url })
    t.same(report.categories, ['pull', 'push', 'discovery', 'management'])
    t.ok(report.summary.total > 100, `${report.summary.total} checks ran`)
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
    t.equal(Number(/passes all (\d+) checks/.exec(readme)?.[1]), report.summary.total, 'the README says how many checks pass')
    t.equal(report.summary.failed, 0, `no check failed\n${failures(report)}`)
    t.equal(report.summary.unsupported, 0, `nothing unsupported\n${failures(report)}`)
    t.equal(report.summary.passed, report.summary.total)
  })
}
