/**
 * The example server as a real process, for tests that need one: started with the TypeScript
 * loader the tests run under (no build needed), its JSON log lines parsed as they arrive,
 * stopped by process id.
 */

import type { Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { EventEmitter } from 'node:events'
import http from 'node:http'
import type { Readable } from 'node:stream'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = fileURLToPath(new URL('..', import.meta.url))
const serverScript = join(root, 'examples', 'server.ts')

/** Runs a TypeScript entry point with tsx, the loader the tests run under, so no build is needed. */
export function loaderArgs (): string[] {
  return [`--import=${import.meta.resolve('tsx')}`]
}

/** The child's environment: ours without tap's and the developer's registry settings, plus `extra`. */
export function childEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' }
  // Tap's coverage hook and the developer's own registry settings must not leak into the child.
  delete env.NODE_OPTIONS
  for (const name of Object.keys(env)) {
    if (name.startsWith('REGISTRY_') || name.startsWith('_TAPJS_')) delete env[name]
  }
  return { ...env, ...extra }
}

/**
 * Reads a child's output stream: every chunk to `onChunk`, then each complete line to `onLine`,
 * parsed as JSON (undefined for a line that is not JSON, such as --help output).
 */
export function readLines (stream: Readable | null, onChunk: (chunk: string) => void, onLine: (line: Record<string, unknown> | undefined) => void): void {
  let pending = ''
  stream?.setEncoding('utf8').on('data', (chunk: string) => {
    onChunk(chunk)
    pending += chunk
    let newline: number
    while ((newline = pending.indexOf('\n')) !== -1) {
      const text = pending.slice(0, newline)
      pending = pending.slice(newline + 1)
      let line: Record<string, unknown> | undefined
      try {
        line = JSON.parse(text) as Record<string, unknown>
      } catch {
        line = undefined
      }
      onLine(line)
    }
  })
}

export interface LogLine { pid: number, msg: string, [key: string]: unknown }

export class ServerProcess {
  readonly child: ChildProcess
  readonly lines: LogLine[] = []
  stdout = ''
  stderr = ''
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  private readonly events = new EventEmitter()

  /** `script` is examples/server.ts unless another entry point (such as the command line's) is given. */
  constructor (args: string[], env: Record<string, string> = {}, script: string = serverScript) {
    this.child = spawn(process.execPath, [...loaderArgs(), script, ...args], {
      cwd: root,
      env: childEnv(env),
      stdio: ['ignore', 'pipe', 'pipe']
    })
    readLines(this.child.stdout, (chunk) => { this.stdout += chunk }, (line) => {
      if (line !== undefined) this.lines.push(line as LogLine)
      this.events.emit('line')
    })
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { this.stderr += chunk })
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.events.emit('line')
        resolve({ code, signal })
      })
    })
  }

  /** Waits until `count` log lines match, failing if the process exits first. */
  async waitFor (predicate: (line: LogLine) => boolean, count = 1, timeoutMs = 120000): Promise<LogLine[]> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = this.lines.filter(predicate)
      if (found.length >= count) return found
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`server exited before the expected log line\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`)
      }
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for a log line\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.events.once('line', () => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  kill (signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null) {
      process.kill(this.child.pid, signal)
    }
  }
}

export const isListening = (line: LogLine): boolean => line.msg.startsWith('registry listening at ')
export const urlOf = (line: LogLine): string => line.msg.slice('registry listening at '.length)

export function start (t: Test, args: string[], env: Record<string, string> = {}, script?: string): ServerProcess {
  const server = new ServerProcess(args, env, script)
  t.teardown(() => server.kill())
  return server
}

/** Starts the server and waits until it listens; returns it with its base URL. */
export async function startListening (t: Test, args: string[], env: Record<string, string> = {}): Promise<{ server: ServerProcess, base: string }> {
  const server = start(t, args, env)
  const [listening] = await server.waitFor(isListening)
  return { server, base: urlOf(listening as LogLine) }
}

/** GETs a URL on a fresh connection, so that requests spread over cluster workers and none is left idle to slow a shutdown. */
export async function get (url: string): Promise<{ status: number, headers: http.IncomingHttpHeaders, body: string }> {
  return await new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (response) => {
      let body = ''
      response.setEncoding('utf8').on('data', (chunk: string) => { body += chunk })
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }))
    }).on('error', reject)
  })
}

/** Answers GET /v2/ as a registry: 200, the API version header, `{}`. */
export async function assertBase (t: Test, base: string): Promise<void> {
  const response = await get(`${base}/v2/`)
  t.equal(response.status, 200)
  t.equal(response.headers['docker-distribution-api-version'], 'registry/2.0')
  t.same(JSON.parse(response.body), {})
}

export const isDebugListening = (line: LogLine): boolean => line.msg.startsWith('debug listener at ')
export const debugUrlOf = (line: LogLine): string => line.msg.slice('debug listener at '.length)

/** The value of one sample (`name{labels}`) in a Prometheus text exposition. */
export function metricSample (text: string, line: string): number | undefined {
  const found = text.split('\n').find((candidate) => candidate.startsWith(`${line} `))
  return found === undefined ? undefined : Number(found.slice(line.length + 1))
}
