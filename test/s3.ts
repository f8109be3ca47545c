/**
 * An S3-compatible server for tests (s3rver, see s3-server.mjs) in a child process on 127.0.0.1,
 * its data in a temporary directory; stopped by process id. `sharedS3` gives one per test
 * process, for test files that build many apps: each app then takes its own bucket.
 */

import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3'
import type { S3DriverOptions } from '../lib/storage/drivers/s3.js'
import type { TestContext } from './helpers.js'

const launcher = fileURLToPath(new URL('./s3-server.mjs', import.meta.url))

/** Servers running, killed by id if the test process exits without stopping them. */
const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) {
    try {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
    } catch {}
  }
})

/** s3rver's fixed credentials; a fresh object each time, since the SDK marks the ones it is given. */
export function s3Credentials (): { accessKeyId: string, secretAccessKey: string } {
  return { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }
}

export class S3Server {
  private child: ChildProcess | undefined
  port = 0

  constructor (readonly directory: string) {}

  get pid (): number | undefined {
    return this.child?.pid
  }

  get endpoint (): string {
    return `http://127.0.0.1:${this.port}`
  }

  /** Starts the server (on its former port after a stop, so clients find it again). */
  async start (): Promise<void> {
    // Errors go to the test's own stderr; the child never holds the test process open.
    const child = spawn(process.execPath, [launcher, this.directory, String(this.port)], { stdio: ['ignore', 'pipe', 'inherit'] })
    this.child = child
    child.unref()
    live.add(child)
    child.once('exit', () => live.delete(child))
    this.port = await new Promise<number>((resolve, reject) => {
      let stdout = ''
      const stream = child.stdout as NodeJS.ReadableStream & { destroy: () => void }
      stream.setEncoding('utf8')
      stream.on('data', (chunk: string) => {
        stdout += chunk
        const newline = stdout.indexOf('\n')
        if (newline === -1) return
        stream.destroy()
        resolve((JSON.parse(stdout.slice(0, newline)) as { port: number }).port)
      })
      child.once('exit', (code) => reject(new Error(`the S3 server exited (${String(code)}) before listening`)))
      child.once('error', reject)
    })
  }

  /** Kills the server at once, as a crash would. */
  async stop (): Promise<void> {
    const child = this.child
    this.child = undefined
    if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    // Unreferenced, the child would not keep this process alive until it has exited.
    child.ref()
    process.kill(child.pid, 'SIGKILL')
    await exited
  }

  /** Options of an S3 driver on `bucket` of this server. */
  driverOptions (bucket: string, extra: Partial<S3DriverOptions> = {}): S3DriverOptions {
    return { bucket, endpoint: this.endpoint, forcePathStyle: true, region: 'us-east-1', ...s3Credentials(), ...extra }
  }

  /** Creates a bucket with a fresh name; returns the name. */
  async createBucket (name = `bucket-${randomBytes(6).toString('hex')}`): Promise<string> {
    const client = new S3Client({ region: 'us-east-1', endpoint: this.endpoint, forcePathStyle: true, credentials: s3Credentials() })
    try {
      await client.send(new CreateBucketCommand({ Bucket: name }))
    } finally {
      client.destroy()
    }
    return name
  }
}

/** A server of its own for one test, stopped and removed when it ends. */
export async function startS3Server (t: TestContext): Promise<S3Server> {
  const directory = await mkdtemp(join(tmpdir(), 'oci-registry-s3-'))
  const server = new S3Server(directory)
  t.teardown(async () => {
    await server.stop()
    await rm(directory, { recursive: true, force: true })
  })
  await server.start()
  return server
}

let shared: Promise<S3Server> | undefined

/** One server for the whole test process, stopped when the process exits. */
export async function sharedS3 (): Promise<S3Server> {
  shared ??= (async () => {
    const directory = await mkdtemp(join(tmpdir(), 'oci-registry-s3-'))
    const server = new S3Server(directory)
    await server.start()
    // After the handler above has killed the server (handlers run in order).
    process.once('exit', () => { rmSync(directory, { recursive: true, force: true }) })
    return server
  })()
  return await shared
}
