/**
 * The servers under test, each on 127.0.0.1, a free port and its own fresh storage root: ours
 * (the example server, built) and the reference, CNCF distribution as Debian packages it.
 */

import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { freePort } from '../test/ports.js'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { processTree } from './proc.js'

export const REFERENCE_BINARY = '/usr/bin/docker-registry'

export type TargetName = 'ours' | 'reference'

export interface Target {
  name: TargetName
  /** What runs, for the report. */
  description: string
  origin: string
  /** Storage root: the blob store layout is the same for both servers. */
  root: string
  /** The server's processes (a cluster primary and its workers). */
  pids: () => number[]
  alive: () => boolean
  stop: () => Promise<void>
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** Keeps the last lines a process printed, to show when it fails. */
function tail (child: ChildProcess): () => string {
  let text = ''
  const keep = (chunk: Buffer): void => { text = (text + chunk.toString('utf8')).slice(-4000) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  return () => text
}

async function ready (origin: string, child: ChildProcess, output: () => string, processes: () => number): Promise<void> {
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited during start:\n${output()}`)
    if (Date.now() > deadline) throw new Error(`server did not start in 30 s:\n${output()}`)
    try {
      // A fresh connection each time: with a cluster, every worker must be listening.
      const response = await fetch(`${origin}/v2/`, { headers: { connection: 'close' } })
      await response.arrayBuffer()
      if (response.status === 200 && processes() === 0) return
    } catch {
      // not listening yet
    }
    await sleep(100)
  }
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve() }))
  child.kill('SIGTERM')
  const timer = setTimeout(() => { child.kill('SIGKILL') }, 15_000)
  await exited
  clearTimeout(timer)
}

function makeTarget (name: TargetName, description: string, origin: string, root: string, child: ChildProcess, cleanup: () => Promise<void>): Target {
  const pid = child.pid as number
  let tree = processTree(pid)
  return {
    name,
    description,
    origin,
    root,
    pids: () => {
      tree = processTree(pid)
      return tree
    },
    alive: () => child.exitCode === null && child.signalCode === null,
    stop: async () => {
      await stopChild(child)
      await cleanup()
    }
  }
}

export interface OursOptions {
  /** Parent of the storage root. */
  dir: string
  workers: number
  /** Extra node flags (e.g. --cpu-prof). */
  nodeArgs: string[]
}

const serverScript = fileURLToPath(new URL('../examples/server.js', import.meta.url))

export async function startOurs (options: OursOptions): Promise<Target> {
  const root = await mkdtemp(join(options.dir, 'bench-ours-'))
  const port = await freePort()
  const args = [...options.nodeArgs, serverScript, '--port', String(port), '--host', '127.0.0.1', '--root', root,
    '--storage', 'filesystem', '--workers', String(options.workers), '--log-level', 'warn', '--delete']
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() })
  const output = tail(child)
  const origin = `http://127.0.0.1:${port}`
  const expected = options.workers > 1 ? options.workers + 1 : 1
  await ready(origin, child, output, () => expected - processTree(child.pid as number).length)
  return makeTarget('ours', `examples/server.js --workers ${options.workers}, node ${process.version}`, origin, root, child,
    async () => { await rm(root, { recursive: true, force: true }) })
}

function cleanEnv (): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const key of Object.keys(env)) {
    if (key.startsWith('REGISTRY_') || key === 'NODE_OPTIONS') delete env[key]
  }
  return env
}

/**
 * CNCF distribution's configuration: Debian's shipped one (filesystem, in-memory blob descriptor
 * cache, deletes on) minus auth, with quiet logs and no access log, since ours logs no requests
 * at level warn either.
 */
function referenceConfig (root: string, port: number): string {
  return [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  cache:',
    '    blobdescriptor: inmemory',
    '  filesystem:',
    `    rootdirectory: ${root}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    ''
  ].join('\n')
}

export async function startReference (options: { dir: string }): Promise<Target> {
  if (!existsSync(REFERENCE_BINARY)) {
    throw new Error(`${REFERENCE_BINARY} not found: install it with "apt-get install -y docker-registry", or pass --targets ours`)
  }
  const root = await mkdtemp(join(options.dir, 'bench-reference-'))
  const port = await freePort()
  const configDir = await mkdtemp(join(options.dir, 'bench-reference-config-'))
  const config = join(configDir, 'config.yml')
  await writeFile(config, referenceConfig(root, port))
  const env = cleanEnv()
  const child = spawn(REFERENCE_BINARY, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'], env })
  const output = tail(child)
  const origin = `http://127.0.0.1:${port}`
  await ready(origin, child, output, () => 0)
  return makeTarget('reference', 'CNCF distribution 2.8.2 (Debian docker-registry)', origin, root, child, async () => {
    await rm(root, { recursive: true, force: true })
    await rm(configDir, { recursive: true, force: true })
  })
}
