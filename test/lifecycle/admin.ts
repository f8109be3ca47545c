/** A registry for the lifecycle tests: htpasswd auth with an admin, whose credentials every request carries unless it names others. */

import type { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import registry, { type RegistryPluginOptions } from '../../plugins/registry.js'
import { htpasswdFile } from '../auth/fixtures.js'
import { tempDir, type TestContext } from '../helpers.js'

export const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
export const ADMIN = basic('admin', 'admin-secret')
export const USER = basic('user', 'user-secret')

export async function adminApp (t: TestContext, options: Omit<RegistryPluginOptions, 'auth'> & { root?: string, logTo?: Writable } = {}): Promise<{ app: FastifyInstance, root: string }> {
  const { root: given, logTo, ...rest } = options
  const root = given ?? await tempDir(t)
  const path = await htpasswdFile(t, { admin: 'admin-secret', user: 'user-secret' })
  const app = Fastify({ logger: logTo === undefined ? false : { level: 'info', stream: logTo } })
  // The test helpers send no credentials: the admin's go with every request that has none.
  app.addHook('onRequest', async (request) => {
    request.headers.authorization ??= ADMIN
  })
  await app.register(registry, { storage: { driver: 'filesystem', root }, delete: true, ...rest, auth: { mode: 'htpasswd', path, admins: ['admin'] } })
  await app.ready()
  t.teardown(async () => { await app.close() })
  return { app, root }
}
