/**
 * OpenStack Swift with its S3 API (s3api) for tests, "all in one" on 127.0.0.1: one memcached,
 * an account, a container and an object server on one device (a directory of a temporary
 * folder whose file system takes user xattrs, checked), rings of one replica built with
 * swift-ring-builder, and a proxy whose pipeline has s3api before tempauth.
 * The S3 user is tempauth's `account:user`. Debian packages: swift swift-proxy swift-object
 * swift-container swift-account python3-swift memcached. Everything runs as child processes on
 * free loopback ports, is waited for with real checks (each server's /healthcheck, memcached's
 * `version`, then an S3 request), and is stopped by process id. The servers' logs, which Swift
 * sends to syslog over UDP, go to a socket of this process (kept for failure messages), never
 * to 127.0.0.1:514.
 */

import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createSocket, type Socket } from 'node:dgram'
import { existsSync, rmSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { CreateBucketCommand } from '@aws-sdk/client-s3'
import { createClient, type S3DriverOptions } from '../lib/storage/drivers/s3/options.js'
import type { TestContext } from './helpers.js'
import { freePort } from './ports.js'

const run = promisify(execFile)

/** The S3 credentials of tempauth's `user_account_user` (access key `account:user`). */
export function swiftCredentials (): { accessKeyId: string, secretAccessKey: string } {
  return { accessKeyId: 'account:user', secretAccessKey: 'secret' }
}

const PROGRAMS = ['swift-ring-builder', 'swift-account-server', 'swift-container-server', 'swift-object-server', 'swift-proxy-server', 'memcached']

/** Children running, killed by id if the test process exits without stopping them. */
const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) {
    try {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
    } catch {}
  }
})

const SERVERS = ['account', 'container', 'object'] as const
type Server = typeof SERVERS[number]

function serverConf (dir: string, server: Server, port: number, logPort: number): string {
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 0
user = ${userInfo().username}
swift_dir = ${dir}/etc
devices = ${dir}/srv
mount_check = false
log_name = ${server}-server
log_udp_host = 127.0.0.1
log_udp_port = ${logPort}

[pipeline:main]
pipeline = healthcheck ${server}-server

[app:${server}-server]
use = egg:swift#${server}

[filter:healthcheck]
use = egg:swift#healthcheck
`
}

function proxyConf (dir: string, port: number, memcachedPort: number, logPort: number, location: string): string {
  const udp = `log_udp_host = 127.0.0.1\nlog_udp_port = ${logPort}`
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 0
user = ${userInfo().username}
swift_dir = ${dir}/etc
log_name = proxy-server
${udp}

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging
access_${udp.replaceAll('\n', '\naccess_')}

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:${memcachedPort}

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:s3api]
use = egg:swift#s3api
location = ${location}

[filter:tempauth]
use = egg:swift#tempauth
user_account_user = secret .admin

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
`
}

