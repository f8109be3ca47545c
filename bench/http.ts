/**
 * The benchmark's HTTP client: undici's Pool. It is the client behind Node's own fetch, keeps an
 * exact number of keep-alive connections, costs little CPU per request (the load generator shares
 * the two cores with the server it measures), and hands back every response, so each one is
 * checked (status, headers, body) rather than only counted.
 */

import { createHistogram } from 'node:perf_hooks'
import { Pool, type Dispatcher } from 'undici'

export type Headers = Record<string, string>

export interface Response {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

/** A failed correctness check: the case is reported as failed, not as a figure. */
export class CheckError extends Error {
  override name = 'CheckError'
}

export function check (condition: boolean, message: string): asserts condition {
  if (!condition) throw new CheckError(message)
}

export function header (response: Pick<Response, 'headers'>, name: string): string | undefined {
  const value = response.headers[name]
  return Array.isArray(value) ? value[0] : value
}

export function expectStatus (response: Pick<Response, 'status' | 'body'>, status: number, what: string): void {
  if (response.status !== status) {
    throw new CheckError(`${what}: status ${response.status}, expected ${status}: ${response.body?.toString('utf8').slice(0, 200) ?? ''}`)
  }
}

type Body = Dispatcher.DispatchOptions['body']

export class Client {
  readonly pool: Pool

  constructor (readonly origin: string, connections = 64) {
    this.pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 120_000, bodyTimeout: 120_000 })
  }

  /** A request whose response body is read whole. */
  async request (method: Dispatcher.HttpMethod, path: string, headers: Headers = {}, body?: Body): Promise<Response> {
    const response = await this.pool.request({ method, path, headers, body: body ?? null })
    const data = Buffer.from(await response.body.arrayBuffer())
    return { status: response.statusCode, headers: response.headers, body: data }
  }

  /** The path and query of a Location or Link URL (servers may answer absolute URLs). */
  pathOf (location: string | undefined): string {
    check(location !== undefined && location !== '', 'missing Location')
    const url = new URL(location, this.origin)
    return url.pathname + url.search
  }

  async close (): Promise<void> {
    await this.pool.close()
  }
}

/** Appends query parameters to a path that may already have some. */
export function withQuery (path: string, params: Record<string, string>): string {
  const url = new URL(path, 'http://x')
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value)
  return url.pathname + url.search
}

export interface LoadResult {
  requests: number
  seconds: number
  perSecond: number
  p50Ms: number
  p99Ms: number
  maxMs: number
}

/**
 * Runs `connections` loops for `durationMs`, each sending one request, reading and checking its
 * response, then the next. The first failed check fails the whole load.
 */
export async function load (client: Client, options: {
  connections: number
  durationMs: number
  request: Dispatcher.RequestOptions
  check: (response: Response) => void
}): Promise<LoadResult> {
  const histogram = createHistogram()
  const started = performance.now()
  const deadline = started + options.durationMs
  let requests = 0
  const state: { failure?: unknown } = {}
  const loop = async (): Promise<void> => {
    while (state.failure === undefined && performance.now() < deadline) {
      const sent = process.hrtime.bigint()
      const response = await client.pool.request(options.request)
      const body = Buffer.from(await response.body.arrayBuffer())
      histogram.record(Number(process.hrtime.bigint() - sent) || 1)
      options.check({ status: response.statusCode, headers: response.headers, body })
      requests++
    }
  }
  await Promise.all(Array.from({ length: options.connections }, async () => {
    try {
      await loop()
    } catch (error) {
      state.failure ??= error
    }
  }))
  if (state.failure !== undefined) throw state.failure
  const seconds = (performance.now() - started) / 1000
  return {
    requests,
    seconds,
    perSecond: requests / seconds,
    p50Ms: histogram.percentile(50) / 1e6,
    p99Ms: histogram.percentile(99) / 1e6,
    maxMs: histogram.max / 1e6
  }
}
