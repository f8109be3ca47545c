/**
 * The notifications' outbox in Redis (when `cache.redis` is set): events of pushes made while
 * the receiver refuses them are kept in Redis, not in storage, and a registry started afterwards
 * on the same Redis delivers them, in order; two registries sharing it deliver each event once.
 */

import t from 'tap'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import registry, { type RegistryPluginOptions } from '../../plugins/registry.js'
import { startRedis } from '../redis.js'
import { pushBlob, tempDir } from '../helpers.js'
import { Receiver } from '../notifications/receiver.js'

const timeout = 120_000

async function app (options: RegistryPluginOptions): Promise<FastifyInstance> {
  const instance = Fastify()
  await instance.register(registry, options)
  await instance.ready()
  return instance
}

t.test('events wait in Redis for the receiver, across a restart', { timeout }, async (t) => {
  const redis = await startRedis(t)
  const receiver = new Receiver()
  const url = await receiver.listen()
  t.teardown(async () => { await receiver.close() })
  receiver.status = 503
  const root = await tempDir(t)
  const options: RegistryPluginOptions = {
    storage: { driver: 'filesystem', root },
    cache: { redis, keyPrefix: 'outbox-test:' },
    notifications: { endpoints: [{ name: 'ci', url, threshold: 0, backoff: '20ms', maxbackoff: '100ms', maxattempts: 100000 }] }
  }
  const first = await app(options)
  const digests: string[] = []
  for (let i = 0; i < 4; i++) digests.push(await pushBlob(first, 'redis/app', Buffer.from(`kept in redis ${i}`)))
  await first.close()
  t.notOk((await readdir(join(root, 'docker/registry/v2/_oci')).catch((): string[] => [])).includes('notifications'), 'nothing of the outbox in storage')

  receiver.status = 200
  const second = await app(options)
  t.teardown(async () => { await second.close() })
  await receiver.until(() => receiver.events().length >= digests.length)
  t.same(receiver.events().map((event) => event.target.digest), digests, 'delivered in push order')
})

t.test('two registries on one Redis deliver each event once, in order', { timeout }, async (t) => {
  const redis = await startRedis(t)
  const receiver = new Receiver()
  const url = await receiver.listen()
  t.teardown(async () => { await receiver.close() })
  const root = await tempDir(t)
  const options: RegistryPluginOptions = {
    storage: { driver: 'filesystem', root },
    cache: { redis },
    notifications: { endpoints: [{ name: 'ci', url, threshold: 0, backoff: '20ms' }] }
  }
  const [one, two] = await Promise.all([app(options), app(options)])
  t.teardown(async () => { await Promise.all([one.close(), two.close()]) })
  const digests: string[] = []
  for (let i = 0; i < 10; i++) digests.push(await pushBlob(i % 2 === 0 ? one : two, 'shared/app', Buffer.from(`shared ${i}`)))
  await receiver.until(() => receiver.events().length >= digests.length)
  t.same(receiver.events().map((event) => event.target.digest), digests, 'each once, in push order')
})
