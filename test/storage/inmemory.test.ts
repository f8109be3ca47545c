import t from 'tap'
import { InMemoryDriver } from '../../lib/storage/drivers/inmemory.js'
import { driverSuite } from './driver-suite.js'

driverSuite(t, 'inmemory', async () => ({ driver: new InMemoryDriver() }), { holdsDataInMemory: true })

t.test('lists a directory of 10,000 entries without scanning the store', async (t) => {
  const driver = new InMemoryDriver()
  for (let i = 0; i < 10_000; i++) await driver.putContent(`/big/entry-${String(i).padStart(5, '0')}`, '')
  for (let i = 0; i < 1000; i++) await driver.putContent(`/other/${i}/file`, '')
  const started = performance.now()
  let listed: string[] = []
  for (let i = 0; i < 100; i++) listed = await driver.list('/big')
  const each = (performance.now() - started) / 100
  t.equal(listed.length, 10_000, 'every entry is listed')
  t.equal(listed[0], '/big/entry-00000', 'in order')
  // Generous, to stay clear of slow machines: a scan of everything on every call is far slower.
  t.ok(each < 50, `one listing takes ${each.toFixed(2)} ms`)
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
