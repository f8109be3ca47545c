/**
 * Real processes for the replica tests: the example server (examples/server.ts, run with the
 * TypeScript loader this test runs under) and redis-server, on 127.0.0.1, stopped by process id.
 */

import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Teardown } from './s3.js'

const root = fileURLToPath(new URL('..', import.meta.url))

function loaderArgs (): string[] {
  const fromTap = process.execArgv.filter((arg) => arg.includes('@tapjs/typescript'))
  return fromTap.length > 0 ? fromTap : [`--import=${import.meta.resolve('@tapjs/typescript/import')}`]
}

function childEnv (extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' }
  delete env.NODE_OPTIONS
  for (const name of Object.keys(env)) {
    if (name.startsWith('REGISTRY_') || name.startsWith('_TAPJS_')) delete env[name]
  }
  return { ...env, ...extra }
}

function kill (child: ChildProcess): void {
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL')
}

/** Waits until the child's output matches, failing when it exits first or after `timeoutMs`. */
async function waitForOutput (child: ChildProcess, pattern: RegExp, timeoutMs = 120_000): Promise<RegExpExecArray> {
  let output = ''
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${String(pattern)}:\n${output}`)), timeoutMs)
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8')
      const match = pattern.exec(output)
      if (match !== null) {
        clearTimeout(timer)
        resolve(match)
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`exited (${String(code)}) before ${String(pattern)}:\n${output}`))
    })
  })
}

export interface RegistryProcess {
  url: string
  pid: number
  /** Log lines (JSON) printed so far. */
  logs: () => Array<Record<string, unknown>>
}

/** Starts examples/server.ts with flags and environment; killed when the test ends. */
export async function startRegistry (t: Teardown, args: string[], env: Record<string, string> = {}): Promise<RegistryProcess> {
  const child = spawn(process.execPath, [...loaderArgs(), join(root, 'examples', 'server.ts'), '--port', '0', ...args], {
    cwd: root, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  t.teardown(() => kill(child))
  const match = await waitForOutput(child, /registry listening at (http:\/\/[0-9.:]+)/)
  return {
    url: match[1] as string,
    pid: child.pid as number,
    logs: () => stdout.split('\n').flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>]
      } catch {
        return []
      }
    })
  }
}

/** A free TCP port on 127.0.0.1 (for a server that cannot pick its own and report it). */
async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
    })
  })
}

/** Starts redis-server (Debian's) without persistence; returns its URL. */
export async function startRedis (t: Teardown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'oci-registry-redis-'))
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(async () => {
    kill(child)
    await rm(dir, { recursive: true, force: true })
  })
  await waitForOutput(child, /Ready to accept connections/)
  return `redis://127.0.0.1:${port}`
}
