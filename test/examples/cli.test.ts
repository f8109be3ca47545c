/**
 * The command line as a real process: `fastify-oci-registry serve --config config.yml` with a
 * distribution config.yml (filesystem storage, deletes, htpasswd auth and TLS) serves and behaves
 * as configured; help on each command; a bad key or an unwritable root stops the start.
 */

import t, { type Test } from 'tap'
import { createHash } from 'node:crypto'
import https from 'node:https'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { htpasswdFile, selfSigned, tempDir, type Certificate } from '../auth/fixtures.js'
import { isListening, root, start, urlOf, type LogLine } from '../server-process.js'

// The processes spend most of their time loading the TypeScript loader: run them side by side.
t.jobs = 3
const timeout = 300_000
// Starting through the TypeScript loader takes minutes on a loaded machine.
const startLimit = 240_000

const bin = join(root, 'bin', 'fastify-oci-registry.ts')

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: string }

function request (base: string, cert: Certificate, method: string, path: string, options: { auth?: string, body?: Buffer } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {
      ...(options.auth === undefined ? {} : { authorization: `Basic ${Buffer.from(options.auth).toString('base64')}` }),
      ...(options.body === undefined ? {} : { 'content-type': 'application/octet-stream', 'content-length': String(options.body.length) })
    }
    const call = https.request(`${base}${path}`, { method, headers, ca: cert.certPem, agent: false }, (response) => {
      let body = ''
      response.setEncoding('utf8').on('data', (chunk: string) => { body += chunk })
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }))
    })
    call.on('error', reject)
    call.end(options.body)
  })
}

async function distributionConfig (t: Test): Promise<{ dir: string, cert: Certificate, file: string }> {
  const dir = await tempDir(t, 'oci-registry-config-')
  const cert = await selfSigned(dir, 'tls')
  const htpasswd = await htpasswdFile(t, { dana: 'dana-secret' })
  const file = join(dir, 'config.yml')
  await writeFile(file, `version: 0.1
log:
  level: info
  formatter: json
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: ${join(dir, 'data')}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: true
      age: 168h
      interval: 24h
      dryrun: false
http:
  addr: 127.0.0.1:0
  secret: asecretforlocaldevelopment
  headers:
    X-Content-Type-Options: [nosniff]
  tls:
    certificate: ${cert.certPath}
    key: ${cert.keyPath}
auth:
  htpasswd:
    realm: basic-realm
    path: ${htpasswd}
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`)
  return { dir, cert, file }
}

