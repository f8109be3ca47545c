/**
 * The integration tier's harness: our example server and CNCF distribution (Debian's
 * `docker-registry`) as child processes on 127.0.0.1 with free ports, commands run with their
 * output captured, and temporary directories. Everything started here is stopped by process id
 * when the test ends.
 */

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { createReadStream } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { childEnv, loaderArgs, readLines } from '../server-process.js'

export interface TestContext {
  teardown: (fn: () => unknown) => void
}

export const projectRoot = fileURLToPath(new URL('../..', import.meta.url))
const serverScript = join(projectRoot, 'examples', 'server.ts')

/** A temporary directory, removed when the test ends. */
export async function tempDir (t: TestContext, prefix = 'oci-integration-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

export interface LogLine {
  msg?: string
  [key: string]: unknown
}

/** Services still running; killed if the test process exits without its teardowns. */
const running = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of running) if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL')
})

/** A child process whose output is kept, with its JSON log lines parsed. */
export class Service {
  readonly child: ChildProcess
  readonly lines: LogLine[] = []
  output = ''
  private readonly events = new EventEmitter()

  constructor (command: string, args: string[], options: SpawnOptions) {
    this.child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
    for (const stream of [this.child.stdout, this.child.stderr]) {
      readLines(stream, (chunk) => { this.output += chunk }, (line) => {
        if (line !== undefined) this.lines.push(line as LogLine)
        this.events.emit('line')
      })
    }
    running.add(this.child)
    this.child.on('exit', () => {
      running.delete(this.child)
      this.events.emit('line')
    })
    this.child.on('error', (error) => {
      // A command that cannot start: reported by waitFor, not as an uncaught error.
      this.spawnError = error
      this.events.emit('line')
    })
  }

  private spawnError: Error | undefined

  /** The first log line matching, waiting for it; fails when the process exits first. */
  async waitFor (predicate: (line: LogLine) => boolean, timeoutMs = 60_000): Promise<LogLine> {
    return await this.waitUntil(() => this.lines.find(predicate), timeoutMs)
  }

  /** Waits until the output (any stream, JSON or not) matches; fails when the process exits first. */
  async waitForOutput (pattern: RegExp, timeoutMs = 60_000): Promise<void> {
    await this.waitUntil(() => pattern.test(this.output) ? true : undefined, timeoutMs)
  }

