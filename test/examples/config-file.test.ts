/**
 * The config file: CNCF distribution's config.yml read as it is, distribution's and our variables
 * and flags on top, bad values named by key, unknown keys collected for one warning.
 */

import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfigError, noticeText, parseConfig } from '../../examples/config.js'
import { storageRootProblem } from '../../examples/server.js'
import { formatDuration, parseDuration } from '../../lib/config/duration.js'
import { tempDir } from '../helpers.js'

const cwd = '/srv/registry'

/** parseConfig with `yaml` as the file at /srv/registry/config.yml. */
function withFile (yaml: string, argv: string[] = [], env: Record<string, string> = {}) {
  return parseConfig(['--config', 'config.yml', ...argv], env, cwd, (path) => {
    if (path !== '/srv/registry/config.yml') throw Object.assign(new Error('no such file'), { code: 'ENOENT' })
    return yaml
  })
}

/** A distribution config.yml as its documentation writes one, with keys we do not use. */
const distributionConfig = `
version: 0.1
log:
  level: debug
  formatter: text
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: /var/lib/registry
    maxthreads: 100
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
    readonly:
      enabled: false
  redirect:
    disable: true
http:
  addr: 0.0.0.0:5000
  host: https://registry.example.com
  secret: asecretforlocaldevelopment
  relativeurls: false
  headers:
    X-Content-Type-Options: [nosniff]
  tls:
    certificate: /certs/domain.crt
    key: /certs/domain.key
  debug:
    addr: localhost:5001
    prometheus:
      enabled: true
      path: /metrics
auth:
  htpasswd:
    realm: basic-realm
    path: /auth/htpasswd
redis:
  addr: localhost:6379
  password: asecret
  db: 2
notifications:
  events:
    includereferences: true
  endpoints:
    - name: alistener
      disabled: false
      url: https://my.listener.com/event
      headers:
        Authorization: [Bearer x]
      timeout: 1s
      threshold: 10
      backoff: 1s
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`

t.test("distribution's config.yml, every key that maps", async (t) => {
  const config = withFile(distributionConfig)
  t.same(config.registry, {
    storage: { driver: 'filesystem', root: '/var/lib/registry' },
    delete: true,
    readOnly: false,
    relativeUrls: false,
    uploadPurging: { enabled: true, ageSeconds: 168 * 3600, intervalSeconds: 24 * 3600 },
    cache: { redis: 'redis://:asecret@localhost:6379/2' },
    trustForwardedHeaders: false,
    publicUrl: 'https://registry.example.com',
    auth: { mode: 'htpasswd', path: '/auth/htpasswd', realm: 'basic-realm' },
    notifications: {
      events: { includereferences: true },
      endpoints: [{ name: 'alistener', disabled: false, url: 'https://my.listener.com/event', headers: { Authorization: ['Bearer x'] }, timeout: '1s', threshold: 10, backoff: '1s' }]
    }
  })
  t.equal(config.host, '0.0.0.0')
  t.equal(config.port, 5000)
  t.equal(config.logLevel, 'debug')
  t.same(config.tls, { certificate: '/certs/domain.crt', key: '/certs/domain.key', http2: false })
  t.equal(config.configFile, '/srv/registry/config.yml')
  t.same(config.operations?.debug, { host: 'localhost', port: 5001, metricsPath: '/metrics' }, 'http.debug: the debug listener')
  t.match(config.operations?.options, { metrics: { enabled: true, path: false }, health: { enabled: true, storagedriver: { enabled: true, intervalSeconds: 10, threshold: 3 } } })
  t.match(config.sections?.notifications, { endpoints: [{ name: 'alistener', url: 'https://my.listener.com/event', timeout: '1s' }] })
  t.same(config.notices, {
    unsupported: ['log.formatter', 'log.fields', 'storage.filesystem.maxthreads', 'storage.cache', 'http.secret', 'http.headers'],
    notYetActedOn: []
  })
  t.equal(noticeText(config.notices!),
    'config file: not supported, ignored: log.formatter, log.fields, storage.filesystem.maxthreads, storage.cache, http.secret, http.headers')
})

