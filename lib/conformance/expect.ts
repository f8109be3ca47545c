/**
 * What a conformance check asserts about a response. A failed assertion throws CheckFailure
 * with a sentence saying what was expected and what came; a registry declining an optional
 * feature the way the spec allows throws Unsupported.
 */

import { createHash } from 'node:crypto'
import { headerOf, type ClientResponse } from '../client/index.js'
import { errorDescriptor } from '../errors.js'

export class CheckFailure extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'CheckFailure'
  }
}

/** The registry declined an optional operation as the spec lets it (e.g. 405 on deletes). */
export class Unsupported extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'Unsupported'
  }
}

function describe (response: ClientResponse): string {
  return `${response.status}${errorCodes(response).length > 0 ? ` ${errorCodes(response).join(', ')}` : ''}`
}

export function fail (message: string): never {
  throw new CheckFailure(message)
}

export function expectStatus (response: ClientResponse, ...statuses: number[]): void {
  if (!statuses.includes(response.status)) {
    fail(`expected status ${statuses.join(' or ')}, got ${describe(response)}`)
  }
}

/** The value of a header, failing when it is absent. */
export function requireHeader (response: ClientResponse, name: string): string {
  const value = headerOf(response.headers, name)
  if (value === undefined || value === '') fail(`expected a ${name} header, got none`)
  return value
}

export function expectHeader (response: ClientResponse, name: string, ...expected: string[]): void {
  const value = headerOf(response.headers, name)
  if (value === undefined || !expected.includes(value)) {
    fail(`expected ${name}: ${expected.join(' or ')}, got ${value === undefined ? 'no such header' : value}`)
  }
}

/** A header that may be absent, but must have this value when present. */
export function expectOptionalHeader (response: ClientResponse, name: string, expected: string): void {
  const value = headerOf(response.headers, name)
  if (value !== undefined && value !== expected) fail(`expected ${name}: ${expected} when present, got ${value}`)
}

/** The media type of Content-Type, parameters aside (the spec asks clients to ignore them). */
export function expectContentType (response: ClientResponse, mediaType: string): void {
  const value = headerOf(response.headers, 'content-type')?.split(';')[0]?.trim()
  if (value !== mediaType) fail(`expected Content-Type ${mediaType}, got ${value ?? 'none'}`)
}

function sha256 (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16)
}

export function expectBody (response: ClientResponse, expected: Uint8Array): void {
  if (!response.body.equals(expected)) {
    fail(`expected a body of ${expected.byteLength} bytes (sha256 ${sha256(expected)}...), got ${response.body.byteLength} bytes (sha256 ${sha256(response.body)}...)`)
  }
}

export function expectEmptyBody (response: ClientResponse): void {
  if (response.body.byteLength !== 0) fail(`expected no body, got ${response.body.byteLength} bytes`)
}

/** The codes of a spec error body; empty when the body is not one. */
export function errorCodes (response: ClientResponse): string[] {
  try {
    const body = JSON.parse(response.body.toString('utf8')) as { errors?: Array<{ code?: unknown }> }
    return Array.isArray(body.errors) ? body.errors.map((error) => String(error.code)) : []
  } catch {
    return []
  }
}

/**
 * For an error answer: when it has a body, it is the spec's `{"errors":[...]}` with a code
 * the spec defines, and (when given) one of `codes`.
 */
export function expectErrorBody (response: ClientResponse, codes?: string[]): void {
  if (response.body.byteLength === 0) return
  const found = errorCodes(response)
  if (found.length === 0) fail(`expected the spec's error body {"errors":[...]}, got ${response.body.toString('utf8').slice(0, 200)}`)
  const unknown = found.filter((code) => errorDescriptor(code) === undefined)
  if (unknown.length > 0) fail(`error codes ${unknown.join(', ')} are not codes of the spec`)
  if (codes !== undefined && !codes.includes(found[0] as string)) fail(`expected error code ${codes.join(' or ')}, got ${found.join(', ')}`)
}

export function expectEqual<T> (actual: T, expected: T, what: string): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    fail(`expected ${what} to be ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`)
  }
}

export function expectTrue (condition: boolean, message: string): void {
  if (!condition) fail(message)
}

/** Parses a JSON body, failing with the start of the body when it is not JSON. */
export function jsonOf<T> (response: ClientResponse): T {
  try {
    return JSON.parse(response.body.toString('utf8')) as T
  } catch {
    return fail(`expected a JSON body, got ${response.body.toString('utf8').slice(0, 200)}`)
  }
}