  private async waitUntil<T> (check: () => T | undefined, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = check()
      if (found !== undefined) return found
      if (this.spawnError !== undefined) throw this.spawnError
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`${String(this.child.spawnfile)} exited before the expected output:\n${this.output}`)
      }
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for the output of ${String(this.child.spawnfile)}:\n${this.output}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.events.once('line', () => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** Stops the process by its id and waits for it to exit. */
  async stop (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const pid = this.child.pid
    if (pid === undefined || this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    process.kill(pid, signal)
    const timer = setTimeout(() => {
      if (this.child.exitCode === null && this.child.signalCode === null) process.kill(pid, 'SIGKILL')
    }, 10_000)
    await exited
    clearTimeout(timer)
  }
}

export interface RunningRegistry {
  /** `http://127.0.0.1:<port>` */
  url: string
  /** `127.0.0.1:<port>`, as image references spell it. */
  host: string
  service: Service
  stop: () => Promise<void>
}

/** Our example server on a free port; `args` are its flags (e.g. `--root`, `--delete`). */
export async function startServer (t: TestContext, args: string[] = []): Promise<RunningRegistry> {
  const service = new Service(process.execPath, [...loaderArgs(), serverScript, '--port', '0', ...args], { cwd: projectRoot, env: childEnv() })
  t.teardown(async () => { await service.stop() })
  const line = await service.waitFor((entry) => typeof entry.msg === 'string' && entry.msg.startsWith('registry listening at '))
  const url = (line.msg as string).slice('registry listening at '.length)
  return { url, host: new URL(url).host, service, stop: async () => { await service.stop() } }
}

/** Requests our server logged (`incoming request` lines), with their response status. */
export function requestLog (service: Service): Array<{ method: string, url: string, status?: number }> {
  const status = new Map<string, number>()
  for (const line of service.lines) {
    const res = line.res as { statusCode?: number } | undefined
    if (line.msg === 'request completed' && typeof line.reqId === 'string' && res?.statusCode !== undefined) status.set(line.reqId, res.statusCode)
  }
  const requests: Array<{ method: string, url: string, status?: number }> = []
  for (const line of service.lines) {
    const req = line.req as { method?: string, url?: string } | undefined
    if (line.msg !== 'incoming request' || req?.method === undefined || req.url === undefined) continue
    const code = typeof line.reqId === 'string' ? status.get(line.reqId) : undefined
    requests.push({ method: req.method, url: req.url, ...(code === undefined ? {} : { status: code }) })
  }
  return requests
}

export const DISTRIBUTION = '/usr/bin/docker-registry'

/** CNCF distribution 2.8.2 on a free port, filesystem storage under `root`. */
export async function startDistribution (t: TestContext, options: { root: string, delete?: boolean }): Promise<RunningRegistry> {
  const dir = await tempDir(t, 'distribution-config-')
  const config = join(dir, 'config.yml')
  await writeFile(config, [
    'version: 0.1',
    'log:',
    '  level: info',
    '  formatter: json',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(options.root)}`,
    '  delete:',
    `    enabled: ${options.delete === true ? 'true' : 'false'}`,
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    '  addr: 127.0.0.1:0',
    ''
  ].join('\n'))
  const env = { ...process.env }
  for (const name of Object.keys(env)) if (name.startsWith('REGISTRY_')) delete env[name]
  const service = new Service(DISTRIBUTION, ['serve', config], { cwd: dir, env })
  t.teardown(async () => { await service.stop() })
  const line = await service.waitFor((entry) => typeof entry.msg === 'string' && entry.msg.startsWith('listening on '))
  const host = (line.msg as string).slice('listening on '.length).trim()
  return { url: `http://${host}`, host, service, stop: async () => { await service.stop() } }
}

export interface RunResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs a command to its end; rejects with its output when it fails, unless `allowFailure`. */
export async function run (command: string, args: readonly string[], options: { cwd?: string, env?: NodeJS.ProcessEnv, allowFailure?: boolean, timeoutMs?: number } = {}): Promise<RunResult> {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const timeoutMs = options.timeoutMs ?? 300_000
  const timer = setTimeout(() => { if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL') }, timeoutMs)
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (exitCode) => resolve(exitCode))
  }).finally(() => clearTimeout(timer))
  const result = { code, stdout, stderr }
  if (code !== 0 && options.allowFailure !== true) {
    throw new Error(`${command} ${args.join(' ')} exited with ${String(code)}\n${stderr}${stdout}`)
  }
  return result
}

/** sha256 of a file, streamed. */
export async function sha256File (path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return `sha256:${hash.digest('hex')}`
}

export type Cli = (...args: string[]) => Promise<string>

/** A private dockerd (vfs, no iptables, no bridge) on a unix socket in `work`; `docker` runs Debian's CLI against it. */
export async function startDockerd (t: TestContext, work: string): Promise<Cli> {
  const socket = join(work, 'docker.sock')
  const config = join(work, 'docker-config')
  const dockerd = new Service('/usr/sbin/dockerd', [
    '--storage-driver', 'vfs', '--iptables=false', '--ip6tables=false', '--bridge=none',
    '--data-root', join(work, 'docker-data'), '--exec-root', join(work, 'docker-exec'), '--pidfile', join(work, 'docker.pid'),
    '-H', `unix://${socket}`
  ], { env: { ...process.env, DOCKER_CONFIG: config } })
  t.teardown(async () => { await dockerd.stop() })
  await dockerd.waitForOutput(/API listen on /)
  const env = { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: config }
  return async (...args) => {
    const { stdout, stderr } = await run('/usr/bin/docker', args, { env })
    return stdout + stderr
  }
}

/** A private containerd (CRI plugin off) on a unix socket in `work`; `ctr` runs against it in one namespace. */
export async function startContainerd (t: TestContext, work: string): Promise<Cli & { socket: string }> {
  const socket = join(work, 'containerd.sock')
  const config = join(work, 'containerd.toml')
  await writeFile(config, [
    'version = 2',
    `root = ${JSON.stringify(join(work, 'containerd-root'))}`,
    `state = ${JSON.stringify(join(work, 'containerd-state'))}`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]',
    `  address = ${JSON.stringify(socket)}`,
    '[debug]',
    '  address = ""',
    '[metrics]',
    '  address = ""',
    ''
  ].join('\n'))
  const containerd = new Service('/usr/bin/containerd', ['--config', config], {})
  t.teardown(async () => { await containerd.stop() })
  await containerd.waitForOutput(/containerd successfully booted/)
  const ctr = async (...args: string[]): Promise<string> => {
    const { stdout, stderr } = await run('/usr/bin/ctr', ['--address', socket, '--namespace', 'integration', ...args])
    return stdout + stderr
  }
  return Object.assign(ctr, { socket })
}
