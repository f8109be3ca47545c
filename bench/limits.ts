/**
 * The machine's ceilings, measured in the same run as the servers: what hashing, the disk,
 * loopback TCP, a trivial Fastify server and a minimal upload server can do here. A registry
 * cannot beat them; they say how far from the hardware each figure is.
 */

import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, open, rename, rm, mkdir } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { BlobContent, freshSeed } from './content.js'
import { Client, check, expectStatus, header } from './http.js'
import { loadFixed } from './loadgen.js'
import { MB, type Figure, type Settings } from './cases.js'
import { freePort } from '../test/ports.js'

export interface LimitDefinition {
  name: string
  unit: string
  description: string
  run: (settings: Settings, dir: string) => Promise<Figure>
}

const baselineScript = fileURLToPath(new URL('./baselines.js', import.meta.url))

async function withBaseline<T> (args: string[], work: (origin: string, port: number) => Promise<T>): Promise<T> {
  const port = await freePort()
  const child: ChildProcess = spawn(process.execPath, [baselineScript, args[0] as string, String(port), ...args.slice(1)], { stdio: ['ignore', 'ignore', 'inherit'] })
  const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve() }))
  try {
    const deadline = Date.now() + 20_000
    for (;;) {
      const up = await new Promise<boolean>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true) })
        socket.on('error', () => { resolve(false) })
      })
      if (up) break
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`baseline ${args[0] as string} did not start`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    return await work(`http://127.0.0.1:${port}`, port)
  } finally {
    child.kill('SIGTERM')
    await exited
  }
}

function seconds (started: number): number {
  return (performance.now() - started) / 1000
}

export const LIMITS: readonly LimitDefinition[] = [
  {
    name: 'limit_sha256',
    unit: 'MB/s',
    description: 'Node sha256 of the big blob from memory, one thread',
    run: async (settings) => {
      const content = new BlobContent(freshSeed(), settings.size)
      const started = performance.now()
      const hash = createHash('sha256')
      for (const slice of content.slices()) hash.update(slice)
      hash.digest()
      return { value: settings.size / MB / seconds(started), extras: {} }
    }
  },
  {
    name: 'limit_disk_fsync',
    unit: 'MB/s',
    description: 'write the big blob to a file in 1 MiB writes, then fsync',
    run: async (settings, dir) => {
      const content = new BlobContent(freshSeed(), settings.size)
      const path = join(dir, 'limit-disk')
      const started = performance.now()
      const file = await open(path, 'w')
      try {
        let position = 0
        for (const slice of content.slices()) {
          await file.write(slice, 0, slice.length, position)
          position += slice.length
        }
        await file.sync()
      } finally {
        await file.close()
      }
      const value = settings.size / MB / seconds(started)
      await rm(path, { force: true })
      return { value, extras: {} }
    }
  },
  {
    name: 'limit_small_file',
    unit: 'files/s',
    description: 'mkdir, write 71 bytes, fsync, rename: how a registry writes a link',
    run: async (_settings, dir) => {
      const root = await mkdtemp(join(dir, 'limit-small-'))
      const count = 200
      const started = performance.now()
      for (let i = 0; i < count; i++) {
        const parent = join(root, String(i), 'link-dir')
        await mkdir(parent, { recursive: true })
        const temp = join(parent, '.tmp')
        const file = await open(temp, 'w')
        await file.writeFile(`sha256:${'0'.repeat(64)}`)
        await file.sync()
        await file.close()
        await rename(temp, join(parent, 'link'))
      }
      const value = count / seconds(started)
      await rm(root, { recursive: true, force: true })
      return { value, extras: {} }
    }
  },
  {
    name: 'limit_loopback_tcp',
    unit: 'MB/s',
    description: 'Node to Node over loopback TCP, two processes, the big blob',
    run: async (settings) => await withBaseline(['tcp-sink'], async (_origin, port) => {
      const content = new BlobContent(freshSeed(), settings.size)
      const started = performance.now()
      const received = await new Promise<number>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1')
        let answer = ''
        socket.setEncoding('utf8').on('data', (text: string) => { answer += text })
        socket.on('end', () => { resolve(Number(answer)) })
        socket.on('error', reject)
        const slices = content.slices()
        const pump = (): void => {
          for (;;) {
            const next = slices.next()
            if (next.done === true) {
              socket.end()
              return
            }
            if (!socket.write(next.value)) {
              socket.once('drain', pump)
              return
            }
          }
        }
        pump()
      })
      check(received === settings.size, `tcp sink received ${received} bytes`)
      return { value: settings.size / MB / seconds(started), extras: {} }
    })
  },
  {
    name: 'limit_fastify',
    unit: 'req/s',
    description: 'a trivial Fastify route, same load as manifest_get',
    run: async (settings) => await withBaseline(['fastify'], async (origin) => {
      const result = await loadFixed(origin, {
        connections: settings.connections,
        durationMs: settings.durationMs,
        request: { method: 'GET', path: '/' },
        check: (response) => { expectStatus(response, 200, 'GET /') }
      })
      return { value: result.perSecond, extras: { 'p50 ms': result.p50Ms, 'p99 ms': result.p99Ms } }
    })
  },
  {
    name: 'limit_upload_server',
    unit: 'MB/s',
    description: 'a minimal Node upload server (hash + write + fsync) taking the big blob',
    run: async (settings, dir) => {
      const uploads = await mkdtemp(join(dir, 'limit-upload-'))
      try {
        return await withBaseline(['upload', uploads], async (origin) => {
          const client = new Client(origin, 1)
          try {
            const content = new BlobContent(freshSeed(), settings.size)
            const digest = content.digest
            const started = performance.now()
            const response = await client.request('PUT', '/upload', { 'content-length': String(content.size) }, Readable.from(content.slices()))
            const value = settings.size / MB / seconds(started)
            expectStatus(response, 201, 'PUT /upload')
            check(header(response, 'docker-content-digest') === digest, 'upload server: wrong digest')
            return { value, extras: {} }
          } finally {
            await client.close()
          }
        })
      } finally {
        await rm(uploads, { recursive: true, force: true })
      }
    }
  }
]
