/**
 * The load generator of the request-rate cases: keep-alive HTTP/1.1 connections, each sending one
 * fixed request, reading and checking the answer, then sending the next, until the time is up.
 *
 * Why not a library: the client shares the machine's two cores with the server it measures, so
 * its cost per request bounds the figures. Measured here against a trivial Fastify route, undici's
 * Pool spends about 27 µs of CPU per request and autocannon about 14 µs, and autocannon cannot
 * load HEAD (its parser waits for the body a HEAD answer announces but never sends). This client
 * writes a prebuilt request and parses only the status line and headers, a few µs per request,
 * and still checks every response (status, headers, body). It needs a Content-Length on answers
 * with a body, which both servers send for manifests and blobs.
 */

import { connect, type Socket } from 'node:net'
import { createHistogram } from 'node:perf_hooks'
import type { LoadResult, Response } from './http.js'

export interface FixedRequest {
  method: 'GET' | 'HEAD'
  path: string
  headers?: Record<string, string>
}

export interface LoadOptions {
  connections: number
  durationMs: number
  request: FixedRequest
  /** Throws when a response is wrong; the first failure stops the load and is rethrown. */
  check: (response: Response) => void
}

const HEADER_END = Buffer.from('\r\n\r\n')

function parseHead (head: string): { status: number, headers: Record<string, string> } {
  const lines = head.split('\r\n')
  const statusLine = lines[0] ?? ''
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]
  if (status === undefined) throw new Error(`load: bad status line "${statusLine.slice(0, 80)}"`)
  const headers: Record<string, string> = {}
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string
    const colon = line.indexOf(':')
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { status: Number(status), headers }
}

export async function loadFixed (origin: string, options: LoadOptions): Promise<LoadResult> {
  const { hostname, port } = new URL(origin)
  const { method, path, headers = {} } = options.request
  const request = Buffer.from(`${method} ${path} HTTP/1.1\r\nhost: ${hostname}:${port}\r\n` +
    Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('') + '\r\n', 'latin1')
  const histogram = createHistogram()
  const started = performance.now()
  const deadline = started + options.durationMs
  const state: { failure?: unknown, requests: number } = { requests: 0 }
  const sockets: Socket[] = []

  const run = async (): Promise<void> => await new Promise<void>((resolve, reject) => {
    const socket = connect(Number(port), hostname)
    sockets.push(socket)
    socket.setNoDelay(true)
    let pending: Buffer | undefined
    let sentAt = 0n
    let done = false
    const finish = (error?: unknown): void => {
      if (done) return
      done = true
      socket.destroy()
      if (error === undefined) resolve()
      else reject(error)
    }
    const send = (): void => {
      sentAt = process.hrtime.bigint()
      socket.write(request)
    }
    socket.on('connect', send)
    socket.on('data', (chunk: Buffer) => {
      const data = pending === undefined ? chunk : Buffer.concat([pending, chunk])
      const headerEnd = data.indexOf(HEADER_END)
      if (headerEnd === -1) {
        pending = data
        return
      }
      try {
        const { status, headers } = parseHead(data.toString('latin1', 0, headerEnd))
        if (method !== 'HEAD' && headers['content-length'] === undefined) throw new Error('load: an answer without Content-Length')
        const length = method === 'HEAD' ? 0 : Number(headers['content-length'])
        const end = headerEnd + HEADER_END.length + length
        if (data.length < end) {
          pending = data
          return
        }
        if (data.length > end) throw new Error('load: bytes after the answer (no request was pipelined)')
        pending = undefined
        histogram.record(Number(process.hrtime.bigint() - sentAt) || 1)
        options.check({ status, headers, body: data.subarray(end - length, end) })
        state.requests++
        if (headers.connection === 'close') throw new Error('load: the server closed the connection')
        if (state.failure === undefined && performance.now() < deadline) send()
        else finish()
      } catch (error) {
        state.failure ??= error
        finish(error)
      }
    })
    socket.on('error', (error) => { finish(error) })
    socket.on('close', () => { finish(new Error('load: connection closed by the server')) })
  })

  try {
    await Promise.all(Array.from({ length: options.connections }, async () => {
      try {
        await run()
      } catch (error) {
        state.failure ??= error
      }
    }))
  } finally {
    for (const socket of sockets) socket.destroy()
  }
  if (state.failure !== undefined) throw state.failure
  const seconds = (performance.now() - started) / 1000
  return {
    requests: state.requests,
    seconds,
    perSecond: state.requests / seconds,
    p50Ms: histogram.percentile(50) / 1e6,
    p99Ms: histogram.percentile(99) / 1e6,
    maxMs: histogram.max / 1e6
  }
}
