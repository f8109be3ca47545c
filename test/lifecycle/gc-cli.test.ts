/**
 * `fastify-oci-registry gc`: the dry run prints exactly what the run then removes (one blob
 * digest, then one manifest, per line), `--json` prints the report, storage comes from the
 * server's flags; and the progress display on a terminal and elsewhere.
 */

import t from 'tap'
import { main } from '../../examples/gc.js'
import { Progress, formatBytes } from '../../lib/lifecycle/progress.js'
import { build, prepareImage, pushBlob, putManifest, tempDir } from '../helpers.js'

function capture (): { out: string[], err: string[], output: Parameters<typeof main>[2] } {
  const out: string[] = []
  const err: string[] = []
  return { out, err, output: { stdout: (text) => { out.push(text) }, stderr: (text) => { err.push(text) } } }
}

t.test('dry run, then run: the same lines; --json prints the report', async (t) => {
  const root = await tempDir(t)
  const app = await build(t, 'filesystem', { root })
  const orphan = await pushBlob(app, 'cli/repo', Buffer.from('cli orphan'))
  const untagged = await prepareImage(app, 'cli/repo', { seed: 'untagged' })
  t.equal((await putManifest(app, 'cli/repo', untagged.digest, untagged.manifest)).statusCode, 201)
  const tagged = await prepareImage(app, 'cli/repo', { seed: 'tagged' })
  t.equal((await putManifest(app, 'cli/repo', 'v1', tagged.manifest)).statusCode, 201)
  await app.close()
  const flags = ['--storage', 'filesystem', '--root', root, '--delete-untagged']

  const dry = capture()
  t.equal(await main([...flags, '--dry-run'], {}, dry.output), 0)
  const expected = [...[orphan, untagged.digest, untagged.config, ...untagged.layers].sort(), `cli/repo@${untagged.digest}`].map((line) => `${line}\n`)
  t.same(dry.out, expected, 'one blob digest, then one manifest, per line')
  t.match(dry.err.join(''), /would remove 1 manifests and 5 blobs/)

  const real = capture()
  t.equal(await main([...flags, '--json'], {}, real.output), 0)
  const report = JSON.parse(real.out.join('')) as { removed: { blobs: string[], manifests: string[] }, trigger: string, dryRun: boolean }
  t.same([...report.removed.blobs, ...report.removed.manifests].map((line) => `${line}\n`), expected, 'the run removes what the dry run printed')
  t.match(report, { trigger: 'cli', dryRun: false })

  const after = capture()
  t.equal(await main(flags, {}, after.output), 0)
  t.same(after.out, [], 'nothing left to remove')
})

t.test('usage errors and help', async (t) => {
  const help = capture()
  t.equal(await main(['--help'], {}, help.output), 0)
  t.match(help.out.join(''), /--delete-untagged/)
  const bad = capture()
  t.equal(await main(['--storage', 'nowhere'], {}, bad.output), 2)
  t.match(bad.err.join(''), /storage/)
})

t.test('progress: a redrawn line with a bar on a terminal, plain lines elsewhere', async (t) => {
  let clock = 0
  const tty: string[] = []
  const onTerminal = new Progress({ write: (text: string) => tty.push(text), isTTY: true, columns: 200 }, { label: 'gc', now: () => clock })
  clock = 2000
  onTerminal.update({ phase: 'mark', repositories: 3, bytes: 4096 })
  onTerminal.update({ phase: 'mark', repositories: 4, bytes: 4096 })
  t.equal(tty.length, 1, 'redrawn at most every 100 ms')
  t.match(tty[0], /^\rgc \[[= ]{20}\] mark: 3 repositories, 4\.0 KiB walked, 2\.0 KiB\/s/)
  onTerminal.done()
  t.equal(tty.at(-1), '\r\x1b[K')

  const plain: string[] = []
  const inPipe = new Progress({ write: (text: string) => plain.push(text) }, { label: 'gc', now: () => clock })
  inPipe.update({ phase: 'mark', repositories: 1, bytes: 0 })
  inPipe.update({ phase: 'mark', repositories: 2, bytes: 0 })
  inPipe.update({ phase: 'sweep', repositories: 2, bytes: 1536 })
  t.same(plain.map((line) => line.split(':')[0]), ['gc mark', 'gc sweep'], 'a line per phase change (and every 10 s)')
  t.ok(plain.every((line) => line.endsWith('\n') && !line.includes('\r')))
  t.equal(formatBytes(1536), '1.5 KiB')
  t.equal(formatBytes(12), '12 B')
})
