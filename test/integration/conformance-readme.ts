/** The README's block of conformance results against distribution, as the integration test checks it. */

import type { ConformanceReport } from '../../lib/conformance/index.js'

export function conformanceBlock (report: ConformanceReport): string {
  const { total, passed, failed, unsupported } = report.summary
  const label = { fail: 'failed', unsupported: 'not supported', pass: 'passed' } as const
  return [
    `${total} checks: ${passed} passed, ${failed} failed, ${unsupported} not supported.`,
    '',
    '| Check | Result |',
    '| --- | --- |',
    ...report.results.filter((result) => result.status !== 'pass').map((result) => `| \`[${result.category}] ${result.name.replace(/\|/g, '\\|')}\` | ${label[result.status]} |`)
  ].join('\n')
}
