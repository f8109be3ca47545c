import t from 'tap'
import { readFile } from 'node:fs/promises'
import { CONFIG_OPTIONS, configTableMarkdown, envNames } from '../examples/config.js'
import { RegistryOptionsSchema } from '../lib/options.js'

const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')

t.test('the README shows the server options table as the code has it', async (t) => {
  t.ok(readme.includes(configTableMarkdown()), 'README table equals configTableMarkdown() from examples/config.ts')
  for (const option of CONFIG_OPTIONS) {
    t.match(readme, `\`${option.flag}`, `README mentions ${option.flag}`)
    for (const name of envNames(option)) t.match(readme, `\`${name}\``, `README mentions ${name}`)
  }
})

t.test('the README documents every plugin option', async (t) => {
  for (const key of Object.keys(RegistryOptionsSchema.properties)) {
    t.match(readme, `| \`${key}\` |`, `README row for ${key}`)
  }
})

t.test('the README quick start and layout', async (t) => {
  t.match(readme, 'npm install && npm start')
  t.match(readme, 'npm test')
  t.match(readme, "import registry from 'fastify-oci-registry'")
  for (const dir of ['lib/', 'plugins/', 'examples/', 'test/', 'docs/', 'bench/']) t.match(readme, `\`${dir}\``, dir)
})
