/**
 * Temporary files of atomic writes cut short by a crash (a kill between writing aside and the
 * rename) are never listed, and upload purging removes those older than its bound.
 */

import { readdir, utimes, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import t from 'tap'
import { wrapDriver } from '../../lib/storage/base.js'
import { FilesystemDriver } from '../../lib/storage/drivers/filesystem.js'
import { pathFor } from '../../lib/storage/paths.js'
import { RegistryService } from '../../lib/storage/registry.js'
import { tempDir } from '../helpers.js'

const DAY = 24 * 60 * 60 * 1000
const hex = 'ab'.repeat(32)

t.test('purging removes old temporary files in blob, layer and revision directories, and only those', async (t) => {
  const root = await tempDir(t)
  const driver = wrapDriver(new FilesystemDriver({ root }))
  const registry = new RegistryService(driver)
  t.same(await registry.purgeUploads(new Date()), [], 'a purge of an empty root finds nothing and fails nothing')

  const name = 'crash/site'
  const published = [
    pathFor({ kind: 'blobData', algorithm: 'sha256', hex }),
    pathFor({ kind: 'layerLink', name, algorithm: 'sha256', hex }),
    pathFor({ kind: 'manifestRevisionLink', name, algorithm: 'sha256', hex })
  ]
  for (const path of published) await driver.putContent(path, `sha256:${hex}`)

  const old = new Date(Date.now() - 8 * DAY)
  const leftovers: Array<{ file: string, old: boolean }> = []
  for (const [i, path] of published.entries()) {
    const dir = join(root, dirname(path))
    for (const isOld of [true, false]) {
      const file = join(dir, `.tmp~${String(i).padStart(2, '0')}${isOld ? 'aa' : 'ff'}0123456789ab`)
      await writeFile(file, 'a write cut short')
      if (isOld) await utimes(file, old, old)
      leftovers.push({ file, old: isOld })
    }
  }

  for (const path of published) {
    t.same(await driver.list(dirname(path)), [path], `${dirname(path)} lists no temporary file`)
  }
  const walked: string[] = []
  for await (const info of driver.walk('/')) walked.push(info.path)
  t.notOk(walked.some((path) => path.includes('.tmp~')), 'a walk shows none')

  await registry.purgeUploads(new Date(Date.now() - 7 * DAY))
  for (const { file, old } of leftovers) {
    const kept = (await readdir(dirname(file))).includes(file.slice(dirname(file).length + 1))
    t.equal(kept, !old, `${old ? 'an old' : 'a fresh'} temporary file in ${dirname(file).slice(root.length)} is ${old ? 'removed' : 'kept'}`)
  }
  for (const path of published) {
    t.equal((await driver.getContent(path)).toString(), `sha256:${hex}`, `${path} is untouched`)
  }
})

t.test('the driver removes temporary files below a directory only, and ignores names that are not its own', async (t) => {
  const root = await tempDir(t)
  const driver = new FilesystemDriver({ root })
  await driver.putContent('/a/file', 'x')
  await driver.putContent('/b/file', 'x')
  const old = new Date(Date.now() - DAY)
  const files = ['a/.tmp~0123456789abcdef', 'b/.tmp~0123456789abcdef', 'a/.tmp~not-ours', 'a/notes.tmp']
  for (const file of files) {
    await writeFile(join(root, file), 'x')
    await utimes(join(root, file), old, old)
  }
  t.equal(await driver.removeTemporaryFiles('/a', new Date()), 1, 'one temporary file below /a')
  t.same((await readdir(join(root, 'a'))).sort(), ['.tmp~not-ours', 'file', 'notes.tmp'], 'foreign names stay')
  t.same((await readdir(join(root, 'b'))).sort(), ['.tmp~0123456789abcdef', 'file'], 'another directory is not visited')
  t.equal(await driver.removeTemporaryFiles('/missing', new Date()), 0, 'an absent directory has none')
})
