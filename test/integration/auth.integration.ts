/**
 * The clients against the example server with access control: htpasswd (Basic) and token mode
 * with the bundled token service (Bearer). Each client is refused without credentials and
 * pushes and pulls with them; the conformance suite passes with --user and --pass.
 */

import t from 'tap'
import { createHash, generateKeyPairSync } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { RegistryClientV2 } from 'oci-registry-client'
import * as snyk from '@snyk/docker-registry-v2-client'
import { RegistryClient } from '../../lib/client/index.js'
import { runConformance } from '../../lib/conformance/index.js'
import { run, startContainerd, startDockerd, startServer, tempDir, type Cli } from './harness.js'
import { buildImages, refDescriptor } from './oci-layout.js'

const USER = 'alice'
const PASSWORD = 'correct horse'

t.test('clients with credentials, in htpasswd and in token mode', async (t) => {
  const work = await tempDir(t, 'auth-it-')
  const htpasswd = join(work, 'htpasswd')
  await writeFile(htpasswd, (await run('htpasswd', ['-nbB', USER, PASSWORD])).stdout)
  const key = join(work, 'token-key.pem')
  await writeFile(key, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }))
  const images = await buildImages(work)
  const local = await refDescriptor(images.layout, images.image)
  const docker: Cli = await startDockerd(t, work)
  const ctr = await startContainerd(t, work)
  await mkdir(join(work, 'rootfs'))
  await writeFile(join(work, 'rootfs', 'greeting'), 'hello with credentials\n')
  await run('tar', ['-C', join(work, 'rootfs'), '-cf', join(work, 'rootfs.tar'), '.'])

  const modes = {
    htpasswd: ['--auth', 'htpasswd', '--htpasswd', htpasswd],
    token: ['--auth', 'token', '--htpasswd', htpasswd, '--token-key', key]
  }
  for (const [mode, flags] of Object.entries(modes)) {
    await t.test(`${mode} mode`, async (t) => {
      const registry = await startServer(t, ['--root', join(work, `registry-${mode}`), '--delete', ...flags])
      const ref = (path: string): string => `docker://${registry.host}/${path}`
      const client = new RegistryClient({ url: registry.url, username: USER, password: PASSWORD })

      await t.test('our client: refused without credentials, served with them', async (t) => {
        const statusOf = async (attempt: Promise<unknown>): Promise<number | undefined> =>
          await attempt.then(() => undefined, (error: { statusCode?: number }) => error.statusCode)
        // Token mode hands anonymous callers a token without access: /v2/ answers, a repository does not.
        const anonymous = new RegistryClient({ url: registry.url })
        if (mode === 'htpasswd') t.equal(await statusOf(anonymous.ping()), 401, 'GET /v2/ needs credentials')
        t.equal(await statusOf(anonymous.catalog()), 401, 'the catalog needs credentials')
        t.equal(await statusOf(anonymous.pushBlob('auth/anonymous', Buffer.from('x'))), 401, 'a push needs credentials')
        t.equal(await statusOf(new RegistryClient({ url: registry.url, username: USER, password: 'wrong' }).ping()), 401, 'a wrong password is refused')
        await client.ping()
        t.same((await client.catalog()).repositories, [])
      })

      await t.test('skopeo: push refused without credentials, copy and inspect with them', async (t) => {
        const refused = await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${images.layout}:${images.image}`, ref('auth/skopeo:v1')], { allowFailure: true })
        t.not(refused.code, 0)
        t.match(refused.stderr, /unauthorized|authentication required|denied/i)
        await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', `${USER}:${PASSWORD}`, `oci:${images.layout}:${images.image}`, ref('auth/skopeo:v1')])
        const info = JSON.parse((await run('skopeo', ['inspect', '--tls-verify=false', '--creds', `${USER}:${PASSWORD}`, ref('auth/skopeo:v1')])).stdout) as { Digest: string }
        t.equal(info.Digest, local.digest)
      })

      await t.test('docker: login, push, pull by digest', async (t) => {
        const image = `${registry.host}/auth/docker:v1`
        await docker('import', join(work, 'rootfs.tar'), image)
        const unauthenticated = await docker('push', image).catch((error: Error) => error.message)
        t.match(unauthenticated, /no basic auth credentials|unauthorized|authentication required|denied/i, 'refused without login')
        await docker('login', '--username', USER, '--password', PASSWORD, registry.host)
        const pushed = await docker('push', image)
        const digest = /v1: digest: (sha256:[a-f0-9]{64})/.exec(pushed)?.[1] ?? ''
        t.equal((await client.getManifest('auth/docker', 'v1')).digest, digest)
        await docker('rmi', image)
        t.match(await docker('pull', `${registry.host}/auth/docker@${digest}`), new RegExp(`Digest: ${digest}`))
        await docker('logout', registry.host)
      })

      await t.test('ctr: pull and push with --user', async (t) => {
        const refused = await run('/usr/bin/ctr', ['--address', ctr.socket, '--namespace', 'integration', 'images', 'pull', '--plain-http', '--snapshotter', 'native', `${registry.host}/auth/skopeo:v1`], { allowFailure: true })
        t.not(refused.code, 0, 'refused without credentials')
        await ctr('images', 'pull', '--plain-http', '--snapshotter', 'native', '--user', `${USER}:${PASSWORD}`, `${registry.host}/auth/skopeo:v1`)
        await ctr('images', 'tag', `${registry.host}/auth/skopeo:v1`, `${registry.host}/auth/ctr:v1`)
        await ctr('images', 'push', '--plain-http', '--user', `${USER}:${PASSWORD}`, `${registry.host}/auth/ctr:v1`)
        t.equal((await client.getManifest('auth/ctr', 'v1')).digest, local.digest)
      })

      await t.test('podman: push and pull with --creds', async (t) => {
        const storage = join(work, `podman-${mode}`)
        await mkdir(storage, { recursive: true })
        await writeFile(join(storage, 'storage.conf'), `[storage]\ndriver = "vfs"\nrunroot = ${JSON.stringify(join(storage, 'run'))}\ngraphroot = ${JSON.stringify(join(storage, 'graph'))}\n`)
        await writeFile(join(storage, 'auth.json'), '{"auths":{}}')
        const env = { ...process.env, CONTAINERS_STORAGE_CONF: join(storage, 'storage.conf'), REGISTRY_AUTH_FILE: join(storage, 'auth.json') }
        const podman = async (...args: string[]): Promise<string> => (await run('podman', ['--events-backend', 'file', '--cgroup-manager', 'cgroupfs', ...args], { env })).stdout
        const image = `${registry.host}/auth/podman:v1`
        await podman('import', join(work, 'rootfs.tar'), image)
        await podman('push', '--tls-verify=false', '--creds', `${USER}:${PASSWORD}`, image)
        await podman('rmi', image)
        await podman('pull', '--tls-verify=false', '--creds', `${USER}:${PASSWORD}`, image)
        t.same(await client.allTags('auth/podman'), ['v1'])
      })

      await t.test('npm clients with credentials', async (t) => {
        const oci = new RegistryClientV2({ name: `http://${registry.host}/auth/npm`, username: USER, password: PASSWORD, scopes: ['pull', 'push'] })
        const config = Buffer.from('{"architecture":"amd64","os":"linux"}')
        const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`
        await oci.blobUpload({ digest: configDigest, stream: Readable.from([config]), contentLength: config.length })
        const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length }, layers: [] }))
        await oci.putManifest({ manifestData: manifest, ref: 'v1', mediaType: 'application/vnd.oci.image.manifest.v1+json' })
        t.same((await oci.listTags()).tags, ['v1'])
        const options = { protocol: 'http:' }
        t.same(await snyk.getTags(registry.host, 'auth/npm', USER, PASSWORD, 1000, undefined, options), ['v1'])
        t.same(await snyk.getImageConfig(registry.host, 'auth/npm', configDigest, USER, PASSWORD, options), JSON.parse(config.toString('utf8')))
      })

      await t.test('the conformance suite with --user and --pass', async (t) => {
        const report = await runConformance({ url: registry.url, username: USER, password: PASSWORD })
        t.equal(report.summary.failed, 0, JSON.stringify(report.results.filter((entry) => entry.status === 'fail').map((entry) => [entry.name, entry.message])))
        t.equal(report.summary.passed, report.summary.total)
      })
    })
  }
})
