import t from 'tap'
import { resolve } from 'node:path'
import { CONFIG_OPTIONS, ConfigError, envNames, helpText, parseConfig, wantsHelp } from '../../examples/config.js'

const cwd = '/srv/registry'
const parse = (argv: string[], env: Record<string, string | undefined> = {}) => parseConfig(argv, env, cwd)

/** The operations by default: metrics and health on, the debug listener beside the main one (port + 1). */
const defaultOperations = (host: string, port: number) => ({
  options: { metrics: { enabled: true, path: false }, health: { enabled: true, storagedriver: {}, redis: {} }, rateLimit: {} },
  debug: { host, port: port + 1, metricsPath: '/metrics' }
})

t.test('defaults', async (t) => {
  t.same(parse([]), {
    host: '127.0.0.1',
    port: 5000,
    workers: 1,
    logLevel: 'info',
    registry: {
      storage: { driver: 'filesystem', root: resolve(cwd, 'data') },
      delete: false,
      trustForwardedHeaders: false
    },
    operations: defaultOperations('127.0.0.1', 5000)
  })
  t.equal((parseConfig([], {}).registry.storage as { root: string }).root, resolve(process.cwd(), 'data'), 'root resolved against the working directory')
})

t.test('every flag, as --flag value and --flag=value', async (t) => {
  const full = {
    host: '0.0.0.0',
    port: 8080,
    workers: 3,
    logLevel: 'debug',
    registry: {
      storage: { driver: 'filesystem', root: '/var/lib/registry' },
      delete: true,
      trustForwardedHeaders: true,
      publicUrl: 'https://registry.example.com'
    },
    operations: defaultOperations('0.0.0.0', 8080)
  }
  t.same(parse([
    '--host', '0.0.0.0', '--port', '8080', '--storage', 'filesystem', '--root', '/var/lib/registry',
    '--delete', '--log-level', 'debug', '--workers', '3', '--public-url', 'https://registry.example.com',
    '--trust-forwarded-headers'
  ]), full)
  t.same(parse([
    '--host=0.0.0.0', '--port=8080', '--storage=filesystem', '--root=/var/lib/registry',
    '--delete=true', '--log-level=debug', '--workers=3', '--public-url=https://registry.example.com',
    '--trust-forwarded-headers=1'
  ]), full)
  t.same(parse(['--storage', 'inmemory']).registry.storage, { driver: 'inmemory' })
  t.same(parse(['--root', 'images']).registry.storage, { driver: 'filesystem', root: resolve(cwd, 'images') })
  t.equal(parse(['--port', '0']).port, 0, 'port 0 picks a free port')
  t.equal(parse(['--host', '::1']).host, '::1')
})

