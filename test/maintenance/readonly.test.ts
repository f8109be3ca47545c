/**
 * Read-only mode at run time: the admin API reads and switches it; while it is on, every change
 * (upload start, chunk, completion, mount, manifest PUT, deletes) is refused with distribution's
 * 405 UNSUPPORTED before its body is read (the bodies below are declared and never sent), and
 * reads go on.
 */

import t, { type Test } from 'tap'
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import registry from '../../plugins/registry.js'
import { htpasswdFile } from '../auth/fixtures.js'
import { errorCode, prepareImage, putManifest, tempDir, urls } from '../helpers.js'

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
const root = { authorization: basic('root', 'rootpw') }
const alice = { authorization: basic('alice', 'alicepw') }

async function start (t: Test, readOnly = false): Promise<{ app: FastifyInstance, port: number }> {
  const path = await htpasswdFile(t, { root: 'rootpw', alice: 'alicepw' })
  const app = Fastify({ logger: false })
  // The helpers push without credentials: they act as the admin, unless a test asks for a stranger.
  app.addHook('onRequest', async (request) => {
    if (request.headers['x-stranger'] === undefined) request.headers.authorization ??= root.authorization
  })
  await app.register(registry, { storage: { driver: 'inmemory' }, delete: true, readOnly, auth: { mode: 'htpasswd', path, admins: ['root'] } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => { await app.close() })
  return { app, port: (app.server.address() as AddressInfo).port }
}

/** Sends a request's headers, declaring a body it never sends; resolves with the answer. */
async function withoutBody (port: number, method: string, path: string, headers: OutgoingHttpHeaders): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port, method, path, headers: { ...headers, 'content-length': '100000' } })
    request.on('error', reject)
    request.on('response', (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => { body += chunk })
      response.on('end', () => {
        request.destroy()
        resolve({ status: response.statusCode ?? 0, body })
      })
    })
    request.flushHeaders()
  })
}

async function switchTo (app: FastifyInstance, enabled: boolean, headers = root) {
  return await app.inject({ method: 'PUT', url: '/v2/_oci/admin/readonly', headers: { ...headers, 'content-type': 'application/json' }, payload: JSON.stringify({ enabled }) })
}

t.test('the admin API: admins only', async (t) => {
  const { app } = await start(t)
  t.same((await app.inject({ method: 'GET', url: '/v2/_oci/admin/readonly', headers: root })).json(), { enabled: false })
  t.equal((await app.inject({ method: 'GET', url: '/v2/_oci/admin/readonly', headers: { 'x-stranger': '1' } })).statusCode, 401)
  const denied = await app.inject({ method: 'GET', url: '/v2/_oci/admin/readonly', headers: alice })
  t.equal(denied.statusCode, 403)
  t.equal(errorCode(denied.body), 'DENIED')
  t.equal((await switchTo(app, true, alice)).statusCode, 403, 'a user who is no admin cannot switch it')
  t.equal(app.ociRegistry.readOnly, false)
  const bad = await app.inject({ method: 'PUT', url: '/v2/_oci/admin/readonly', headers: { ...root, 'content-type': 'application/json' }, payload: '{"enabled":"yes"}' })
  t.equal(bad.statusCode, 400)
  t.equal(errorCode(bad.body), 'PARAMETER_INVALID')
  t.equal((await app.inject({ method: 'PUT', url: '/v2/_oci/admin/readonly', headers: root, payload: 'on' })).statusCode, 400)
})

t.test('the configured mode shows, and the switch cannot lift it', async (t) => {
  const { app } = await start(t, true)
  t.same((await app.inject({ method: 'GET', url: '/v2/_oci/admin/readonly', headers: root })).json(), { enabled: true })
  const off = await switchTo(app, false)
  t.equal(off.statusCode, 200)
  t.same(off.json(), { enabled: true }, 'a deployment configured read-only stays so until its configuration changes')
  t.equal(app.ociRegistry.readOnly, true)
})

