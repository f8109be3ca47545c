import t from 'tap'
import { ConfigError, DEFAULT_TOKEN_ISSUER, DEFAULT_TOKEN_SERVICE, parseConfig } from '../../examples/config.js'

const cwd = '/srv/registry'
const parse = (argv: string[], env: Record<string, string | undefined> = {}) => parseConfig(argv, env, cwd)

t.test("htpasswd mode from distribution's variables", async (t) => {
  const config = parse([], { REGISTRY_AUTH: 'htpasswd', REGISTRY_AUTH_HTPASSWD_PATH: 'auth/htpasswd', REGISTRY_AUTH_HTPASSWD_REALM: 'Registry Realm' })
  t.same(config.registry.auth, { mode: 'htpasswd', path: '/srv/registry/auth/htpasswd', realm: 'Registry Realm' })
  t.equal(config.tokenService, undefined)
  t.same(parse(['--auth', 'htpasswd', '--htpasswd', '/etc/htpasswd']).registry.auth, { mode: 'htpasswd', path: '/etc/htpasswd' })
  t.throws(() => parse(['--auth', 'htpasswd']), new ConfigError('--auth htpasswd needs --htpasswd <file> (REGISTRY_AUTH_HTPASSWD_PATH)'))
})

t.test('token mode with an external token service', async (t) => {
  const config = parse([], {
    REGISTRY_AUTH: 'token',
    REGISTRY_AUTH_TOKEN_REALM: 'https://auth.example.com/token',
    REGISTRY_AUTH_TOKEN_SERVICE: 'registry.example.com',
    REGISTRY_AUTH_TOKEN_ISSUER: 'auth.example.com',
    REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE: '/certs/bundle.pem',
    REGISTRY_AUTH_TOKEN_JWKS: 'jwks.json'
  })
  t.same(config.registry.auth, {
    mode: 'token',
    realm: 'https://auth.example.com/token',
    service: 'registry.example.com',
    issuer: 'auth.example.com',
    rootCertBundle: '/certs/bundle.pem',
    jwks: '/srv/registry/jwks.json'
  })
  t.equal(config.tokenService, undefined, 'no bundled service with an external realm')
  const external = ['--auth=token', '--token-realm=https://auth/token']
  t.throws(() => parse([...external, '--token-jwks=j']), /needs --token-issuer/)
  t.throws(() => parse([...external, '--token-issuer=i']), /--token-rootcertbundle <file> or --token-jwks <file>/)
  t.throws(() => parse([...external, '--token-issuer=i', '--token-jwks=j', '--token-key=k']), /bundled token service/)
  t.throws(() => parse(['--auth=token', '--token-realm=ftp://x', '--token-issuer=i', '--token-jwks=j']), /http or https URL/)
  t.throws(() => parse(['--auth=token', '--token-realm=https://x/"', '--token-issuer=i', '--token-jwks=j']), ConfigError, 'a quote cannot go in a challenge')
})

t.test('token mode with the bundled token service', async (t) => {
  const config = parse(['--auth', 'token', '--token-key', 'keys/signing.pem', '--token-acl', 'acl.json', '--htpasswd', 'htpasswd'])
  t.same(config.registry.auth, { mode: 'token', realm: '/token', service: DEFAULT_TOKEN_SERVICE, issuer: DEFAULT_TOKEN_ISSUER })
  t.same(config.tokenService, {
    key: '/srv/registry/keys/signing.pem',
    acl: '/srv/registry/acl.json',
    htpasswd: '/srv/registry/htpasswd',
    service: DEFAULT_TOKEN_SERVICE,
    issuer: DEFAULT_TOKEN_ISSUER
  })
  const env = parse([], { REGISTRY_AUTH: 'token', REGISTRY_TOKEN_KEY: '/k.pem', REGISTRY_TOKEN_ACL: '/acl.json', REGISTRY_AUTH_TOKEN_SERVICE: 'svc' })
  t.match(env.tokenService, { key: '/k.pem', acl: '/acl.json', service: 'svc' })
  t.throws(() => parse(['--auth', 'token']), /needs --token-key <file> \(REGISTRY_TOKEN_KEY\)/)
})

t.test('auth settings without an auth mode are an error, not an open registry', async (t) => {
  t.throws(() => parse(['--htpasswd', 'x']), new ConfigError('--htpasswd is set but access control is off: add --auth htpasswd or --auth token (REGISTRY_AUTH)'))
  t.throws(() => parse([], { REGISTRY_AUTH_HTPASSWD_PATH: '/x' }), /REGISTRY_AUTH_HTPASSWD_PATH is set but access control is off/)
  t.throws(() => parse([], { REGISTRY_TOKEN_KEY: '/x' }), /REGISTRY_TOKEN_KEY is set but access control is off/)
  t.throws(() => parse([], { REGISTRY_AUTH: 'silly' }), /unknown auth mode "silly"/)
  t.equal(parse(['--auth', 'none']).registry.auth, undefined)
})

t.test('TLS', async (t) => {
  t.same(parse([], { REGISTRY_HTTP_TLS_CERTIFICATE: 'tls/cert.pem', REGISTRY_HTTP_TLS_KEY: '/tls/key.pem' }).tls,
    { certificate: '/srv/registry/tls/cert.pem', key: '/tls/key.pem', http2: false })
  t.same(parse(['--tls-certificate', 'c', '--tls-key', 'k', '--http2']).tls, { certificate: '/srv/registry/c', key: '/srv/registry/k', http2: true })
  t.equal(parse([]).tls, undefined)
  t.throws(() => parse(['--tls-certificate', 'c']), /--tls-certificate and --tls-key go together/)
  t.throws(() => parse([], { REGISTRY_HTTP_TLS_KEY: 'k' }), /go together/)
  t.throws(() => parse(['--http2']), /--http2 needs TLS/)
})