t.test('every flag is in the table and parses', async (t) => {
  const sample: Record<string, string> = {
    '--host': 'localhost',
    '--port': '1234',
    '--storage': 'inmemory',
    '--root': 'x',
    '--delete': 'true',
    '--log-level': 'warn',
    '--workers': '2',
    '--public-url': 'http://h',
    '--trust-forwarded-headers': 'true',
    '--auth': 'htpasswd',
    '--htpasswd': 'users',
    '--htpasswd-realm': 'r',
    '--token-realm': 'https://auth.example/token',
    '--token-service': 's',
    '--token-issuer': 'i',
    '--token-rootcertbundle': 'bundle.pem',
    '--token-jwks': 'jwks.json',
    '--token-key': 'key.pem',
    '--token-acl': 'acl.json',
    '--tls-certificate': 'cert.pem',
    '--tls-key': 'key.pem',
    '--http2': 'true',
    '--redis': 'redis://127.0.0.1:6379',
    '--s3-bucket': 'b',
    '--s3-region': 'eu-west-1',
    '--s3-endpoint': 'http://127.0.0.1:9000',
    '--s3-force-path-style': 'true',
    '--s3-access-key': 'id',
    '--s3-secret-key': 'secret',
    '--s3-root-directory': 'registry',
    '--s3-chunk-size': '5242880',
    '--s3-storage-class': 'STANDARD',
    '--s3-encrypt': 'true',
    '--s3-kms-key-id': 'key',
    '--s3-redirect': 'true',
    '--config': 'registry.yml',
    '--read-only': 'true',
    '--relative-urls': 'true',
    '--upload-purging': 'false',
    '--upload-purging-age': '72h',
    '--upload-purging-interval': '1h',
    '--header-timeout': '30s',
    '--idle-timeout': '2m',
    '--keep-alive-timeout': '5s',
    '--request-timeout': '0',
    '--gc': 'true',
    '--gc-interval': '30m',
    '--gc-delay': '0s',
    '--gc-window': '01:00-05:00',
    '--gc-delete-untagged': 'true',
    '--debug-addr': '127.0.0.1:5001',
    '--metrics': 'false',
    '--metrics-path': '/prometheus',
    '--health': 'false',
    '--health-fail-requests': 'true',
    '--rate-limit': 'true',
    '--rate-limit-window': '30s',
    '--rate-limit-pull': '100',
    '--rate-limit-push': '10',
    '--rate-limit-delete': '1',
    '--rate-limit-catalog': '0',
    '--rate-limit-admin': '5',
    '--rate-limit-base': '50',
    '--rate-limit-allow': '10.0.0.1,10.0.0.2'
  }
  // Settings that only make sense with others.
  const companions: Record<string, string[]> = {
    '--auth': ['--htpasswd=users'],
    '--htpasswd': ['--auth=htpasswd'],
    '--htpasswd-realm': ['--auth=htpasswd', '--htpasswd=users'],
    '--token-realm': ['--auth=token', '--token-issuer=i', '--token-jwks=jwks.json'],
    '--token-service': ['--auth=token', '--token-key=key.pem'],
    '--token-issuer': ['--auth=token', '--token-key=key.pem'],
    '--token-rootcertbundle': ['--auth=token', '--token-key=key.pem'],
    '--token-jwks': ['--auth=token', '--token-key=key.pem'],
    '--token-key': ['--auth=token'],
    '--token-acl': ['--auth=token', '--token-key=key.pem'],
    '--tls-certificate': ['--tls-key=key.pem'],
    '--tls-key': ['--tls-certificate=cert.pem'],
    '--http2': ['--tls-certificate=cert.pem', '--tls-key=key.pem'],
    '--s3-access-key': ['--s3-secret-key=s'],
    '--s3-secret-key': ['--s3-access-key=a']
  }
  t.same(CONFIG_OPTIONS.flatMap((option) => option.flag ?? []).sort(), Object.keys(sample).sort())
  for (const [flag, value] of Object.entries(sample)) {
    // --config reads a file: see config-file.test.ts.
    if (flag === '--root' || flag === '--config') continue
    // s3 settings go with s3 storage.
    const s3 = flag.startsWith('--s3-') ? ['--storage=s3', '--s3-bucket=b'] : []
    t.doesNotThrow(() => parse([...s3, `${flag}=${value}`, ...(companions[flag] ?? [])]), flag)
  }
})

t.test('s3 storage from flags, and from distribution\'s variables', async (t) => {
  t.same(parse([
    '--storage', 's3', '--s3-bucket', 'images', '--s3-region', 'eu-west-1', '--s3-endpoint', 'http://127.0.0.1:9000',
    '--s3-force-path-style', '--s3-root-directory', 'registry', '--s3-chunk-size', '8388608', '--s3-redirect'
  ]).registry.storage, {
    driver: 's3',
    bucket: 'images',
    region: 'eu-west-1',
    endpoint: 'http://127.0.0.1:9000',
    forcePathStyle: true,
    rootDirectory: 'registry',
    partSize: 8388608,
    redirect: true
  })
  const fromEnv = parse([], {
    REGISTRY_STORAGE: 's3',
    REGISTRY_STORAGE_S3_BUCKET: 'images',
    REGISTRY_STORAGE_S3_REGION: 'us-west-2',
    REGISTRY_STORAGE_S3_REGIONENDPOINT: 'https://s3.example.com',
    REGISTRY_STORAGE_S3_FORCEPATHSTYLE: 'true',
    REGISTRY_STORAGE_S3_ACCESSKEY: 'id',
    REGISTRY_STORAGE_S3_SECRETKEY: 'secret',
    REGISTRY_STORAGE_S3_ROOTDIRECTORY: '/registry',
    REGISTRY_STORAGE_S3_CHUNKSIZE: '5242880',
    REGISTRY_STORAGE_S3_STORAGECLASS: 'STANDARD_IA',
    REGISTRY_STORAGE_S3_ENCRYPT: 'true',
    REGISTRY_STORAGE_S3_KEYID: 'arn:aws:kms:us-west-2:1:key/k',
    REGISTRY_REDIS_ADDR: 'cache:6379'
  })
  t.same(fromEnv.registry.storage, {
    driver: 's3',
    bucket: 'images',
    region: 'us-west-2',
    endpoint: 'https://s3.example.com',
    forcePathStyle: true,
    accessKeyId: 'id',
    secretAccessKey: 'secret',
    rootDirectory: '/registry',
    partSize: 5242880,
    storageClass: 'STANDARD_IA',
    serverSideEncryption: 'aws:kms',
    kmsKeyId: 'arn:aws:kms:us-west-2:1:key/k'
  })
  t.same(fromEnv.registry.cache, { redis: 'redis://cache:6379' }, 'REGISTRY_REDIS_ADDR is host:port')
  t.equal((parse([], { REGISTRY_STORAGE_S3_BUCKET: 'b' }).registry.storage as { driver: string }).driver, 's3',
    'a bucket alone implies s3')
  t.same(parse(['--storage', 's3', '--s3-bucket', 'b', '--s3-encrypt']).registry.storage, { driver: 's3', bucket: 'b', serverSideEncryption: 'AES256' })
  t.same(parse(['--redis', 'redis://127.0.0.1:6380/2']).registry.cache, { redis: 'redis://127.0.0.1:6380/2' })
})

