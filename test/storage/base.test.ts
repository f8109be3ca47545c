/**
 * The storage base layer as the registry uses it: every driver the plugin builds or is given
 * sits behind it, and an embedder can watch the timed actions. The base layer's contract itself
 * runs on every driver in the driver suite.
 */

import Fastify from 'fastify'
import t from 'tap'
import registry from '../../plugins/registry.js'
import { createDriver } from '../../plugins/storage.js'
import { StorageBase, observeStorage, wrapDriver, type StorageActionEvent } from '../../lib/storage/base.js'
import { InMemoryDriver } from '../../lib/storage/drivers/inmemory.js'
import { urls } from '../helpers.js'

t.test('createDriver puts every driver behind the base layer, the host\'s own too', async (t) => {
  const bare = Object.assign(new InMemoryDriver(), { minChunkSize: 1024 })
  const hosts = await createDriver(bare)
  t.ok(hosts instanceof StorageBase, 'a driver the host passes is wrapped')
  t.equal(hosts.driver, bare, 'around that very driver')
  t.equal(hosts.name, 'inmemory', 'named after it')
  t.equal(hosts.minChunkSize, 1024, 'with its minimum chunk size')
  const built = await createDriver({ driver: 'inmemory' })
  t.ok(built instanceof StorageBase, 'a driver built from options is wrapped')
  t.equal(await createDriver(built), built, 'a driver already wrapped is used as it is')
})

t.test('an embedder observes the storage actions of a running registry', async (t) => {
  const driver = wrapDriver(new InMemoryDriver())
  const app = Fastify()
  await app.register(registry, { storage: driver })
  t.teardown(() => app.close())
  await app.ready()

  const events: StorageActionEvent[] = []
  const stop = observeStorage(driver, (event) => events.push(event))
  const answer = await app.inject({ method: 'GET', url: urls.manifest('watched/repo', 'latest') })
  t.equal(answer.statusCode, 404)
  t.ok(events.length > 0, `a request's storage actions are reported (${events.map((event) => event.action).join(', ')})`)
  t.ok(events.every((event) => event.driver === 'inmemory'), 'each with the driver name')
  t.ok(events.some((event) => event.error?.name === 'PathNotFoundError'), 'the failed lookups among them')

  stop()
  const count = events.length
  await app.inject({ method: 'GET', url: urls.manifest('watched/repo', 'latest') })
  t.equal(events.length, count, 'nothing once unsubscribed')
})

t.test('wrapping is idempotent, and observing needs the base layer', async (t) => {
  const base = wrapDriver(new InMemoryDriver())
  t.equal(wrapDriver(base), base, 'a driver already behind the base layer is returned as it is')
  t.throws(() => observeStorage(new InMemoryDriver(), () => {}), TypeError, 'a bare driver cannot be observed')

  const events: StorageActionEvent[] = []
  base.observe(() => { throw new Error('a faulty observer') })
  base.observe((event) => events.push(event))
  await base.putContent('/a', 'x')
  t.equal((await base.getContent('/a')).toString(), 'x', 'an observer that throws does not fail the action')
  t.same(events.map((event) => event.action), ['put_content', 'get_content'], 'nor keeps the others from hearing it')
})