t.test('serve --config: a distribution config.yml with filesystem storage, deletes, htpasswd and TLS', { timeout }, async (t) => {
  const { cert, file } = await distributionConfig(t)
  const server = start(t, ['serve', '--config', file], {}, bin)
  const [listening] = await server.waitFor(isListening, 1, startLimit)
  const base = urlOf(listening as LogLine)
  t.match(base, /^https:\/\/127\.0\.0\.1:[0-9]+$/, 'served over TLS on the address of http.addr')

  const warnings = server.lines.filter((line) => line.level === 40 && line.msg.startsWith('config file:'))
  t.equal(warnings.length, 1, 'one warning about the file')
  t.equal(warnings[0]?.msg, 'config file: not supported, ignored: log.formatter, log.fields, storage.cache, http.secret, http.headers')

  const challenge = await request(base, cert, 'GET', '/v2/')
  t.equal(challenge.status, 401, 'auth challenged')
  t.equal(challenge.headers['www-authenticate'], 'Basic realm="basic-realm"')
  t.equal((await request(base, cert, 'GET', '/v2/', { auth: 'dana:wrong' })).status, 401)

  const auth = 'dana:dana-secret'
  const blob = Buffer.from('configured by a distribution config.yml')
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`
  const push = await request(base, cert, 'POST', `/v2/team/app/blobs/uploads/?digest=${digest}`, { auth, body: blob })
  t.equal(push.status, 201, `a blob pushed: ${push.body}`)
  const pulled = await request(base, cert, 'GET', `/v2/team/app/blobs/${digest}`, { auth })
  t.equal(pulled.body, blob.toString(), 'and served back')
  t.equal((await request(base, cert, 'DELETE', `/v2/team/app/blobs/${digest}`, { auth })).status, 202, 'deletes are enabled')
  t.equal((await request(base, cert, 'HEAD', `/v2/team/app/blobs/${digest}`, { auth })).status, 404, 'and the blob is gone')
  server.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
})

t.test('distribution\'s variables override the file', { timeout }, async (t) => {
  const { cert, file } = await distributionConfig(t)
  const server = start(t, [], { REGISTRY_CONFIGURATION_PATH: file, REGISTRY_STORAGE_DELETE_ENABLED: 'false', REGISTRY_AUTH_HTPASSWD_REALM: 'from-env' }, bin)
  const [listening] = await server.waitFor(isListening, 1, startLimit)
  const base = urlOf(listening as LogLine)
  t.equal((await request(base, cert, 'GET', '/v2/')).headers['www-authenticate'], 'Basic realm="from-env"', 'serve is the default command')
  const refused = await request(base, cert, 'DELETE', '/v2/team/app/blobs/sha256:' + '0'.repeat(64), { auth: 'dana:dana-secret' })
  t.equal(refused.status, 405, 'REGISTRY_STORAGE_DELETE_ENABLED=false wins over storage.delete.enabled: true')
  t.match(JSON.parse(refused.body), { errors: [{ code: 'UNSUPPORTED' }] })
})

t.test('help on each command, and a bad key, an unknown command or an unwritable root stop the start', { timeout }, async (t) => {
  const dir = await tempDir(t, 'oci-registry-cli-')
  const top = start(t, ['--help'], {}, bin)
  const serveHelp = start(t, ['serve', '--help'], {}, bin)
  const conformanceHelp = start(t, ['conformance', '--help'], {}, bin)
  const unknown = start(t, ['frobnicate'], {}, bin)
  const badFile = join(dir, 'bad.yml')
  await writeFile(badFile, 'storage:\n  delete:\n    enabled: maybe\n')
  const bad = start(t, ['serve', '--config', badFile], {}, bin)
  const notADirectory = join(dir, 'a-file')
  await writeFile(notADirectory, '')
  const unwritable = start(t, ['serve', '--port', '0', '--root', join(notADirectory, 'data')], {}, bin)

  t.same(await top.exited, { code: 0, signal: null })
  t.match(top.stdout, /Usage: fastify-oci-registry \[command\] \[options\]/)
  t.match(top.stdout, /^ {2}serve {8}Serve a registry/m)
  t.match(top.stdout, /^ {2}conformance {2}Check a registry/m)
  t.same(await serveHelp.exited, { code: 0, signal: null })
  t.match(serveHelp.stdout, /Usage: fastify-oci-registry serve \[--config <file>\]/)
  for (const name of ['--config <file>', 'REGISTRY_CONFIGURATION_PATH', '--idle-timeout <duration>', 'file: http.timeouts.idle', 'file: storage.delete.enabled']) t.match(serveHelp.stdout, name)
  t.same(await conformanceHelp.exited, { code: 0, signal: null })
  t.match(conformanceHelp.stdout, /Usage: fastify-oci-registry conformance <url>/)
  t.same(await unknown.exited, { code: 2, signal: null })
  t.match(unknown.stderr, /unknown command "frobnicate" \(serve, gc, conformance, reindex, scrub; see --help\)/)
  t.same(await bad.exited, { code: 2, signal: null })
  t.match(bad.stderr, 'storage.delete.enabled: expected true or false, got "maybe"')
  t.same(await unwritable.exited, { code: 1, signal: null })
  t.ok(unwritable.lines.some((line) => line.level === 60 && /^cannot write the storage root .*a-file\/data: a part of the path is a file/.test(line.msg)),
    `a fatal log line names the root\n${unwritable.stdout}`)
})