t.test('booleans', async (t) => {
  for (const [value, expected] of [['true', true], ['false', false], ['1', true], ['0', false], ['TRUE', true], ['False', false]] as const) {
    t.equal(parse([`--delete=${value}`]).registry.delete, expected, `--delete=${value}`)
    t.equal(parse(['--delete', value]).registry.delete, expected, `--delete ${value}`)
    t.equal(parse([], { REGISTRY_DELETE: value }).registry.delete, expected, `REGISTRY_DELETE=${value}`)
    t.equal(parse([], { REGISTRY_TRUST_FORWARDED_HEADERS: value }).registry.trustForwardedHeaders, expected)
    t.equal(parse([], { REGISTRY_STORAGE_DELETE_ENABLED: value }).registry.delete, expected)
  }
  t.equal(parse(['--delete', '--port', '1']).registry.delete, true, 'a bare boolean does not eat the next flag')
  t.equal(parse(['--delete', '--port', '1']).port, 1)
  t.equal(parse(['--trust-forwarded-headers', 'false']).registry.trustForwardedHeaders, false)
})

t.test('every environment variable', async (t) => {
  t.same(parse([], {
    REGISTRY_HOST: '10.0.0.1',
    REGISTRY_PORT: '6000',
    REGISTRY_STORAGE: 'filesystem',
    REGISTRY_ROOT: 'store',
    REGISTRY_DELETE: 'true',
    REGISTRY_LOG_LEVEL: 'warn',
    REGISTRY_WORKERS: '4',
    REGISTRY_PUBLIC_URL: 'http://registry.local:5000/prefix',
    REGISTRY_TRUST_FORWARDED_HEADERS: '1'
  }), {
    host: '10.0.0.1',
    port: 6000,
    workers: 4,
    logLevel: 'warn',
    registry: {
      storage: { driver: 'filesystem', root: resolve(cwd, 'store') },
      delete: true,
      trustForwardedHeaders: true,
      publicUrl: 'http://registry.local:5000/prefix'
    },
    operations: defaultOperations('10.0.0.1', 6000)
  })
  t.same(parse([], { REGISTRY_STORAGE: 'inmemory' }).registry.storage, { driver: 'inmemory' })
  t.same(parse([], { REGISTRY_STORAGE: 'inmemory', REGISTRY_ROOT: '/x' }).registry.storage, { driver: 'inmemory' },
    'a root in the environment is ignored by inmemory storage')
  t.equal(parse([], { REGISTRY_PORT: '' }).port, 5000, 'an empty variable counts as unset')
})