t.test('other drivers, providers and sections', async (t) => {
  t.same(withFile('storage:\n  inmemory:\n').registry.storage, { driver: 'inmemory' })
  t.same(withFile(`
storage:
  s3:
    accesskey: id
    secretkey: secret
    region: us-west-1
    regionendpoint: http://127.0.0.1:9000
    forcepathstyle: true
    bucket: images
    encrypt: true
    keyid: mykeyid
    chunksize: 5242880
    multipartcopychunksize: 33554432
    multipartcopymaxconcurrency: 100
    multipartcopythresholdsize: 33554432
    rootdirectory: /s3/prefix
    storageclass: STANDARD
    secure: true
  redirect:
    disable: false
`).registry.storage, {
    driver: 's3',
    bucket: 'images',
    region: 'us-west-1',
    endpoint: 'http://127.0.0.1:9000',
    forcePathStyle: true,
    accessKeyId: 'id',
    secretAccessKey: 'secret',
    rootDirectory: '/s3/prefix',
    partSize: 5242880,
    storageClass: 'STANDARD',
    serverSideEncryption: 'aws:kms',
    kmsKeyId: 'mykeyid',
    redirect: true,
    multipartCopyChunkSize: 33554432,
    multipartCopyMaxConcurrency: 100,
    multipartCopyThresholdSize: 33554432
  })
  const token = withFile(`
auth:
  token:
    realm: https://auth.example.com/token
    service: registry.example.com
    issuer: auth.example.com
    rootcertbundle: /certs/bundle.pem
    jwks: /certs/jwks.json
`)
  t.same(token.registry.auth, {
    mode: 'token', realm: 'https://auth.example.com/token', service: 'registry.example.com', issuer: 'auth.example.com', rootCertBundle: '/certs/bundle.pem', jwks: '/certs/jwks.json'
  })
  const bundled = withFile('auth:\n  token:\n    signingkey: keys/token.pem\n    acl: acl.json\n  \nstorage:\n  filesystem:\n    rootdirectory: data\n')
  t.match(bundled.tokenService, { key: '/srv/registry/keys/token.pem', acl: '/srv/registry/acl.json' })
  t.same(bundled.registry.storage, { driver: 'filesystem', root: '/srv/registry/data' }, 'relative paths from the working directory')
  const read = withFile('storage:\n  maintenance:\n    readonly:\n      enabled: true\n    uploadpurging:\n      dryrun: true\n')
  t.equal(read.registry.readOnly, true, 'maintenance.readonly.enabled is the readOnly option')
  t.same(read.registry.uploadPurging, { enabled: false }, 'a dry run purges nothing')
  t.same(read.notices?.notYetActedOn, ['storage.maintenance.uploadpurging.dryrun (purging is off instead)'])
  t.match(withFile('proxy:\n  remoteurl: https://registry-1.docker.io\n  ttl: 168h\n').sections, { proxy: { remoteurl: 'https://registry-1.docker.io', ttl: '168h' } })
  t.same(withFile('http:\n  timeouts:\n    header: 30s\n    idle: 2m\n    keepalive: 10s\n').timeouts, { headerMs: 30_000, idleMs: 120_000, keepAliveMs: 10_000, requestMs: 0 })
  t.equal(withFile('').configFile, '/srv/registry/config.yml', 'an empty file is an empty configuration')
  t.equal(withFile('').notices, undefined, 'and warns about nothing')
})

t.test('keys named like built-in properties are unknown keys, nothing more', async (t) => {
  const config = withFile('constructor: 1\n__proto__:\n  delete:\n    enabled: true\ntoString:\n  x: 1\nstorage:\n  filesystem:\n    constructor: x\n')
  t.same(config.notices?.unsupported, ['constructor', '__proto__', 'toString', 'storage.filesystem.constructor'])
  t.equal(config.registry.delete, false)
  t.throws(() => withFile('storage:\n  constructor:\n'), new ConfigError("storage: unknown driver 'constructor' (inmemory, filesystem, s3)"))
})

