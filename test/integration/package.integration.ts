/**
 * The package as a user gets it. First the build and the tarball's file list: the entry points
 * carry declarations and export what the README promises, the tarball ships what a user needs and
 * nothing else, and the optional peers are never loaded unless configured. Then `npm pack` (which
 * builds through `prepack`), installed into a fresh project from the tarball, beside Fastify and
 * nothing else; the install is quiet, the optional peers are absent, the README's TypeScript
 * snippets type-check strictly under both `moduleResolution` NodeNext and Bundler, and the plugin
 * and the CommonJS form run. The subtests run in order: the pack rebuilds what the first ones read.
 */

import t from 'tap'
import { execFile } from 'node:child_process'
import { access, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { tempDir } from '../helpers.js'

const exec = promisify(execFile)
const root = fileURLToPath(new URL('../..', import.meta.url))
const tsc = fileURLToPath(import.meta.resolve('typescript/bin/tsc'))
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
  exports: Record<string, string | { types: string, default: string }>
  files: string[]
  dependencies: Record<string, string>
  peerDependencies: Record<string, string>
  peerDependenciesMeta: Record<string, { optional?: boolean }>
  devDependencies: Record<string, string>
  scripts: Record<string, string>
}

/** The packages only some configurations need: optional peers, never loaded by a filesystem-only user. */
const OPTIONAL_PEERS = ['@aws-sdk/client-s3', '@aws-sdk/s3-request-presigner', 'ioredis', 'bcrypt', 'cloudevents']

// Built once here; the first tests read dist/.
const built = exec(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root })