t.test("distribution's environment names", async (t) => {
  t.same(parse([], {
    REGISTRY_HTTP_ADDR: '0.0.0.0:5001',
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: '/var/lib/registry',
    REGISTRY_STORAGE_DELETE_ENABLED: 'true',
    REGISTRY_LOG_LEVEL: 'debug',
    REGISTRY_HTTP_HOST: 'https://registry.example.com'
  }), {
    host: '0.0.0.0',
    port: 5001,
    workers: 1,
    logLevel: 'debug',
    registry: {
      storage: { driver: 'filesystem', root: '/var/lib/registry' },
      delete: true,
      trustForwardedHeaders: false,
      publicUrl: 'https://registry.example.com'
    },
    operations: defaultOperations('0.0.0.0', 5001)
  })
  const portOnly = parse([], { REGISTRY_HTTP_ADDR: ':5002' })
  t.equal(portOnly.host, '127.0.0.1', ':port keeps the default host')
  t.equal(portOnly.port, 5002)
  const v6 = parse([], { REGISTRY_HTTP_ADDR: '[::1]:5003' })
  t.equal(v6.host, '::1')
  t.equal(v6.port, 5003)
  t.same(parse([], { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: 'rel' }).registry.storage,
    { driver: 'filesystem', root: resolve(cwd, 'rel') }, 'the root directory implies filesystem storage')
})

t.test('precedence: flag, then our variable, then distribution, then default', async (t) => {
  const env = {
    REGISTRY_HOST: 'ours.example',
    REGISTRY_PORT: '7000',
    REGISTRY_HTTP_ADDR: 'theirs.example:8000',
    REGISTRY_ROOT: '/ours',
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: '/theirs',
    REGISTRY_DELETE: 'false',
    REGISTRY_STORAGE_DELETE_ENABLED: 'true',
    REGISTRY_PUBLIC_URL: 'https://ours.example',
    REGISTRY_HTTP_HOST: 'https://theirs.example',
    REGISTRY_LOG_LEVEL: 'error',
    REGISTRY_WORKERS: '2',
    REGISTRY_STORAGE: 'filesystem',
    REGISTRY_TRUST_FORWARDED_HEADERS: 'true'
  }
  const fromEnv = parse([], env)
  t.equal(fromEnv.host, 'ours.example')
  t.equal(fromEnv.port, 7000)
  t.same(fromEnv.registry.storage, { driver: 'filesystem', root: '/ours' })
  t.equal(fromEnv.registry.delete, false)
  t.equal(fromEnv.registry.publicUrl, 'https://ours.example')

  const fromFlags = parse([
    '--host', 'flag.example', '--port', '9000', '--delete', '--public-url', 'https://flag.example',
    '--log-level', 'trace', '--workers', '5', '--storage', 'inmemory', '--trust-forwarded-headers', 'false'
  ], env)
  t.equal(fromFlags.host, 'flag.example')
  t.equal(fromFlags.port, 9000)
  t.equal(fromFlags.registry.delete, true)
  t.equal(fromFlags.registry.publicUrl, 'https://flag.example')
  t.equal(fromFlags.logLevel, 'trace')
  t.equal(fromFlags.workers, 5)
  t.same(fromFlags.registry.storage, { driver: 'inmemory' })
  t.equal(fromFlags.registry.trustForwardedHeaders, false)
  t.same(parse(['--root', '/flag'], env).registry.storage, { driver: 'filesystem', root: '/flag' })

  const mixed = parse(['--port', '9100'], { REGISTRY_HTTP_ADDR: 'theirs.example:8000' })
  t.equal(mixed.host, 'theirs.example', 'the host of REGISTRY_HTTP_ADDR stays when only the port is overridden')
  t.equal(mixed.port, 9100)
  t.equal(parse([], { REGISTRY_HTTP_ADDR: 'theirs.example:8000', REGISTRY_HOST: 'ours.example' }).port, 8000)

  const last = parse(['--port', '1', '--port', '2'])
  t.equal(last.port, 2, 'the last repeat of a flag wins')
})

