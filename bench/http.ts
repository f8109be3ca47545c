/**
 * The benchmark's HTTP client for the cases that move bytes or follow links: undici's Pool, the
 * client behind Node's own fetch. It keeps keep-alive connections, streams request bodies from
 * iterables and hands back every response, so each one is checked. The request-rate cases use
 * the leaner loadgen.ts.
 */

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