const devVersion = async (name: string): Promise<string> =>
  (JSON.parse(await readFile(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version

/** The ```ts blocks of the README. */
async function readmeSnippets (): Promise<string[]> {
  const readme = await readFile(join(root, 'README.md'), 'utf8')
  return [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((match) => match[1] as string)
}

t.test('the published entry points build, carry declarations and export what the README promises', { timeout: 600_000 }, async (t) => {
  await built
  for (const [entry, target] of Object.entries(pkg.exports)) {
    if (typeof target === 'string') continue
    await t.resolves(access(new URL(`../../${target.default}`, import.meta.url)), `${entry}: ${target.default} built`)
    await t.resolves(access(new URL(`../../${target.types}`, import.meta.url)), `${entry}: ${target.types} built`)
  }
  const main = await import(new URL('../../dist/plugins/registry.js', import.meta.url).href) as Record<string, unknown>
  t.type(main.default, 'function', 'the plugin is the default export')
  for (const name of ['ociRegistry', 'RegistryError', 'ErrorCodes', 'registerError', 'errorDescriptors', 'routes', 'UrlBuilder']) {
    t.ok(name in main, `the main entry exports ${name}`)
  }
  const lib = await import(new URL('../../dist/lib/index.js', import.meta.url).href) as Record<string, unknown>
  for (const name of ['routes', 'matchRoute', 'UrlBuilder', 'RegistryError', 'fromErrorBody', 'parseDigest', 'assertName', 'MediaTypes', 'parseManifest', 'verifySchema1', 'InMemoryDriver', 'FilesystemDriver', 'RegistryService', 'pathFor', 'MissingDependencyError']) {
    t.ok(name in lib, `the lib entry exports ${name}`)
  }
  const client = await import(new URL('../../dist/lib/client/index.js', import.meta.url).href) as Record<string, unknown>
  for (const name of ['RegistryClient', 'RegistryError', 'isRegistryError', 'RegistryClientError']) t.ok(name in client, `/client exports ${name}`)
  const digest = await import(new URL('../../dist/lib/digest.js', import.meta.url).href) as Record<string, unknown>
  for (const name of ['parseDigest', 'digestOf', 'Digester']) t.ok(name in digest, `/digest exports ${name}`)
})

t.test('the tarball holds the built code, the docs the README links, and nothing else', { timeout: 600_000 }, async (t) => {
  await built
  t.equal(pkg.scripts.prepack, 'npm run build', 'npm pack and installs from git build first')
  // --ignore-scripts: the build above stands in for `prepack`, which would rebuild under the other tests' feet.
  const { stdout } = await exec('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root })
  const files = (JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0]?.files.map((file) => file.path).sort() ?? []
  for (const [entry, target] of Object.entries(pkg.exports)) {
    const paths = typeof target === 'string' ? [target] : [target.default, target.types]
    for (const path of paths) t.ok(files.includes(path.replace(/^\.\//, '')), `${entry}: ${path} is shipped`)
  }
  for (const path of ['dist/bin/fastify-oci-registry.js', 'dist/examples/server.js', 'dist/examples/config.js', 'README.md', 'LICENSE', 'package.json']) {
    t.ok(files.includes(path), `${path} is shipped`)
  }
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
  for (const [, path] of readme.matchAll(/\]\((?:https:\/\/unpkg\.com\/fastify-oci-registry\/)?(docs\/[^)#]+)/g)) {
    t.ok(files.includes(path as string), `${path} (linked from the README) is shipped`)
  }
  t.same(files.filter((path) => path.endsWith('.map')), [], 'no source maps (they would point at unshipped sources)')
  t.same(files.filter((path) => !/^(dist\/(lib|plugins|bin|examples)\/|docs\/|README\.md$|LICENSE$|package\.json$)/.test(path)), [], 'nothing outside the shipped trees')
  t.same(files.filter((path) => /^dist\/(lib\/docs|scripts|test|bench)/.test(path)), [], 'no docs generator, tests or bench')
})

t.test('fastify is a peer; the heavy parts are optional peers', async (t) => {
  t.match(pkg.peerDependencies.fastify, /^\^5\./, 'fastify ^5 is a peer dependency')
  t.notOk('fastify' in pkg.dependencies, 'and not a dependency')
  t.ok('fastify' in pkg.devDependencies, 'the tests still have it')
  for (const name of OPTIONAL_PEERS) {
    t.notOk(name in pkg.dependencies, `${name} is not installed with the package`)
    t.ok(name in pkg.peerDependencies && pkg.peerDependenciesMeta[name]?.optional === true, `${name} is an optional peer`)
    t.ok(name in pkg.devDependencies, `${name} is a dev dependency for the tests`)
  }
})

/**
 * Runs `body` (ESM) in a Node whose resolver does not find the optional peers, as in a project
 * that did not install them, and returns what it printed.
 */
async function withoutOptionalPeers (body: string): Promise<string> {
  const hook = `export async function resolve (specifier, context, next) {
    if (${JSON.stringify(OPTIONAL_PEERS)}.includes(specifier)) {
      const error = new Error("Cannot find package '" + specifier + "' imported from " + context.parentURL)
      error.code = 'ERR_MODULE_NOT_FOUND'
      throw error
    }
    return await next(specifier, context)
  }`
  const script = `import { register } from 'node:module'
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}))
${body}`
  const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', script], { cwd: root })
  return stdout
}

t.test('a filesystem-only user never loads the optional peers; a configured feature without its package names it', { timeout: 600_000 }, async (t) => {
  await built
  const stdout = await withoutOptionalPeers(`
const { default: Fastify } = await import('fastify')
const { default: registry } = await import('./dist/plugins/registry.js')
const { mkdtemp, rm, writeFile } = await import('node:fs/promises')
const { join } = await import('node:path')
const { tmpdir } = await import('node:os')
const dir = await mkdtemp(join(tmpdir(), 'oci-registry-peers-'))
await writeFile(join(dir, 'htpasswd'), 'alice:$2y$04$' + 'a'.repeat(53) + '\\n')
const results = {}
const app = Fastify()
await app.register(registry, { storage: { driver: 'filesystem', root: dir } })
results.filesystem = (await app.inject('/v2/')).statusCode
await app.close()
const attempts = {
  s3: { storage: { driver: 's3', bucket: 'b', region: 'us-east-1' } },
  redis: { storage: { driver: 'inmemory' }, cache: { redis: 'redis://127.0.0.1:1' } },
  htpasswd: { storage: { driver: 'inmemory' }, auth: { mode: 'htpasswd', path: join(dir, 'htpasswd') } },
  cloudevents: { storage: { driver: 'inmemory' }, notifications: { endpoints: [{ name: 'ce', url: 'http://127.0.0.1:1/', format: 'cloudevents' }] } }
}
for (const [feature, options] of Object.entries(attempts)) {
  const app = Fastify()
  try {
    await app.register(registry, options)
    await app.ready()
    results[feature] = 'started'
  } catch (error) {
    results[feature] = { name: error.name, code: error.code, message: error.message, packages: error.packages, cause: error.cause?.code }
  }
  await app.close().catch(() => {})
}
await rm(dir, { recursive: true })
process.stdout.write(JSON.stringify(results))
`)
  const results = JSON.parse(stdout) as Record<string, unknown>
  t.equal(results.filesystem, 200, 'filesystem storage serves /v2/ without the optional peers')
  const expected: Record<string, string[]> = { s3: ['@aws-sdk/client-s3', '@aws-sdk/s3-request-presigner'], redis: ['ioredis'], htpasswd: ['bcrypt'], cloudevents: ['cloudevents'] }
  for (const [feature, packages] of Object.entries(expected)) {
    t.match(results[feature], {
      name: 'MissingDependencyError',
      code: 'ERR_OCI_REGISTRY_MISSING_DEPENDENCY',
      packages,
      cause: 'ERR_MODULE_NOT_FOUND',
      message: `npm install ${packages.join(' ')}`
    }, `${feature} fails at start, naming ${packages.join(' and ')}`)
  }
})

t.test('a fresh project installs the packed package quietly and type-checks the README', { timeout: 900_000 }, async (t) => {
  const dir = await tempDir(t, 'oci-registry-consumer-')
  const { stdout: packed } = await exec('npm', ['pack', '--json', '--pack-destination', dir], { cwd: root, maxBuffer: 64 * 1024 * 1024 })
  const tarball = join(dir, (JSON.parse(packed.slice(packed.indexOf('['))) as Array<{ filename: string }>)[0]?.filename ?? '')
  await t.resolves(access(tarball), 'npm pack wrote the tarball (built by prepack)')

  const project = join(dir, 'consumer')
  await mkdir(project)
  await writeFile(join(project, 'package.json'), JSON.stringify({
    name: 'consumer',
    private: true,
    type: 'module',
    // What the README tells Node 20 users, for a quiet install of Fastify.
    overrides: { 'light-my-request': '6.6.0' },
    // The package has no install-time script (it builds on prepack); nothing to allow.
    allowScripts: { 'fastify-oci-registry': false }
  }, null, 2))
  // From npm's cache where it can (the repository's own install filled it); the registry otherwise.
  const install = await exec('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=warn', tarball, `fastify@${await devVersion('fastify')}`], { cwd: project })
  t.equal(install.stderr.trim(), '', 'npm install prints no warning')
  for (const name of ['@aws-sdk/client-s3', '@aws-sdk/s3-request-presigner', 'ioredis', 'bcrypt']) {
    await t.rejects(access(join(project, 'node_modules', name)), `${name} (an optional peer) is not installed`)
  }
  t.equal((await exec('npm', ['ls', 'fastify', '--parseable'], { cwd: project })).stdout.trim().split('\n').length, 1, 'one copy of fastify: the host\'s')

  const snippets = await readmeSnippets()
  t.ok(snippets.length >= 3, `the README has TypeScript snippets (${snippets.length})`)
  const files = snippets.map((_, index) => `snippet-${index + 1}.ts`)
  for (const [index, snippet] of snippets.entries()) await writeFile(join(project, files[index] as string), snippet)
  const compilerOptions = {
    strict: true,
    noEmit: true,
    target: 'ES2022',
    lib: ['ES2023'],
    skipLibCheck: false,
    types: ['node'],
    typeRoots: [join(root, 'node_modules', '@types')]
  }
  for (const [name, resolution] of [['NodeNext', { module: 'NodeNext', moduleResolution: 'NodeNext' }], ['Bundler', { module: 'ESNext', moduleResolution: 'Bundler' }]] as const) {
    await writeFile(join(project, `tsconfig.${name}.json`), JSON.stringify({ compilerOptions: { ...compilerOptions, ...resolution }, files }))
    const checked = await exec(process.execPath, [tsc, '-p', `tsconfig.${name}.json`], { cwd: project }).then(() => '', (error: { stdout?: string }) => error.stdout ?? String(error))
    t.equal(checked, '', `the README snippets type-check strictly under moduleResolution ${name}`)
  }

  const run = async (file: string, source: string): Promise<string> => {
    await writeFile(join(project, file), source)
    return (await exec(process.execPath, [file], { cwd: project })).stdout
  }
  const esm = JSON.parse(await run('run.mjs', `
import Fastify from 'fastify'
import registry from 'fastify-oci-registry'
const results = {}
const app = Fastify()
await app.register(registry, { prefix: '/registry', storage: { driver: 'filesystem', root: './data' } })
results.prefixed = (await app.inject('/registry/v2/')).statusCode
await app.close()
const s3 = Fastify()
results.s3 = await s3.register(registry, { storage: { driver: 's3', bucket: 'b', region: 'us-east-1' } }).ready().then(() => 'started', (error) => error.message)
await s3.close().catch(() => {})
process.stdout.write(JSON.stringify(results))
`)) as Record<string, unknown>
  t.equal(esm.prefixed, 200, 'the installed plugin serves /registry/v2/')
  t.match(esm.s3, /npm install @aws-sdk\/client-s3 @aws-sdk\/s3-request-presigner/, 's3 without the SDK: the error names what to install')
  t.equal((await run('run.cjs', `
(async () => {
  const { default: registry } = await import('fastify-oci-registry')
  const { RegistryClient } = await import('fastify-oci-registry/client')
  const { digestOf } = await import('fastify-oci-registry/digest')
  process.stdout.write([typeof registry, typeof RegistryClient, digestOf('')].join(' '))
})()
`)).trim(), `function function ${'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'}`, 'a CommonJS host loads it with await import()')
  await t.resolves(access(join(project, 'node_modules', '.bin', 'fastify-oci-registry')), 'the bin is installed')
})
