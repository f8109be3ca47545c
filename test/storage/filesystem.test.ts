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