t.test("a missing value takes distribution's default", async (t) => {
  t.same(withFile('storage:\n  filesystem:\n').registry.storage, { driver: 'filesystem', root: '/var/lib/registry' })
  t.same(withFile('version: 0.1\n').registry.storage, { driver: 'filesystem', root: '/srv/registry/data' }, 'our default without a storage section')
  t.equal(withFile('storage:\n  delete:\n    enabled: true\n').registry.uploadPurging, undefined, 'upload purging keeps its defaults (on, 168h, 24h)')
})

t.test('precedence: flag, our variable, distribution\'s variable, file', async (t) => {
  const file = 'http:\n  addr: 10.0.0.1:5000\nstorage:\n  filesystem:\n    rootdirectory: /file\n  delete:\n    enabled: true\nlog:\n  level: warn\n'
  const fromFile = withFile(file)
  t.same([fromFile.host, fromFile.port, fromFile.registry.delete, fromFile.logLevel], ['10.0.0.1', 5000, true, 'warn'])
  const distribution = withFile(file, [], {
    REGISTRY_STORAGE_DELETE_ENABLED: 'false',
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: '/env',
    REGISTRY_HTTP_ADDR: ':6000',
    REGISTRY_LOG_LEVEL: 'error'
  })
  t.equal(distribution.registry.delete, false, 'REGISTRY_STORAGE_DELETE_ENABLED overrides storage.delete.enabled')
  t.same(distribution.registry.storage, { driver: 'filesystem', root: '/env' })
  t.equal(distribution.port, 6000)
  t.equal(distribution.logLevel, 'error')
  const ours = withFile(file, [], { REGISTRY_STORAGE_DELETE_ENABLED: 'false', REGISTRY_DELETE: 'true', REGISTRY_ROOT: '/ours', REGISTRY_PORT: '7000' })
  t.equal(ours.registry.delete, true, 'ours over distribution\'s')
  t.same(ours.registry.storage, { driver: 'filesystem', root: '/ours' })
  t.equal(ours.port, 7000)
  t.equal(ours.host, '10.0.0.1', 'the host of http.addr stays')
  const flags = withFile(file, ['--delete=false', '--storage', 'inmemory', '--port', '8000'], { REGISTRY_DELETE: 'true' })
  t.equal(flags.registry.delete, false, 'flags over everything')
  t.same(flags.registry.storage, { driver: 'inmemory' })
  t.equal(flags.port, 8000)
  const path = parseConfig([], { REGISTRY_CONFIGURATION_PATH: '/etc/distribution/config.yml' }, cwd, (name) => {
    t.equal(name, '/etc/distribution/config.yml')
    return 'storage:\n  delete:\n    enabled: true\n'
  })
  t.equal(path.registry.delete, true, 'REGISTRY_CONFIGURATION_PATH names the file, as distribution')
  const negated = withFile('storage:\n  s3:\n    bucket: b\n  redirect:\n    disable: false\n', [], { REGISTRY_STORAGE_REDIRECT_DISABLE: 'true' })
  t.match(negated.registry.storage, { redirect: false }, 'REGISTRY_STORAGE_REDIRECT_DISABLE overrides storage.redirect.disable')
})

