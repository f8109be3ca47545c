/**
 * The example server with TLS and token auth (the bundled token service), driven by a real
 * client: skopeo pushes and pulls a small OCI image through the whole flow (challenge, token
 * request with --creds, retry), and is refused where the ACL says so, leaving nothing behind.
 * A second part runs htpasswd mode the same way.
 */

import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import http2 from 'node:http2'
import https from 'node:https'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { promisify } from 'node:util'
import type { FastifyInstance } from 'fastify'
import { buildServer } from '../../examples/server.js'
import { parseConfig } from '../../examples/config.js'
import { htpasswdFile, keyPair, selfSigned, tempDir, type Certificate } from '../auth/fixtures.js'

const run = promisify(execFile)

// skopeo runs a few seconds per copy on a busy machine; a hang must still end.
const timeout = 240_000

const sha256 = (bytes: Buffer | string): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`

/** A one-layer OCI image layout with tag `v1`, built from scratch. */
async function ociLayout (t: Test, seed: string): Promise<{ dir: string, manifestDigest: string }> {
  const dir = await tempDir(t, 'oci-layout-')
  const blobs = join(dir, 'blobs', 'sha256')
  await mkdir(blobs, { recursive: true })
  const content = join(dir, 'content')
  await mkdir(content)
  await writeFile(join(content, 'hello.txt'), `hello from ${seed}\n`)
  await run('tar', ['-czf', join(dir, 'layer.tar.gz'), '-C', content, 'hello.txt'])
  const layer = await readFile(join(dir, 'layer.tar.gz'))
  const diffId = sha256(await promisify(execFile)('gzip', ['-dc', join(dir, 'layer.tar.gz')], { encoding: 'buffer' }).then((out) => out.stdout))
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffId] }, config: {} }))
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }]
  }))
  for (const blob of [layer, config, manifest]) await writeFile(join(blobs, sha256(blob).slice(7)), blob)
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  await writeFile(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(manifest), size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }]
  }))
  return { dir, manifestDigest: sha256(manifest) }
}

interface Skopeo { ok: boolean, output: string }

async function skopeo (home: string, args: string[]): Promise<Skopeo> {
  try {
    const { stdout, stderr } = await run('skopeo', ['--insecure-policy', ...args], { timeout: 60_000, env: { PATH: process.env.PATH, HOME: home } })
    return { ok: true, output: stdout + stderr }
  } catch (error) {
    const failure = error as { stdout?: string, stderr?: string, message: string }
    return { ok: false, output: `${failure.stdout ?? ''}${failure.stderr ?? failure.message}` }
  }
}

interface Running { app: FastifyInstance, host: string, root: string, home: string, logs: () => string, cert: Certificate }

/** The example server from flags, over TLS, on a free port, logging JSON to a buffer. */
async function start (t: Test, flags: (dir: string) => Promise<string[]>): Promise<Running> {
  const dir = await tempDir(t, 'oci-registry-auth-')
  const root = join(dir, 'data')
  const cert = await selfSigned(dir, 'tls')
  const config = parseConfig(['--root', root, '--tls-certificate', cert.certPath, '--tls-key', cert.keyPath, ...await flags(dir)], {}, dir)
  let log = ''
  const stream = new PassThrough()
  stream.on('data', (chunk: Buffer) => { log += chunk.toString() })
  const app = buildServer(config, { level: 'debug', stream })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  const { port } = app.server.address() as { port: number }
  const home = join(dir, 'home')
  await mkdir(home)
  return { app, host: `127.0.0.1:${port}`, root, home, logs: () => log, cert }
}

/** Files under a repository's `_uploads`, `_layers` and `_manifests` directories. */
async function repositoryFiles (root: string, name: string): Promise<string[]> {
  try {
    const dir = join(root, 'docker', 'registry', 'v2', 'repositories', name)
    return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name))
  } catch {
    return []
  }
}

async function httpsGet (running: Running, path: string): Promise<{ status: number, headers: Record<string, unknown> }> {
  return await new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port: running.host.split(':')[1], path, ca: running.cert.certPem }, (response) => {
      response.resume()
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers }))
    }).on('error', reject)
  })
}

t.test('token auth with the bundled token service, over TLS, with skopeo', { timeout }, async (t) => {
  const passwords = { alice: 'alice-secret-1', bob: 'bob-secret-2' }
  const running = await start(t, async (dir) => {
    const htpasswd = await htpasswdFile(t, passwords)
    const key = join(dir, 'token-key.pem')
    await writeFile(key, keyPair('ec').privatePem)
    const acl = join(dir, 'acl.json')
    await writeFile(acl, JSON.stringify({
      rules: [
        { user: 'alice', repository: '**', actions: ['*'] },
        { user: 'bob', repository: 'app', actions: ['pull'] },
        { anonymous: true, repository: 'public/**', actions: ['pull'] }
      ]
    }))
    return ['--auth', 'token', '--htpasswd', htpasswd, '--token-key', key, '--token-acl', acl]
  })
  const { host, home, root } = running

  const challenge = await httpsGet(running, '/v2/')
  t.equal(challenge.status, 401, 'HTTPS with the test certificate, verified against it')
  t.equal(challenge.headers['www-authenticate'], `Bearer realm="https://${host}/token",service="fastify-oci-registry"`)

  const image = await ociLayout(t, 'token')
  const push = await skopeo(home, ['copy', '--dest-tls-verify=false', '--dest-creds', `alice:${passwords.alice}`, `oci:${image.dir}:v1`, `docker://${host}/app:v1`])
  t.ok(push.ok, `alice pushes app:v1\n${push.output}`)

  const inspect = await skopeo(home, ['inspect', '--raw', '--tls-verify=false', '--creds', `bob:${passwords.bob}`, `docker://${host}/app:v1`])
  t.ok(inspect.ok, `bob reads the manifest\n${inspect.output}`)
  t.equal(sha256(inspect.output.trim()), image.manifestDigest, 'the manifest bytes are the ones pushed')
  const out = await tempDir(t, 'oci-pulled-')
  const pull = await skopeo(home, ['copy', '--src-tls-verify=false', '--src-creds', `bob:${passwords.bob}`, `docker://${host}/app:v1`, `oci:${out}:v1`])
  t.ok(pull.ok, `bob pulls app:v1\n${pull.output}`)
  const pulledIndex = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
  t.equal(pulledIndex.manifests[0]?.digest, image.manifestDigest)

  const before = await repositoryFiles(root, 'app')
  const other = await ociLayout(t, 'denied')
  const denied = await skopeo(home, ['copy', '--dest-tls-verify=false', '--dest-creds', `bob:${passwords.bob}`, `oci:${other.dir}:v1`, `docker://${host}/app:v2`])
  t.notOk(denied.ok, 'bob may not push')
  t.match(denied.output, /unauthorized|denied|authentication required/i)
  t.same(await repositoryFiles(root, 'app'), before, 'the refused push left no upload, link or tag')
  const elsewhere = await skopeo(home, ['copy', '--dest-tls-verify=false', '--dest-creds', `bob:${passwords.bob}`, `oci:${other.dir}:v1`, `docker://${host}/bob/app:v1`])
  t.notOk(elsewhere.ok, 'nor anywhere else')
  t.same(await repositoryFiles(root, 'bob/app'), [])

  const anonymous = await skopeo(home, ['inspect', '--raw', '--tls-verify=false', '--no-creds', `docker://${host}/app:v1`])
  t.notOk(anonymous.ok, 'anonymous may not pull app')
  const wrong = await skopeo(home, ['inspect', '--raw', '--tls-verify=false', '--creds', 'bob:wrong', `docker://${host}/app:v1`])
  t.notOk(wrong.ok, 'a wrong password gets nothing')

  const publish = await skopeo(home, ['copy', '--dest-tls-verify=false', '--dest-creds', `alice:${passwords.alice}`, `oci:${image.dir}:v1`, `docker://${host}/public/hello:v1`])
  t.ok(publish.ok, `alice publishes public/hello (a cross-repository mount)\n${publish.output}`)
  const open = await skopeo(home, ['inspect', '--raw', '--tls-verify=false', '--no-creds', `docker://${host}/public/hello:v1`])
  t.ok(open.ok, `anonymous pulls public/hello\n${open.output}`)

  const logs = running.logs()
  t.match(logs, /"user":"alice","access":\[\{"type":"repository","name":"app","actions":\["pull","push"\]\}\],"msg":"token issued"/,
    'alice got a push token from the bundled service')
  t.match(logs, /"user":"bob","access":\[\{"type":"repository","name":"app","actions":\["pull"\]\}\],"msg":"token issued"/,
    'bob asked for push and got only pull')
  // A mount is a POST with ?mount=&from= answered 201 (a refused one starts an upload: 202).
  const lines = logs.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as { msg: string, reqId?: string, req?: { method: string, url: string }, res?: { statusCode: number } })
  const mounts = new Set(lines.filter((line) => line.msg === 'incoming request' && line.req?.method === 'POST' && /[?&]mount=/.test(line.req.url) && /[?&]from=app(&|$)/.test(line.req.url)).map((line) => line.reqId))
  t.ok(lines.some((line) => line.msg === 'request completed' && mounts.has(line.reqId) && line.res?.statusCode === 201),
    'skopeo mounted the layer from app, which alice may pull')
  for (const secret of [...Object.values(passwords), Buffer.from(`alice:${passwords.alice}`).toString('base64'), Buffer.from(`bob:${passwords.bob}`).toString('base64')]) {
    t.notOk(logs.includes(secret), 'no credentials in the log')
  }
  t.notOk(/eyJ[A-Za-z0-9_-]{10,}\.eyJ/.test(logs), 'no token in the log')
})

