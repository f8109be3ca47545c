/**
 * The shipped command, as built: `fastify-oci-registry conformance` from the compiled package
 * against the example server (a separate process, filesystem storage), with deletes enabled
 * (every check passes) and disabled (the delete checks are reported unsupported, none fails).
 */

import t from 'tap'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ConformanceReport } from '../../lib/conformance/index.js'
import { projectRoot, requestLog, run, startServer, tempDir } from './harness.js'

t.test('the built CLI against the example server', async (t) => {
  // Inside node_modules so that the compiled files resolve the project's dependencies.
  const out = join(projectRoot, 'node_modules', '.cache', `conformance-build-${process.pid}`)
  t.teardown(async () => { await rm(out, { recursive: true, force: true }) })
  await run(process.execPath, [fileURLToPath(import.meta.resolve('typescript/bin/tsc')), '-p', 'tsconfig.build.json', '--outDir', out], { cwd: projectRoot })
  const bin = join(out, 'bin', 'fastify-oci-registry.js')

  for (const deletes of [true, false]) {
    await t.test(`deletes ${deletes ? 'enabled' : 'disabled'}`, async (t) => {
      const registry = await startServer(t, ['--root', await tempDir(t), ...(deletes ? ['--delete'] : [])])
      const result = await run(process.execPath, [bin, 'conformance', registry.url, '--json'], { allowFailure: true })
      t.equal(result.code, 0, result.stderr)
      const report = JSON.parse(result.stdout) as ConformanceReport
      if (report.summary.failed > 0) {
        // What the server saw, to tell a refused request from one it never answered.
        const unfinished = requestLog(registry.service).filter((entry) => entry.status === undefined)
        t.comment(`requests the server did not finish: ${JSON.stringify(unfinished)}\nits last log lines:\n${registry.service.output.slice(-8000)}`)
      }
      t.equal(report.summary.failed, 0, JSON.stringify(report.results.filter((entry) => entry.status === 'fail'), null, 2))
      if (deletes) {
        t.equal(report.summary.passed, report.summary.total, 'every check passes')
      } else {
        t.ok(report.summary.unsupported > 0, `${report.summary.unsupported} delete checks reported unsupported`)
        t.ok(report.results.filter((entry) => entry.status === 'unsupported').every((entry) => entry.category === 'management' || /delete/i.test(entry.message ?? '')))
      }
    })
  }
})