t.test('the switch is shared through storage: every process on it follows, a restarted one too', async (t) => {
  const path = await htpasswdFile(t, { root: 'rootpw' })
  const dir = await tempDir(t)
  const serve = async (): Promise<FastifyInstance> => {
    const app = Fastify({ logger: false })
    await app.register(registry, { storage: { driver: 'filesystem', root: dir }, auth: { mode: 'htpasswd', path, admins: ['root'] } })
    await app.ready()
    return app
  }
  const first = await serve()
  const second = await serve()
  t.teardown(async () => { await first.close(); await second.close() })
  t.equal((await switchTo(first, true)).statusCode, 200)
  // The other process reads the switch again on GET, and on its own every couple of seconds.
  t.same((await second.inject({ method: 'GET', url: '/v2/_oci/admin/readonly', headers: root })).json(), { enabled: true })
  const push = await second.inject({ method: 'POST', url: urls.blobUpload('shared/app'), headers: root })
  t.equal(push.statusCode, 405, 'the other process refuses changes')
  t.equal(errorCode(push.body), 'UNSUPPORTED')

  const restarted = await serve()
  t.teardown(async () => { await restarted.close() })
  t.equal(restarted.ociRegistry.readOnly, true, 'a process started later follows the switch')
  t.same((await switchTo(second, false)).json(), { enabled: false })
  t.same((await first.inject({ method: 'GET', url: '/v2/_oci/admin/readonly', headers: root })).json(), { enabled: false })
  t.equal((await first.inject({ method: 'POST', url: urls.blobUpload('shared/app'), headers: root })).statusCode, 202)
})

t.test('while read-only, every change is refused before its body is read; reads go on', async (t) => {
  const { app, port } = await start(t)
  const image = await prepareImage(app, 'team/app', { layers: 1 })
  t.equal((await putManifest(app, 'team/app', 'v1', image.manifest)).statusCode, 201)
  const started = await app.inject({ method: 'POST', url: urls.blobUpload('team/app') })
  t.equal(started.statusCode, 202)
  const uploadPath = new URL(started.headers.location as string, 'http://placeholder').pathname

  t.equal((await switchTo(app, true)).statusCode, 200)
  const layer = image.layers[0] as string
  const changes: Array<[string, string, OutgoingHttpHeaders]> = [
    ['POST', urls.blobUpload('team/app', { digest: layer }), { 'content-type': 'application/octet-stream' }],
    ['POST', urls.blobUpload('team/app'), {}],
    ['POST', `${urls.blobUpload('team/other')}?mount=${layer}&from=team/app`, {}],
    ['PATCH', uploadPath, { 'content-type': 'application/octet-stream' }],
    ['PUT', `${uploadPath}?digest=${layer}`, { 'content-type': 'application/octet-stream' }],
    ['PUT', urls.manifest('team/app', 'v2'), { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }],
    ['DELETE', urls.manifest('team/app', image.digest), {}],
    ['DELETE', urls.blob('team/app', layer), {}],
    ['DELETE', uploadPath, {}]
  ]
  for (const [method, path, headers] of changes) {
    const answer = await withoutBody(port, method, path, { ...headers, ...root })
    t.equal(answer.status, 405, `${method} ${path} refused`)
    t.equal(errorCode(answer.body), 'UNSUPPORTED')
    t.match(answer.body, /read-only/)
  }
  const anonymous = await withoutBody(port, 'PUT', urls.manifest('team/app', 'v3'), { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'x-stranger': '1' })
  t.equal(anonymous.status, 401, 'access control answers first: read-only mode tells nothing to strangers')

  t.equal((await app.inject({ method: 'GET', url: urls.manifest('team/app', 'v1') })).statusCode, 200, 'pulls go on')
  t.equal((await app.inject({ method: 'GET', url: urls.blob('team/app', layer) })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: urls.tags('team/app') })).statusCode, 200)

  t.equal((await switchTo(app, false)).statusCode, 200)
  t.equal((await putManifest(app, 'team/app', 'v2', image.manifest)).statusCode, 201, 'pushes work again')
})
