/**
 * The client's transport: one HTTP exchange over node:http(s), with the body given as bytes or
 * a stream and the response read whole or streamed. Every exchange can be recorded (method,
 * URL, headers, the start of each body) so that a failed check can show what was said.
 */

import { RegistryClientError } from './errors.js'
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import https from 'node:https'
import { Readable } from 'node:stream'
import type { HttpMethod } from '../routes.js'

export type RequestBody = Uint8Array | string | Readable | AsyncIterable<Uint8Array>

export type HeaderValues = Record<string, string | number | readonly string[] | undefined>

export interface ClientRequest {
  method: HttpMethod
  /** An absolute URL, or a path with its query resolved against the registry's base URL. */
  url: string
  headers?: HeaderValues
  body?: RequestBody
}

export interface ClientResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  /** The absolute URL that was requested. */
  url: string
}

export interface StreamedResponse {
  status: number
  headers: IncomingHttpHeaders
  body: IncomingMessage
  url: string
}

/** How much of each body a recorded exchange keeps. */
export const PREVIEW_BYTES = 1024

export interface RecordedMessage {
  headers: Record<string, string | string[]>
  /** Body size in bytes, when known. */
  bodyLength?: number
  /** The start of the body: text when it is printable, else a note. */
  bodyPreview?: string
}

export interface Exchange {
  request: RecordedMessage & { method: HttpMethod, url: string }
  response?: RecordedMessage & { status: number }
  /** A transport error (connection refused, reset) instead of a response. */
  error?: string
}

/** The value of a response header, joined when repeated; undefined when absent. */
export function headerOf (headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()]
  if (value === undefined) return undefined
  return Array.isArray(value) ? value.join(', ') : value
}

function preview (bytes: Uint8Array): string {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, PREVIEW_BYTES))
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x08\x0e-\x1f]/.test(head.toString('latin1'))) return `(${bytes.byteLength} bytes of binary data)`
  const text = head.toString('utf8')
  return bytes.byteLength > PREVIEW_BYTES ? `${text}... (${bytes.byteLength} bytes)` : text
}

/** Credentials never appear in a record. */
function recordHeaders (headers: Record<string, string | number | readonly string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue
    if (name.toLowerCase() === 'authorization') out[name] = `${String(value).split(' ')[0] ?? ''} (redacted)`
    else out[name] = Array.isArray(value) ? value.map(String) : String(value)
  }
  return out
}

function isBytes (body: RequestBody | undefined): body is Uint8Array | string {
  return typeof body === 'string' || body instanceof Uint8Array
}

/** The bytes of a body given as bytes; undefined for a stream (it cannot be sent twice). */
export function replayableBody (body: RequestBody | undefined): Uint8Array | undefined {
  if (body === undefined) return new Uint8Array(0)
  if (typeof body === 'string') return Buffer.from(body)
  if (body instanceof Uint8Array) return body
  return undefined
}

export interface TransportOptions {
  /** Milliseconds without any activity on the socket before the request fails. */
  timeoutMs: number
  userAgent: string
  onExchange?: (exchange: Exchange) => void
}

/**
 * Sends one request and returns the response with its body still to read. Records the
 * exchange once the response body has been read (by `readBody`) or, for streams, at once.
 */
export async function openRequest (request: ClientRequest & { url: string }, options: TransportOptions): Promise<StreamedResponse> {
  const url = new URL(request.url)
  const headers: Record<string, string | number | string[]> = { 'user-agent': options.userAgent }
  for (const [name, value] of Object.entries(request.headers ?? {})) {
    if (value !== undefined) headers[name.toLowerCase()] = typeof value === 'string' || typeof value === 'number' ? value : [...value]
  }
  const bytes = isBytes(request.body) ? Buffer.from(request.body) : undefined
  if (bytes !== undefined && headers['content-length'] === undefined) headers['content-length'] = bytes.byteLength
  const exchange: Exchange = {
    request: {
      method: request.method,
      url: url.toString(),
      headers: recordHeaders(headers),
      ...(bytes === undefined ? {} : { bodyLength: bytes.byteLength, ...(bytes.byteLength > 0 ? { bodyPreview: preview(bytes) } : {}) })
    }
  }
  const transport = url.protocol === 'https:' ? https : http
  return await new Promise<StreamedResponse>((resolve, reject) => {
    const outgoing = transport.request(url, { method: request.method, headers, agent: false }, (response) => {
      exchange.response = { status: response.statusCode ?? 0, headers: recordHeaders(response.headers) }
      responseExchanges.set(response, { exchange, options })
      resolve({ status: response.statusCode ?? 0, headers: response.headers, body: response, url: url.toString() })
    })
    outgoing.setTimeout(options.timeoutMs, () => {
      outgoing.destroy(new RegistryClientError('TIMEOUT', `no answer from ${url.host} within ${options.timeoutMs} ms`, url.toString()))
    })
    outgoing.on('error', (error) => {
      exchange.error = error.message
      options.onExchange?.(exchange)
      reject(error)
    })
    if (request.body === undefined || bytes !== undefined) {
      outgoing.end(bytes)
      return
    }
    const source = request.body instanceof Readable ? request.body : Readable.from(request.body)
    source.on('error', (error) => outgoing.destroy(error))
    source.pipe(outgoing)
  })
}

const responseExchanges = new WeakMap<IncomingMessage, { exchange: Exchange, options: TransportOptions }>()

/** Reads a response body whole and records the exchange. */
export async function readBody (response: StreamedResponse): Promise<ClientResponse> {
  const chunks: Buffer[] = []
  for await (const chunk of response.body) chunks.push(chunk as Buffer)
  const body = Buffer.concat(chunks)
  finishRecord(response.body, body)
  return { status: response.status, headers: response.headers, body, url: response.url }
}

/** Records the exchange of a streamed response (its body is not previewed). */
export function recordStreamed (response: StreamedResponse): void {
  finishRecord(response.body, undefined)
}

function finishRecord (message: IncomingMessage, body: Buffer | undefined): void {
  const entry = responseExchanges.get(message)
  if (entry === undefined) return
  responseExchanges.delete(message)
  const recorded = entry.exchange.response
  if (recorded !== undefined && body !== undefined) {
    recorded.bodyLength = body.byteLength
    if (body.byteLength > 0) recorded.bodyPreview = preview(body)
  }
  entry.options.onExchange?.(entry.exchange)
}

/** An exchange as text: request line, headers, body preview, then the same for the response. */
export function formatExchange (exchange: Exchange): string {
  const lines: string[] = [`> ${exchange.request.method} ${exchange.request.url}`]
  const headerLines = (prefix: string, headers: Record<string, string | string[]>): void => {
    for (const [name, value] of Object.entries(headers)) {
      for (const item of Array.isArray(value) ? value : [value]) lines.push(`${prefix} ${name}: ${item}`)
    }
  }
  headerLines('>', exchange.request.headers)
  if (exchange.request.bodyPreview !== undefined) lines.push(`> (body) ${exchange.request.bodyPreview}`)
  if (exchange.error !== undefined) lines.push(`! ${exchange.error}`)
  if (exchange.response !== undefined) {
    lines.push(`< ${exchange.response.status}`)
    headerLines('<', exchange.response.headers)
    if (exchange.response.bodyPreview !== undefined) lines.push(`< (body) ${exchange.response.bodyPreview}`)
  }
  return lines.join('\n')
}