t.test('bad values name the flag or variable', async (t) => {
  const bad: Array<[string[], Record<string, string>, RegExp]> = [
    [['--port', 'http'], {}, /^--port: "http" is not an integer/],
    [['--port', '65536'], {}, /--port/],
    [['--port', '-1'], {}, /--port/],
    [[], { REGISTRY_PORT: '5e3' }, /^REGISTRY_PORT:/],
    [['--workers', '0'], {}, /^--workers: "0" is not an integer from 1/],
    [[], { REGISTRY_WORKERS: 'many' }, /^REGISTRY_WORKERS:/],
    [['--storage', 'gcs'], {}, /^--storage: unknown storage driver "gcs" \(valid: inmemory, filesystem, s3\)/],
    [[], { REGISTRY_STORAGE: 'azure' }, /^REGISTRY_STORAGE: .*valid: inmemory, filesystem, s3/],
    [['--storage', 's3'], {}, /^--storage s3 needs a bucket/],
    [['--s3-bucket', 'b'], {}, /^--s3-bucket applies only to --storage s3/],
    [['--storage', 's3', '--s3-bucket', 'b', '--root', '/x'], {}, /--root applies only to --storage filesystem/],
    [['--storage', 's3', '--s3-bucket', 'b', '--s3-access-key', 'id'], {}, /go together/],
    [['--storage', 's3', '--s3-bucket', 'b', '--s3-chunk-size', '1024'], {}, /^--s3-chunk-size: "1024" is not an integer from 5242880/],
    [[], { REGISTRY_STORAGE: 's3', REGISTRY_STORAGE_S3_BUCKET: 'b', REGISTRY_STORAGE_S3_REGIONENDPOINT: 'minio:9000' }, /^REGISTRY_STORAGE_S3_REGIONENDPOINT: .*http or https/],
    [[], { REGISTRY_STORAGE: 's3', REGISTRY_STORAGE_S3_BUCKET: 'b', REGISTRY_STORAGE_S3_FORCEPATHSTYLE: 'yes' }, /^REGISTRY_STORAGE_S3_FORCEPATHSTYLE:/],
    [['--redis', '127.0.0.1:6379'], {}, /^--redis: .*redis:\/\//],
    [[], { REGISTRY_REDIS_ADDR: 'redis://x' }, /^REGISTRY_REDIS_ADDR: .*host:port/],
    [['--log-level', 'loud'], {}, /^--log-level: unknown log level "loud" \(valid: fatal, error, warn, info, debug, trace, silent\)/],
    [[], { REGISTRY_LOG_LEVEL: 'verbose' }, /^REGISTRY_LOG_LEVEL:/],
    [['--delete=yes'], {}, /^--delete: "yes" is not a boolean/],
    [[], { REGISTRY_DELETE: 'on' }, /^REGISTRY_DELETE:/],
    [[], { REGISTRY_STORAGE_DELETE_ENABLED: 'enabled' }, /^REGISTRY_STORAGE_DELETE_ENABLED:/],
    [[], { REGISTRY_TRUST_FORWARDED_HEADERS: 'maybe' }, /^REGISTRY_TRUST_FORWARDED_HEADERS:/],
    [['--public-url', 'registry.example.com'], {}, /^--public-url: "registry.example.com" is not a URL/],
    [['--public-url', 'ftp://registry.example.com'], {}, /^--public-url: .*http or https/],
    [[], { REGISTRY_HTTP_HOST: 'https://x.example/?a=1' }, /^REGISTRY_HTTP_HOST:/],
    [[], { REGISTRY_HTTP_ADDR: '5000' }, /^REGISTRY_HTTP_ADDR: "5000" is not host:port or :port/],
    [[], { REGISTRY_HTTP_ADDR: 'host:port' }, /^REGISTRY_HTTP_ADDR:/],
    [['--host', 'a b'], {}, /^--host:/],
    [['--root='], {}, /^--root: the storage root must not be empty/],
    [['--storage', 'inmemory', '--root', '/x'], {}, /--root applies only to --storage filesystem/],
    [['--port'], {}, /^--port needs a value/],
    [['--root', '--delete'], {}, /^--root needs a value/],
    [['--colour'], {}, /^unknown flag --colour/],
    [['--colour=red'], {}, /^unknown flag --colour /],
    [['serve'], {}, /^unexpected argument "serve"/],
    [['-p', '5000'], {}, /^unexpected argument "-p"/]
  ]
  for (const [argv, env, message] of bad) {
    t.throws(() => parse(argv, env), message, `${argv.join(' ')} ${JSON.stringify(env)}`)
    t.throws(() => parse(argv, env), ConfigError)
  }
})

t.test('--help', async (t) => {
  t.ok(wantsHelp(['--help']))
  t.ok(wantsHelp(['--port', '1', '-h']))
  t.notOk(wantsHelp(['--port', '1']))
  t.doesNotThrow(() => parse(['--help']), 'parseConfig accepts --help alongside other flags')
  const help = helpText()
  for (const option of CONFIG_OPTIONS) {
    const name = option.flag ?? option.file ?? option.key
    t.match(help, name, `help mentions ${name}`)
    for (const variable of envNames(option)) t.match(help, variable, `help mentions ${variable}`)
    t.match(help, `default: ${option.default}`, `help shows the default of ${name}`)
  }
  t.match(help, '--help')
})
