#!/usr/bin/env node
/**
 * `npm start [-- options]`: builds when a source file is newer than the build, then runs
 * `fastify-oci-registry` with the options (serve, unless they name another command). tsc writes
 * every output on each build, so the built command's time is the build's.
 */

import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const built = new URL('../dist/bin/fastify-oci-registry.js', import.meta.url)
const sources = ['lib', 'plugins', 'examples', 'bin', 'scripts']
const configs = ['tsconfig.json', 'tsconfig.build.json']

function mtime (path) {
  try {
    return statSync(path).mtimeMs
  } catch {
    return undefined
  }
}

function newestSource () {
  let newest = Math.max(...configs.map((name) => mtime(`${root}${name}`) ?? 0))
  for (const dir of sources) {
    for (const entry of readdirSync(`${root}${dir}`, { recursive: true, withFileTypes: true })) {
      if (entry.isFile() && entry.name.endsWith('.ts')) newest = Math.max(newest, mtime(`${entry.parentPath}/${entry.name}`) ?? 0)
    }
  }
  return newest
}

const builtAt = mtime(built)
if (builtAt === undefined || newestSource() > builtAt) {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' })
  if (result.status !== 0) process.exit(result.status ?? 1)
}

// The built command reads process.argv, which holds the options given to npm start.
await import(built.href)
