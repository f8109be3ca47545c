/**
 * What every answer to a hostile request must satisfy, the fixture the requests aim at, a hash
 * of the storage tree, and the list of violations known today (each naming its issue item).
 */

import { createHash } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { StorageDriver } from '../../lib/storage/driver.js'
import { errorDescriptors } from '../../lib/errors.js'
import { matchRoute, type HttpMethod, type RouteMatch } from '../../lib/routes.js'
import { prepareImage, putManifest, urls } from '../helpers.js'
import { FIXTURE, type GeneratedRequest } from './corpus.js'

/** Runs of the generated corpus per storage driver; raise it to search longer. */
export const RUNS = Number(process.env.ROBUSTNESS_RUNS ?? 300)
/** The seed of the corpus: the same seed sends the same requests. */
export const SEED = Number(process.env.ROBUSTNESS_SEED ?? 16)
/** Longest wait for one answer before the request counts as a hang. */
export const DEADLINE_MS = Number(process.env.ROBUSTNESS_DEADLINE_MS ?? 5000)

/** A hash of every path and file content in the driver's tree. */
export async function storageHash (driver: StorageDriver): Promise<string> {
  const hash = createHash('sha256')
  try {
    for await (const info of driver.walk('/')) {
      hash.update(`${info.path}\0${info.isDir ? 'dir' : 'file'}\0`)
      if (!info.isDir) hash.update(await driver.getContent(info.path))
      hash.update('\0')
    }
  } catch (error) {
    if ((error as Error).name !== 'PathNotFoundError') throw error
  }
  return hash.digest('hex')
}

/** A repository with a blob, a tagged manifest and an open upload, restored after every change. */
export class Fixture {
  readonly name = 'robust/app'
  readonly tag = 'latest'
  blob = ''
  manifest = ''
  upload = ''
  private manifestBytes: Buffer = Buffer.alloc(0)

  constructor (private readonly app: FastifyInstance) {}

  async ensure (): Promise<void> {
    const head = async (url: string): Promise<number> => (await this.app.inject({ method: 'HEAD', url })).statusCode
    if (this.blob === '' || await head(urls.blob(this.name, this.blob)) !== 200 ||
        await head(urls.manifest(this.name, this.tag)) !== 200 || await head(urls.manifest(this.name, this.manifest)) !== 200) {
      const image = await prepareImage(this.app, this.name, { seed: 'robustness' })
      const put = await putManifest(this.app, this.name, this.tag, image.manifest)
      if (put.statusCode !== 201) throw new Error(`fixture manifest: ${put.statusCode} ${put.body}`)
      this.blob = image.config
      this.manifest = image.digest
      this.manifestBytes = image.manifest
    }
    if (this.upload === '' || (await this.app.inject({ url: urls.blobUploadChunk(this.name, this.upload) })).statusCode !== 204) {
      const started = await this.app.inject({ method: 'POST', url: urls.blobUpload(this.name) })
      const id = started.headers['docker-upload-uuid']
      if (started.statusCode !== 202 || typeof id !== 'string') throw new Error(`fixture upload: ${started.statusCode} ${started.body}`)
      this.upload = id
    }
  }

  /** The request with its placeholders replaced by what the fixture holds now. */
  resolve (request: GeneratedRequest): GeneratedRequest {
    const fill = (text: string): string => text
      .replaceAll(FIXTURE.name, this.name).replaceAll(FIXTURE.blob, this.blob).replaceAll(FIXTURE.manifest, this.manifest)
      .replaceAll(FIXTURE.tag, this.tag).replaceAll(FIXTURE.upload, this.upload)
    const headers: Record<string, string> = {}
    for (const [key, value] of Object.entries(request.headers)) headers[key] = fill(value)
    const body = request.body === undefined || request.body.indexOf('@') < 0 ? request.body : Buffer.from(fill(request.body.toString('latin1')), 'latin1')
    return { ...request, url: fill(request.url), headers, ...(body === undefined ? {} : { body }) }
  }

  get size (): number { return this.manifestBytes.length }
}

export interface Answer {
  statusCode: number
  headers: Record<string, string | string[] | number | undefined>
  body: string
}

/**
 * The path a URL reaches the server with through `app.inject`, which resolves dot segments
 * (`.`, `..`, `%2e`) the way a browser does; the socket tests send them raw.
 */
export function effectivePath (url: string): string {
  return new URL(url.split('?')[0] ?? '', 'http://localhost').pathname
}

/** The route the path of a URL resolves to, as the registry sees it (undefined: none, or a bad name). */
export function routeOf (url: string): RouteMatch | undefined {
  const path = effectivePath(url)
  if (!path.startsWith('/v2/')) return undefined
  try {
    return matchRoute(path.slice('/v2/'.length))
  } catch {
    return undefined
  }
}

const KNOWN_CODES = new Set(errorDescriptors().map((descriptor) => descriptor.code))
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'QUERY', 'SEARCH'])

