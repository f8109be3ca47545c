import t from 'tap'
import { InMemoryDriver } from '../../lib/storage/drivers/inmemory.js'
import { driverSuite } from './driver-suite.js'

driverSuite(t, 'inmemory', async () => ({ driver: new InMemoryDriver() }))

t.test('lists a directory of 10,000 entries, in order, and only its own', async (t) => {
  const driver = new InMemoryDriver()
  for (let i = 0; i < 10_000; i++) await driver.putContent(`/big/entry-${String(i).padStart(5, '0')}`, '')
  for (let i = 0; i < 1000; i++) await driver.putContent(`/other/${i}/file`, '')
  // Speed is the benchmark's business (a timing here would fail on a loaded machine).
  const listed = await driver.list('/big')
  t.equal(listed.length, 10_000, 'every entry is listed')
  t.same(listed, [...listed].sort(), 'in order')
  t.equal(listed[0], '/big/entry-00000')
  t.same(await driver.list('/other/999'), ['/other/999/file'], 'a small directory beside it lists its one entry')
})

t.test('removes directories left empty', async (t) => {
  const driver = new InMemoryDriver()
  await driver.putContent('/a/b/c/file', 'x')
  await driver.putContent('/a/kept', 'x')
  await driver.delete('/a/b/c/file')
  t.same(await driver.list('/a'), ['/a/kept'], 'the emptied directories are gone')
  await driver.move('/a/kept', '/z/moved')
  t.same(await driver.list('/'), ['/z'], 'a move empties and removes the source directory')
})
