import t from 'tap'
import { readFile } from 'node:fs/promises'
import { CONFIG_OPTIONS, configTableMarkdown, envNames, parseConfig } from '../examples/config.js'
import { optionsTableMarkdown, RegistryOptionsSchema } from '../lib/options.js'

const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')

t.test('the README shows the server options table as the code has it', async (t) => {
  t.ok(readme.includes(configTableMarkdown()), 'README table equals configTableMarkdown() from examples/config.ts')
  for (const option of CONFIG_OPTIONS) {
    if (option.flag !== undefined) t.match(readme, `\`${option.flag}`, `README mentions ${option.flag}`)
    if (option.file !== undefined) t.match(readme, `\`${option.file}\``, `README mentions ${option.file}`)
    for (const name of envNames(option)) t.match(readme, `\`${name}\``, `README mentions ${name}`)
  }
})

t.test('the README\'s config.yml example reads without an error or a warning', async (t) => {
  const section = readme.slice(readme.indexOf('### Configuration file'))
  const example = /```yaml\n([\s\S]*?)```/.exec(section)?.[1]
  t.ok(example, 'the section has a YAML example')
  const config = parseConfig(['--config', 'config.yml'], {}, '/srv', () => example as string)
  t.same(config.registry.storage, { driver: 'filesystem', root: '/var/lib/registry' })
  t.equal(config.registry.delete, true)
  t.match(config.registry.auth, { mode: 'htpasswd', realm: 'basic-realm' })
  t.equal(config.notices, undefined, 'every key of the example is one this registry uses')
})

t.test('the README documents every plugin option', async (t) => {
  t.ok(readme.includes(optionsTableMarkdown()), 'README table equals optionsTableMarkdown() from lib/options.ts')
  for (const key of Object.keys(RegistryOptionsSchema.properties)) {
    t.match(readme, `| \`${key}\` |`, `README row for ${key}`)
  }
})

t.test('the README quick start and layout', async (t) => {
  t.match(readme, 'npm install && npm start')
  t.match(readme, 'npm test')
  t.match(readme, "import ociRegistry from 'fastify-oci-registry'")
  for (const dir of ['lib/', 'plugins/', 'examples/', 'test/', 'docs/', 'bench/']) t.match(readme, `\`${dir}\``, dir)
})