/** GETs a URL until it answers 200, while `alive` holds; rejects after `timeoutMs`. */
async function waitForHealth (url: string, alive: () => string | undefined, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const dead = alive()
    if (dead !== undefined) throw new Error(dead)
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) })
      await response.arrayBuffer()
      if (response.status === 200) return
    } catch {}
    if (Date.now() > deadline) throw new Error(`${url} did not answer in ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** Asks memcached its version until it answers. */
async function waitForMemcached (port: number, alive: () => string | undefined, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const dead = alive()
    if (dead !== undefined) throw new Error(dead)
    const answered = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => socket.write('version\r\n'))
      socket.setTimeout(2000, () => { socket.destroy(); resolve(false) })
      socket.once('data', (data) => { socket.destroy(); resolve(data.toString('utf8').startsWith('VERSION')) })
      socket.once('error', () => resolve(false))
    })
    if (answered) return
    if (Date.now() > deadline) throw new Error(`memcached did not answer in ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

export interface SwiftOptions {
  /** s3api's `location`: the region requests are signed for (default us-east-1). */
  location?: string
}

export class SwiftS3 {
  private readonly children = new Map<string, ChildProcess>()
  private readonly exits = new Map<string, string>()
  private logSocket: Socket | undefined
  /** The last lines the servers logged, for failure messages. */
  readonly logLines: string[] = []
  port = 0
  readonly location: string

  constructor (readonly directory: string, options: SwiftOptions = {}) {
    this.location = options.location ?? 'us-east-1'
  }

  get endpoint (): string {
    return `http://127.0.0.1:${this.port}`
  }

  /** Process ids of memcached and the four servers. */
  get pids (): number[] {
    return [...this.children.values()].flatMap((child) => child.pid === undefined ? [] : [child.pid])
  }

  /** Options of an S3 driver on `bucket` of this server. */
  driverOptions (bucket: string, extra: Partial<S3DriverOptions> = {}): S3DriverOptions {
    return { bucket, endpoint: this.endpoint, forcePathStyle: true, region: this.location, ...swiftCredentials(), ...extra }
  }

  /** Creates a bucket with a fresh name; returns the name. */
  async createBucket (name = `bucket-${randomBytes(6).toString('hex')}`): Promise<string> {
    const client = createClient(this.driverOptions(name, { maxAttempts: 1 }))
    try {
      await client.send(new CreateBucketCommand({ Bucket: name }))
    } finally {
      client.destroy()
    }
    return name
  }

  /** The last log lines, to show when a test fails. */
  recentLogs (lines = 40): string {
    return this.logLines.slice(-lines).join('\n')
  }

  async start (timeoutMs = 120_000): Promise<void> {
    const missing = PROGRAMS.filter((program) => !existsSync(`/usr/bin/${program}`))
    if (missing.length > 0) {
      throw new Error(`OpenStack Swift is not installed (no ${missing.join(', ')}): apt-get install swift swift-proxy swift-object swift-container swift-account python3-swift memcached`)
    }
    const dir = this.directory
    await mkdir(join(dir, 'etc'), { recursive: true })
    await mkdir(join(dir, 'srv', 'd1'), { recursive: true })
    await mkdir(join(dir, 'run'), { recursive: true })
    const logPort = await this.listenForLogs()
    const ports = { account: await freePort(), container: await freePort(), object: await freePort() }
    const memcachedPort = await freePort()
    this.port = await freePort()

    // One ring per server: 2^6 partitions, one replica, one device.
    await Promise.all(SERVERS.map(async (server) => {
      const builder = join(dir, 'etc', `${server}.builder`)
      await run('swift-ring-builder', [builder, 'create', '6', '1', '1'])
      await run('swift-ring-builder', [builder, 'add', `r1z1-127.0.0.1:${ports[server]}/d1`, '100'])
      await run('swift-ring-builder', [builder, 'rebalance'])
    }))
    for (const server of SERVERS) await writeFile(join(dir, 'etc', `${server}-server.conf`), serverConf(dir, server, ports[server], logPort))
    await writeFile(join(dir, 'etc', 'proxy-server.conf'), proxyConf(dir, this.port, memcachedPort, logPort, this.location))

    const alive = (): string | undefined => {
      const [name, exit] = [...this.exits.entries()][0] ?? []
      return name === undefined ? undefined : `${name} exited (${String(exit)}) while starting:\n${this.recentLogs()}`
    }
    this.spawn('memcached', 'memcached', ['-l', '127.0.0.1', '-p', String(memcachedPort), '-U', '0', '-m', '64', ...(process.getuid?.() === 0 ? ['-u', 'nobody'] : [])])
    for (const server of SERVERS) this.spawn(`${server}-server`, `swift-${server}-server`, [join(dir, 'etc', `${server}-server.conf`)])
    this.spawn('proxy-server', 'swift-proxy-server', [join(dir, 'etc', 'proxy-server.conf')])
    try {
      await waitForMemcached(memcachedPort, alive, timeoutMs)
      await Promise.all([
        ...SERVERS.map(async (server) => await waitForHealth(`http://127.0.0.1:${ports[server]}/healthcheck`, alive, timeoutMs)),
        waitForHealth(`${this.endpoint}/healthcheck`, alive, timeoutMs)
      ])
    } catch (error) {
      await this.stop()
      throw error
    }
  }

  private spawn (name: string, command: string, args: string[]): void {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.children.set(name, child)
    live.add(child)
    child.unref()
    const keep = (chunk: Buffer): void => { this.keepLog(`${name}: ${chunk.toString('utf8').trimEnd()}`) }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    child.once('error', (error) => { this.exits.set(name, error.message) })
    child.once('exit', (code, signal) => {
      live.delete(child)
      this.exits.set(name, String(code ?? signal))
    })
  }

  private keepLog (line: string): void {
    this.logLines.push(line)
    if (this.logLines.length > 500) this.logLines.splice(0, this.logLines.length - 500)
  }

  /** A UDP socket on a free loopback port for the servers' syslog lines. */
  private async listenForLogs (): Promise<number> {
    const socket = createSocket('udp4')
    this.logSocket = socket
    socket.on('message', (message) => { this.keepLog(message.toString('utf8').replace(/^<\d+>/, '').trimEnd()) })
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(0, '127.0.0.1', () => resolve())
    })
    socket.unref()
    return socket.address().port
  }

  /** Stops every process by id (SIGTERM, then SIGKILL for one that lingers) and waits for its exit. */
  async stop (): Promise<void> {
    await Promise.all([...this.children.values()].map(async (child) => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.ref()
      process.kill(child.pid, 'SIGTERM')
      const timer = setTimeout(() => {
        if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL')
      }, 10_000)
      await exited
      clearTimeout(timer)
    }))
    this.children.clear()
    this.logSocket?.close()
    this.logSocket = undefined
  }
}

/** Whether a directory's file system takes user xattrs, which Swift's object server stores metadata in. */
async function takesUserXattrs (dir: string): Promise<boolean> {
  try {
    await run('/usr/bin/python3', ['-c', 'import os, sys; os.setxattr(sys.argv[1], "user.swift-check", b"1")', dir])
    return true
  } catch {
    return false
  }
}

/** A temporary folder whose file system takes user xattrs: the system's, else /var/tmp (tmpfs before Linux 6.6 does not). */
async function swiftDirectory (): Promise<string> {
  for (const parent of [tmpdir(), '/var/tmp']) {
    const dir = await mkdtemp(join(parent, 'oci-registry-swift-'))
    if (await takesUserXattrs(dir)) return dir
    await rm(dir, { recursive: true, force: true })
  }
  throw new Error(`no temporary folder takes user xattrs (tried ${tmpdir()} and /var/tmp): Swift cannot store objects`)
}

/** A Swift of its own for one test, stopped and removed when the test ends. */
export async function startSwift (t: TestContext, options: SwiftOptions = {}): Promise<SwiftS3> {
  const directory = await swiftDirectory()
  const swift = new SwiftS3(directory, options)
  t.teardown(async () => {
    await swift.stop()
    await rm(directory, { recursive: true, force: true })
  })
  await swift.start()
  return swift
}

let shared: Promise<SwiftS3> | undefined

/** One Swift for the whole test process, stopped when the process exits. */
export async function sharedSwift (): Promise<SwiftS3> {
  shared ??= (async () => {
    const directory = await swiftDirectory()
    const swift = new SwiftS3(directory)
    await swift.start()
    process.once('exit', () => { rmSync(directory, { recursive: true, force: true }) })
    return swift
  })()
  return await shared
}
