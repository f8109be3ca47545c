/**
 * The package as a user gets it: `npm pack` (which builds through `prepack`), installed into a
 * fresh project from the tarball, beside Fastify and nothing else; the install is quiet, the
 * optional peers are absent, the README's TypeScript snippets type-check strictly under both
 * `moduleResolution` NodeNext and Bundler, and the plugin and the CommonJS form run.
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
const devVersion = async (name: string): Promise<string> =>
  (JSON.parse(await readFile(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version

/** The ```ts blocks of the README. */
async function readmeSnippets (): Promise<string[]> {
  const readme = await readFile(join(root, 'README.md'), 'utf8')
  return [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((match) => match[1] as string)
}

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