/** Host header grammar of RFC 9110 (uri-host [":" port]): reg-name, IPv4 or an IP literal. */
const VALID_HOST = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*(?::[0-9]*)?$|^\[[0-9A-Fa-f:.]+\](?::[0-9]*)?$/

/** Traces and server paths an answer must never show. */
function leaks (text: string, serverPaths: string[]): string | undefined {
  if (/\n\s+at /.test(text) || /\bat [\w.<>]+ \(/.test(text)) return 'a stack trace'
  if (/node:internal|file:\/\/|\.[cm]?[jt]s:\d+/.test(text)) return 'a source location'
  for (const path of serverPaths) if (path !== '' && text.includes(path)) return 'a server path'
  return undefined
}

/**
 * Every way an answer breaks the rules of the house, as short stable labels (the first word
 * names the rule) so that one bug reads as one group however many requests hit it.
 */
export function violations (request: GeneratedRequest, answer: Answer | 'hang', storageChanged: boolean, serverPaths: string[]): string[] {
  if (answer === 'hang') return [`hang: no answer within ${DEADLINE_MS} ms`]
  const found: string[] = []
  const status = answer.statusCode
  const match = routeOf(request.url)
  const descriptor = match?.route.methods[request.method as HttpMethod]
  const where = `${request.method} ${match?.route.name ?? 'no route'}`
  if (status >= 500) found.push(`5xx: ${where} answered ${status}`)
  if (status < 400) {
    const documented = descriptor?.responses.map((response) => response.status) ?? []
    // RFC 9110: any GET or HEAD with a condition may be answered 304 (blobs and manifests carry an ETag).
    const conditional = request.headers['if-none-match'] !== undefined || request.headers['if-modified-since'] !== undefined
    if (conditional && descriptor !== undefined && (request.method === 'GET' || request.method === 'HEAD')) documented.push(304)
    if (!documented.includes(status)) found.push(`undocumented: ${where} answered ${status}`)
  }
  // A dot segment (`..`, `%2e%2e`) can take an injected URL out of `/v2/`: the host's answer then.
  const insideRegistry = /^\/v2(\/|$)/.test(effectivePath(request.url))
  if (status >= 400 && request.method !== 'HEAD' && insideRegistry) {
    let body: unknown
    try {
      body = JSON.parse(answer.body)
    } catch {
      body = undefined
    }
    const errors = (body as { errors?: unknown } | undefined)?.errors
    const wellFormed = Array.isArray(errors) && errors.length > 0 && errors.every((error: { code?: unknown, message?: unknown }) =>
      typeof error?.code === 'string' && KNOWN_CODES.has(error.code) && typeof error.message === 'string')
    if (!wellFormed) found.push(`body: ${where} ${status} without the spec's error body`)
    else if (!String(answer.headers['content-type']).startsWith('application/json')) found.push(`body: ${where} ${status} error body not typed application/json`)
  }
  const leak = leaks(answer.body, serverPaths) ?? leaks(JSON.stringify(answer.headers), serverPaths)
  if (leak !== undefined) found.push(`leak: ${where} ${status} shows ${leak}`)
  if (storageChanged && (status >= 400 || SAFE_METHODS.has(request.method))) found.push(`storage: ${where} ${status} changed storage`)
  const host = request.headers.host
  if (host !== undefined && !VALID_HOST.test(host)) {
    for (const name of ['location', 'link', 'www-authenticate']) {
      const value = answer.headers[name]
      if (typeof value === 'string' && value.includes(host)) found.push(`host: an invalid Host is reflected in ${name}`)
    }
  }
  return found
}

export interface KnownFailure {
  /** The issue item that tracks it and the branch its fix is on. */
  issue: string
  description: string
  matches: (request: GeneratedRequest, violation: string) => boolean
}

/**
 * Violations known today, each tracked by an issue item. They are reported as TODO (never
 * skipped), and an entry no run sees says so. Anything not listed here fails the suite.
 * Issue 16's items are all fixed: the list is empty until a run finds something new.
 */
export const KNOWN_FAILURES: KnownFailure[] = []

export function knownFailure (request: GeneratedRequest, violation: string): KnownFailure | undefined {
  return KNOWN_FAILURES.find((known) => known.matches(request, violation))
}

/** A request as text short enough for a test report. */
export function describeRequest (request: GeneratedRequest): string {
  const url = request.url.length > 200 ? `${request.url.slice(0, 200)}…(${request.url.length} chars)` : request.url
  const headers = Object.entries(request.headers).map(([key, value]) => `${key}: ${value.length > 80 ? `${value.slice(0, 80)}…` : value}`)
  const body = request.body === undefined ? '' : ` body(${request.body.length} bytes): ${JSON.stringify(request.body.subarray(0, 160).toString('latin1'))}`
  return `${request.method} ${url} [${headers.join('; ')}]${body}`
}