t.test('bad values name their key and what is allowed', async (t) => {
  const bad: Array<[string, string | RegExp]> = [
    ['storage:\n  delete:\n    enabled: maybe\n', 'storage.delete.enabled: expected true or false, got "maybe"'],
    ['storage:\n  fs:\n    rootdirectory: /x\n', "storage: unknown driver 'fs' (inmemory, filesystem, s3)"],
    ['storage:\n  filesystem:\n  s3:\n    bucket: b\n', 'storage: configure one driver, found filesystem, s3'],
    ['storage:\n  delete: true\n', 'storage.delete: expected a mapping, got true'],
    ['storage:\n  delete:\n    enabled:\n      really: true\n', 'storage.delete.enabled: expected a value, got a mapping'],
    ['log:\n  level: loud\n', 'log.level: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"'],
    ['http:\n  addr: localhost\n', 'http.addr: "localhost" is not host:port or :port'],
    ['http:\n  timeouts:\n    idle: 10 minutes\n', 'http.timeouts.idle: expected a duration such as 90s, 10m or 168h, got "10 minutes"'],
    ['storage:\n  maintenance:\n    uploadpurging:\n      age: 10s\n', 'storage.maintenance.uploadpurging.age: expected a duration of at least 1m, such as 90s, 10m or 168h, got "10s"'],
    ['storage:\n  s3:\n    bucket: b\n    chunksize: 1024\n', 'storage.s3.chunksize: expected an integer from 5242880 to 5368709120, got 1024'],
    ['version: 0.2\n', 'version: expected 0.1, got 0.2'],
    ['auth:\n  silly:\n    realm: r\n', "auth: unsupported provider 'silly' (htpasswd, token)"],
    ['auth:\n  htpasswd:\n    realm: r\n', /--auth htpasswd needs --htpasswd <file>/],
    ['http:\n  tls:\n    certificate: /c\n    key: /k\n    clientcas: [/ca.pem]\n', /^http\.tls\.clientcas: client certificate checks are not supported/],
    ['notifications:\n  endpoints:\n    - name: hook\n      url: ftp://x\n', 'notifications.endpoints.0.url: expected an http or https URL, got "ftp://x"'],
    ['health:\n  storagedriver:\n    interval: often\n', 'health.storagedriver.interval: expected a duration of at least 1s, such as 90s, 10m or 168h, got "often"'],
    ['proxy:\n  ttl: 1h\n', 'proxy.remoteurl: expected an http or https URL, got nothing'],
    ['storage: [a, b]\n', 'storage: expected a mapping, got a list'],
    ['- a\n- b\n', '/srv/registry/config.yml: expected a mapping of sections, got a list'],
    ['storage:\n  delete:\n    enabled: true\n  delete:\n    enabled: false\n', /^\/srv\/registry\/config\.yml: not valid YAML: Map keys must be unique/]
  ]
  for (const [yaml, message] of bad) {
    t.throws(() => withFile(yaml), typeof message === 'string' ? new ConfigError(message) : message, JSON.stringify(yaml))
  }
  t.throws(() => withFile('storage:\n  delete:\n    enabled: true\n', [], { REGISTRY_STORAGE_DELETE_ENABLED: 'maybe' }), /^REGISTRY_STORAGE_DELETE_ENABLED: "maybe" is not a boolean/)
  t.throws(() => parseConfig(['--config', '/nonexistent/config.yml'], {}), /^--config: cannot read \/nonexistent\/config\.yml: ENOENT/)
  t.throws(() => parseConfig([], { REGISTRY_CONFIGURATION_PATH: '/nonexistent/config.yml' }), /^REGISTRY_CONFIGURATION_PATH: cannot read/)
  t.throws(() => parseConfig(['--idle-timeout', 'soon'], {}), /^--idle-timeout: "soon" is not a duration such as 90s/)
  t.throws(() => parseConfig(['--header-timeout', '2m', '--request-timeout', '1m'], {}), /must not be longer than http\.timeouts\.request/)
})

t.test('Go durations', async (t) => {
  for (const [text, ms] of [['90s', 90_000], ['10m', 600_000], ['1h30m', 5_400_000], ['168h', 604_800_000], ['1.5s', 1500], ['250ms', 250], ['0', 0]] as const) {
    t.equal(parseDuration(text), ms, text)
  }
  for (const text of ['', '10', 's', '1d', '1h 30m', '-1s']) t.equal(parseDuration(text), undefined, JSON.stringify(text))
  t.same([formatDuration(0), formatDuration(90_000), formatDuration(3_600_000), formatDuration(1500)], ['0', '90s', '1h', '1500ms'])
})

t.test('a storage root that cannot be written is found at start', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'a-file')
  await writeFile(file, 'not a directory')
  t.match(storageRootProblem({ driver: 'filesystem', root: join(file, 'data') }),
    /^cannot write the storage root .*a-file\/data: a part of the path is a file, not a directory \(ENOTDIR\)$/)
  t.equal(storageRootProblem({ driver: 'filesystem', root: join(dir, 'new', 'root') }), undefined, 'a missing root is created')
  t.equal(storageRootProblem({ driver: 'inmemory' }), undefined)
})
