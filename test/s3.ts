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

const launcher = fileURLToPath(new URL('./s3-server.mjs', import.meta.url))

/** s3rver's fixed credentials. */
export const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }

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
    const child = spawn(process.execPath, [launcher, this.directory, String(this.port)], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    let stderr = ''
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    this.port = await new Promise<number>((resolve, reject) => {
      let stdout = ''
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk
        const newline = stdout.indexOf('\n')
        if (newline !== -1) resolve((JSON.parse(stdout.slice(0, newline)) as { port: number }).port)
      })
      child.on('exit', (code) => reject(new Error(`the S3 server exited (${String(code)}): ${stderr}`)))
      child.on('error', reject)
    })
  }

  /** Kills the server at once, as a crash would. */
  async stop (): Promise<void> {
    const child = this.child
    this.child = undefined
    if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    process.kill(child.pid, 'SIGKILL')
    await exited
  }

  /** Options of an S3 driver on `bucket` of this server. */
  driverOptions (bucket: string, extra: Partial<S3DriverOptions> = {}): S3DriverOptions {
    return { bucket, endpoint: this.endpoint, forcePathStyle: true, region: 'us-east-1', ...S3_CREDENTIALS, ...extra }
  }

  /** Creates a bucket with a fresh name; returns the name. */
  async createBucket (name = `bucket-${randomBytes(6).toString('hex')}`): Promise<string> {
    const client = new S3Client({ region: 'us-east-1', endpoint: this.endpoint, forcePathStyle: true, credentials: S3_CREDENTIALS })
    try {
      await client.send(new CreateBucketCommand({ Bucket: name }))
    } finally {
      client.destroy()
    }
    return name
  }
}

export interface Teardown {
  teardown: (fn: () => unknown) => void
}

/** A server of its own for one test, stopped and removed when it ends. */
export async function startS3Server (t: Teardown): Promise<S3Server> {
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
    process.once('exit', () => {
      // Synchronous, as exit handlers must be: the child by id, then its data.
      const pid = server.pid
      if (pid !== undefined) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {}
      }
      rmSync(directory, { recursive: true, force: true })
    })
    return server
  })()
  return await shared
}
