import t from 'tap'
import { execFile } from 'node:child_process'
import { readFile, access } from 'node:fs/promises'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
  exports: Record<string, string | { types: string, default: string }>
}

t.test('the published entry points build, carry declarations and export what the README promises', { timeout: 180000 }, async (t) => {
  await promisify(execFile)(process.execPath, [fileURLToPath(import.meta.resolve('typescript/bin/tsc')), '-p', 'tsconfig.build.json'], { cwd: root })
  for (const [entry, target] of Object.entries(pkg.exports)) {
    if (typeof target === 'string') continue
    await t.resolves(access(new URL(`../${target.default}`, import.meta.url)), `${entry}: ${target.default} built`)
    await t.resolves(access(new URL(`../${target.types}`, import.meta.url)), `${entry}: ${target.types} built`)
  }
  const main = await import(new URL('../dist/plugins/registry.js', import.meta.url).href) as Record<string, unknown>
  t.type(main.default, 'function', 'the plugin is the default export')
  for (const name of ['registry', 'RegistryError', 'ErrorCodes', 'registerError', 'errorDescriptors', 'routes', 'UrlBuilder']) {
    t.ok(name in main, `the main entry exports ${name}`)
  }
  const lib = await import(new URL('../dist/lib/index.js', import.meta.url).href) as Record<string, unknown>
  for (const name of ['routes', 'matchRoute', 'UrlBuilder', 'RegistryError', 'fromErrorBody', 'parseDigest', 'assertName', 'MediaTypes', 'parseManifest', 'verifySchema1', 'InMemoryDriver', 'FilesystemDriver', 'Registry', 'pathFor']) {
    t.ok(name in lib, `the lib entry exports ${name}`)
  }
})