t.test('htpasswd auth over TLS with skopeo', { timeout }, async (t) => {
  const running = await start(t, async () => ['--auth', 'htpasswd', '--htpasswd', await htpasswdFile(t, { carol: 'carol-secret' })])
  const { host, home, root } = running
  const challenge = await httpsGet(running, '/v2/')
  t.equal(challenge.headers['www-authenticate'], 'Basic realm="registry"')
  const image = await ociLayout(t, 'basic')
  const refused = await skopeo(home, ['copy', '--dest-tls-verify=false', '--dest-creds', 'carol:wrong', `oci:${image.dir}:v1`, `docker://${host}/lib/img:v1`])
  t.notOk(refused.ok, 'a wrong password cannot push')
  t.same(await repositoryFiles(root, 'lib/img'), [], 'and left nothing')
  const push = await skopeo(home, ['copy', '--dest-tls-verify=false', '--dest-creds', 'carol:carol-secret', `oci:${image.dir}:v1`, `docker://${host}/lib/img:v1`])
  t.ok(push.ok, `carol pushes\n${push.output}`)
  const inspect = await skopeo(home, ['inspect', '--raw', '--tls-verify=false', '--creds', 'carol:carol-secret', `docker://${host}/lib/img:v1`])
  t.equal(sha256(inspect.output.trim()), image.manifestDigest)
  t.notOk((await skopeo(home, ['inspect', '--raw', '--tls-verify=false', '--no-creds', `docker://${host}/lib/img:v1`])).ok, 'anonymous cannot pull')
  t.notOk(running.logs().includes('carol-secret'))
})

t.test('HTTP/2 beside HTTP/1.1 over TLS', { timeout }, async (t) => {
  const running = await start(t, async () => ['--http2'])
  const session = http2.connect(`https://${running.host}`, { ca: running.cert.certPem })
  t.teardown(() => session.close())
  const response = await new Promise<{ status: number, version: string }>((resolve, reject) => {
    const request = session.request({ ':path': '/v2/' })
    request.on('response', (headers) => {
      request.resume()
      request.on('end', () => resolve({ status: Number(headers[':status']), version: '2' }))
    })
    request.on('error', reject)
    request.end()
  })
  t.same(response, { status: 200, version: '2' })
  t.equal((await httpsGet(running, '/v2/')).status, 200, 'HTTP/1.1 still works')
})
