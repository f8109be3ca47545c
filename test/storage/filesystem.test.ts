import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { StorageDriverError } from '../../lib/storage/driver.js'
import { FilesystemDriver } from '../../lib/storage/drivers/filesystem.js'
import { driverSuite } from './driver-suite.js'

async function tempRoot (): Promise<string> {
  return await mkdtemp(join(tmpdir(), 'oci-registry-fs-driver-'))
}

driverSuite(t, 'filesystem', async () => {
  const root = await tempRoot()
  return {
    driver: new FilesystemDriver({ root }),
    cleanup: () => rm(root, { recursive: true, force: true })
  }
})

// The same contract with the read cache keeping everything it reads at once (no settling time).
driverSuite(t, 'filesystem, caching every read', async () => {
  const root = await tempRoot()
  return {
    driver: new FilesystemDriver({ root, cache: { settleMs: 0 } }),
    cleanup: () => rm(root, { recursive: true, force: true })
  }
})

t.test('the read cache sees every change, whichever process makes it', async (t) => {
  const root = await tempRoot()
  t.teardown(() => rm(root, { recursive: true, force: true }))
  const cached = new FilesystemDriver({ root, cache: { settleMs: 0 } })
  // Another process on the same tree, e.g. a second worker.
  const other = new FilesystemDriver({ root, cache: false })

  await other.putContent('/repo/tags/a/link', 'sha256:one')
  t.equal((await cached.getContent('/repo/tags/a/link')).toString(), 'sha256:one')
  t.equal((await cached.getContent('/repo/tags/a/link')).toString(), 'sha256:one', 'read again (from the cache)')
  await other.putContent('/repo/tags/a/link', 'sha256:two')
  t.equal((await cached.getContent('/repo/tags/a/link')).toString(), 'sha256:two', 'a replaced file of the same size is read anew')
  await other.delete('/repo/tags/a/link')
  await t.rejects(cached.getContent('/repo/tags/a/link'), { name: 'PathNotFoundError' }, 'a deleted file is gone')

  await other.putContent('/repo/tags/b/link', 'x')
  t.same(await cached.list('/repo/tags'), ['/repo/tags/a', '/repo/tags/b'])
  const listed = await cached.list('/repo/tags')
  listed.push('/repo/tags/mutated')
  t.same(await cached.list('/repo/tags'), ['/repo/tags/a', '/repo/tags/b'], 'a caller changing a listing does not change the cache')
  await other.putContent('/repo/tags/c/link', 'x')
  t.same(await cached.list('/repo/tags'), ['/repo/tags/a', '/repo/tags/b', '/repo/tags/c'], 'an added entry is listed')
  await other.delete('/repo/tags/a')
  t.same(await cached.list('/repo/tags'), ['/repo/tags/b', '/repo/tags/c'], 'a removed entry is not')
})

t.test('writer: chunks of any size, not awaited, land in order across staging buffers and background flushes', async (t) => {
  const root = await tempRoot()
  t.teardown(() => rm(root, { recursive: true, force: true }))
  const driver = new FilesystemDriver({ root })
  const writer = await driver.writer('/big', false)
  const expected = createHash('sha256')
  const pending: Array<Promise<void>> = []
  let total = 0
  // Past 64 MiB, so that a background flush runs while writes go on.
  const sizes = [1, 7, 511 * 1024, 512 * 1024, 512 * 1024 + 1, 3 * 1024 * 1024 + 5, 100]
  while (total < 70 * 1024 * 1024) {
    for (const size of sizes) {
      const chunk = randomBytes(size)
      expected.update(chunk)
      total += size
      pending.push(writer.write(chunk))
    }
  }
  await Promise.all(pending)
  t.equal(writer.size, total, 'size counts every byte accepted')
  await writer.commit()
  const content = await readFile(join(root, 'big'))
  t.equal(content.length, total)
  t.equal(createHash('sha256').update(content).digest('hex'), expected.digest('hex'), 'the bytes are those written, in order')
})

t.test('writer: cancel with writes in flight removes the file', async (t) => {
  const root = await tempRoot()
  t.teardown(() => rm(root, { recursive: true, force: true }))
  const driver = new FilesystemDriver({ root })
  const writer = await driver.writer('/gone', false)
  const pending = [writer.write(randomBytes(2 * 1024 * 1024)), writer.write(randomBytes(10))]
  await writer.cancel()
  await Promise.allSettled(pending)
  await t.rejects(driver.stat('/gone'), { name: 'PathNotFoundError' })
})

t.test('filesystem specifics', async (t) => {
  const root = await tempRoot()
  t.teardown(() => rm(root, { recursive: true, force: true }))

  t.throws(() => new FilesystemDriver({ root: '' }), TypeError, 'an empty root is refused')

  const driver = new FilesystemDriver({ root: join(root, 'created', 'later') })
  t.same(await driver.list('/'), [], 'a missing root lists empty')
  await driver.putContent('/docker/registry/v2/blobs/data', 'bytes')
  t.equal(await readFile(join(root, 'created', 'later', 'docker', 'registry', 'v2', 'blobs', 'data'), 'utf8'), 'bytes',
    'a driver path is the same path below the root')

  await writeFile(join(root, 'created', 'later', 'docker', '.tmp~0123456789abcdef'), 'left by a crash')
  await writeFile(join(root, 'created', 'later', 'docker', 'not a driver name'), 'foreign')
  t.same(await driver.list('/docker'), ['/docker/registry'], 'temporary and foreign names are not listed')
  const walked = []
  for await (const info of driver.walk('/docker')) walked.push(info.path)
  t.same(walked, ['/docker/registry', '/docker/registry/v2', '/docker/registry/v2/blobs', '/docker/registry/v2/blobs/data'],
    'nor walked')

  const failures = [
    () => driver.getContent('/missing'),
    () => driver.putContent('/docker', 'over a directory'),
    () => driver.putContent('/docker/registry/v2/blobs/data/below', 'below a file'),
    () => driver.writer('/docker', false),
    () => driver.move('/docker/registry/v2/blobs/data', '/docker/registry')
  ]
  for (const failure of failures) {
    try {
      await failure()
      t.fail('expected a failure')
    } catch (error) {
      t.ok(error instanceof StorageDriverError, `a driver error: ${(error as Error).message}`)
      t.notOk((error as Error).message.includes(root), 'the message does not name the host directory')
    }
  }
})
