/**
 * Writes docs/api.md and docs/openapi.json from the route descriptors and the error registry.
 * `--check` writes nothing and exits 1 when a committed file differs from what it would write.
 * Run from the repository root (`npm run docs` does).
 */

import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { renderApiMarkdown, renderOpenApi } from '../lib/docs.js'

const DOCS = [
  { file: 'api.md', render: renderApiMarkdown },
  { file: 'openapi.json', render: renderOpenApi }
] as const

async function readOrEmpty (path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch {
    return ''
  }
}

async function run (argv: readonly string[]): Promise<number> {
  const check = argv.includes('--check')
  const dir = resolve('docs')
  if (!check) await mkdir(dir, { recursive: true })
  let stale = 0
  for (const doc of DOCS) {
    const path = join(dir, doc.file)
    const text = doc.render()
    if (await readOrEmpty(path) === text) continue
    if (check) {
      process.stderr.write(`docs/${doc.file} is out of date: run npm run docs\n`)
      stale++
    } else {
      await writeFile(path, text)
      process.stdout.write(`wrote docs/${doc.file}\n`)
    }
  }
  return stale === 0 ? 0 : 1
}

process.exitCode = await run(process.argv.slice(2))
