/**
 * The conformance suite run against our registry on one storage kind, with deletes enabled:
 * every check passes, and the README states how many there are. The fast tier runs it on the
 * in-memory and filesystem drivers, the integration tier on S3.
 */

import { readFile } from 'node:fs/promises'
import { formatResult, runConformance, type ConformanceReport } from '../../lib/conformance/index.js'
import type { Test } from 'tap'
import { build, type StorageKind } from '../helpers.js'

function failures (report: ConformanceReport): string {
  return report.results.filter((result) => result.status !== 'pass').map(formatResult).join('\n\n')
}

export async function conformancePasses (t: Test, kind: StorageKind): Promise<void> {
  const app = await build(t, kind, { delete: true })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const report = await runConformance({ url })
  t.same(report.categories, ['pull', 'push', 'discovery', 'management'])
  t.ok(report.summary.total > 100, `${report.summary.total} checks ran`)
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
  t.equal(Number(/passes all (\d+) checks/.exec(readme)?.[1]), report.summary.total, 'the README says how many checks pass')
  t.equal(report.summary.failed, 0, `no check failed\n${failures(report)}`)
  t.equal(report.summary.unsupported, 0, `nothing unsupported\n${failures(report)}`)
  t.equal(report.summary.passed, report.summary.total)
}
