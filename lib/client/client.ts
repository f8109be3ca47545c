/**
 * A typed registry client on the same definitions as the server: URLs from the URL builder,
 * errors parsed back into RegistryErrors by the error registry. `send` is the raw exchange (any
 * method, URL, headers and body, as a conformance check needs); the other methods are the
 * operations of the API, throwing the registry's error when it refuses.
 */

import type { Readable } from 'node:stream'
import { RegistryError, fromErrorBody, isRegistryError, type ErrorCode } from '../errors.js'
import { digestOf, Digester, type Algorithm } from '../digest.js'
import { UrlBuilder } from '../urls.js'
import { MediaTypes, baseMediaType } from '../manifest/media-types.js'
import { parseDescriptor, type Descriptor } from '../manifest/parse.js'
import { RegistryClientError, transportError } from './errors.js'
import { basicAuthorization, parseChallenge, tokenOf } from './auth.js'
import {
  headerOf,
  openRequest,
  readBody,
  recordStreamed,
  replayableBody,
  type ClientRequest,
  type ClientResponse,
  type Exchange,
  type StreamedResponse,
  type TransportOptions
} from './http.js'

export interface RegistryClientOptions {
  /** Base URL of the registry, e.g. `http://127.0.0.1:5000` (a path prefix is kept). */
  url: string
  username?: string
  password?: string
  /** Milliseconds of silence before a request fails (default 60 s). */
  timeoutMs?: number
  userAgent?: string
  /** Called with every exchange, including those of authentication. */
  onExchange?: (exchange: Exchange) => void
}

export interface BlobInfo {
  digest: string
  size: number
}

export interface ManifestResponse {
  digest: string
  mediaType: string
  content: Buffer
}

/** The registry's answer to a manifest PUT. */
export interface PushedManifest {
  digest: string
  location: string
  /** `OCI-Subject`, when the registry processed a subject. */
  subject?: string
  /** `OCI-Tag` values, when tags were given as parameters. */
  tags: string[]
}

export interface TagPage {
  name: string
  tags: string[]
  /** URL of the next page (`Link: <...>; rel="next"`), when more remain. */
  next?: string
}

/** The referrers of a subject: their descriptors, and the filters the registry applied. */
export interface ReferrerList {
  manifests: Descriptor[]
  filtersApplied: string[]
}

export type BlobUploadMethod = 'monolithic' | 'post-put' | 'stream' | 'chunked'

export interface PushBlobOptions {
  /** How to upload (default `post-put`, one POST and one PUT, what most clients do). */
  method?: BlobUploadMethod
  /** Chunk size for `chunked` (default: a third of the blob, at least the registry's minimum). */
  chunkSize?: number
  algorithm?: Algorithm
}

const DEFAULT_ACCEPT = [
  MediaTypes.ociManifest,
  MediaTypes.ociIndex,
  MediaTypes.dockerManifest,
  MediaTypes.dockerManifestList
]

const STATUS_CODES: Record<number, ErrorCode> = {
  401: 'UNAUTHORIZED',
  403: 'DENIED',
  405: 'UNSUPPORTED',
  429: 'TOOMANYREQUESTS'
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isStringArray (value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string')
}

/** True for the spec's error body with at least one error. */
function isErrorBody (body: unknown): boolean {
  return isObject(body) && Array.isArray(body.errors) && body.errors.length > 0
}

function hasErrorBody (response: ClientResponse): boolean {
  try {
    return isErrorBody(JSON.parse(response.body.toString('utf8')))
  } catch {
    return false
  }
}

/** The `mediaType` a manifest declares; undefined when it is not JSON (the registry then refuses it). */
function declaredMediaType (content: Uint8Array): string | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(content).toString('utf8'))
    return isObject(value) && typeof value.mediaType === 'string' ? value.mediaType : undefined
  } catch {
    return undefined
  }
}

/** The repository a path names, for caching authorization per repository. */
function scopeKey (url: URL): string {
  const match = /\/v2\/(.+?)\/(?:blobs|manifests|tags|referrers)\//.exec(url.pathname)
  return match?.[1] ?? ''
}

/** The next-page URL of a `Link` header. */
export function nextLink (header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  for (const part of header.split(',')) {
    const match = /<([^>]*)>\s*;\s*rel="?next"?/i.exec(part)
    if (match !== null) return match[1]
  }
  return undefined
}

export class RegistryClient {
  readonly base: string
  readonly urls: UrlBuilder
  private readonly transport: TransportOptions
  private readonly username: string | undefined
  private readonly password: string | undefined
  private readonly authorizations = new Map<string, string>()
  private basicOnly = false

  constructor (options: RegistryClientOptions) {
    this.base = options.url.replace(/\/+$/, '')
    this.urls = new UrlBuilder({ base: this.base })
    this.username = options.username
    this.password = options.password
    this.transport = {
      timeoutMs: options.timeoutMs ?? 60_000,
      userAgent: options.userAgent ?? 'fastify-oci-registry-client',
      ...(options.onExchange === undefined ? {} : { onExchange: options.onExchange })
    }
  }

  /** An absolute URL: `url` as is, or resolved against the registry's base. */
  resolve (url: string): string {
    return new URL(url, `${this.base}/`).toString()
  }

  /** Sends a request and reads the whole response; authenticates when challenged. */
  async send (request: ClientRequest): Promise<ClientResponse> {
    const response = await this.open(request)
    try {
      return await readBody(response)
    } catch (error) {
      throw transportError(error, response.url)
    }
  }

  /** Sends a request and returns the response with its body as a stream. */
  async stream (request: ClientRequest): Promise<StreamedResponse> {
    const response = await this.open(request)
    recordStreamed(response)
    return response
  }

  /**
   * Opens a request; a failed transport becomes a RegistryClientError. A refusal on the way (a
   * token endpoint refusing the credentials) stays the RegistryError it is.
   */
  private async open (request: ClientRequest): Promise<StreamedResponse> {
    const url = this.resolve(request.url)
    try {
      return await this.openAuthorized(request, url)
    } catch (error) {
      if (isRegistryError(error)) throw error
      throw transportError(error, url)
    }
  }

  private async openAuthorized (request: ClientRequest, url: string): Promise<StreamedResponse> {
    const key = scopeKey(new URL(url))
    const withAuth = (authorization: string | undefined): ClientRequest => ({
      ...request,
      url,
      headers: { ...request.headers, ...(authorization === undefined ? {} : { authorization }) }
    })
    const cached = this.authorizations.get(key) ?? this.authorizations.get('*')
    const response = await openRequest(withAuth(cached) as ClientRequest & { url: string }, this.transport)
    if (response.status !== 401 || (this.username === undefined && !this.hasBearerChallenge(response))) return response
    const body = replayableBody(request.body)
    if (body === undefined) return response
    const authorization = await this.authorize(headerOf(response.headers, 'www-authenticate'))
    if (authorization === undefined) return response
    await readBody(response)
    this.authorizations.set(this.basicOnly ? '*' : key, authorization)
    return await openRequest(withAuth(authorization) as ClientRequest & { url: string }, this.transport)
  }

  private hasBearerChallenge (response: StreamedResponse): boolean {
    return parseChallenge(headerOf(response.headers, 'www-authenticate'))?.scheme === 'bearer'
  }

  /** The Authorization header answering a challenge, or undefined when we cannot answer it. */
  private async authorize (header: string | undefined): Promise<string | undefined> {
    const challenge = parseChallenge(header)
    if (challenge === undefined) return undefined
    const basic = this.username === undefined ? undefined : basicAuthorization(this.username, this.password ?? '')
    if (challenge.scheme === 'basic') {
      this.basicOnly = true
      return basic
    }
    if (challenge.scheme !== 'bearer' || challenge.params.realm === undefined) return undefined
    const realm = new URL(challenge.params.realm)
    if (challenge.params.service !== undefined) realm.searchParams.set('service', challenge.params.service)
    for (const scope of (challenge.params.scope ?? '').split(' ')) {
      if (scope !== '') realm.searchParams.append('scope', scope)
    }
    const response = await readBody(await openRequest({
      method: 'GET',
      url: realm.toString(),
      headers: basic === undefined ? {} : { authorization: basic }
    }, this.transport))
    if (response.status !== 200) throw this.errorOf(response, 'UNAUTHORIZED')
    let token: string | undefined
    try {
      token = tokenOf(JSON.parse(response.body.toString('utf8')))
    } catch {
      token = undefined
    }
    if (token === undefined) throw new RegistryError('UNAUTHORIZED', { reason: 'the token endpoint answered without a token' })
    return `Bearer ${token}`
  }

  /** The registry's error for a refused response; `notFound` names a 404 without a body. */
  errorOf (response: ClientResponse, notFound: ErrorCode = 'NAME_UNKNOWN'): RegistryError {
    let body: unknown
    try {
      body = response.body.byteLength === 0 ? undefined : JSON.parse(response.body.toString('utf8'))
    } catch {
      body = undefined
    }
    if (isErrorBody(body)) return fromErrorBody(body, response.status)[0] as RegistryError
    const code = response.status === 404 ? notFound : STATUS_CODES[response.status] ?? 'UNKNOWN'
    return new RegistryError(code, { status: response.status, url: response.url }, { statusCode: response.status })
  }

  private expect (response: ClientResponse, statuses: number[], notFound?: ErrorCode): ClientResponse {
    if (!statuses.includes(response.status)) throw this.errorOf(response, notFound)
    return response
  }

  /**
   * GET /v2/: resolves when the registry speaks the API (and accepts our credentials); a server
   * that answers without `Docker-Distribution-API-Version` is not a registry.
   */
  async ping (): Promise<void> {
    const response = await this.send({ method: 'GET', url: this.urls.apiRoot() })
    // A refusal with the spec's error body is the registry's (a 401 of a proxy in front may lack the header).
    if (headerOf(response.headers, 'docker-distribution-api-version') === undefined && (response.status === 200 || !hasErrorBody(response))) {
      throw new RegistryClientError('NOT_A_REGISTRY', `${response.url} answered ${response.status} without Docker-Distribution-API-Version: not a registry`, response.url)
    }
    this.expect(response, [200])
  }

  /** The JSON body of a successful response; anything else is an INVALID_RESPONSE. */
  private json<T> (response: ClientResponse, isValid: (body: unknown) => boolean): T {
    let body: unknown
    try {
      body = JSON.parse(response.body.toString('utf8'))
    } catch (error) {
      throw new RegistryClientError('INVALID_RESPONSE', `${response.url} answered ${response.status} with a body that is not JSON`, response.url, { cause: error })
    }
    if (!isValid(body)) throw new RegistryClientError('INVALID_RESPONSE', `${response.url} answered ${response.status} with JSON of an unexpected shape`, response.url)
    return body as T
  }

  /** A blob's size, or undefined when the repository does not have it. */
  async headBlob (name: string, digest: string): Promise<BlobInfo | undefined> {
    const response = await this.send({ method: 'HEAD', url: this.urls.blob(name, digest) })
    if (response.status === 404) return undefined
    this.expect(response, [200], 'BLOB_UNKNOWN')
    return { digest, size: Number(headerOf(response.headers, 'content-length')) }
  }

  /** A blob's bytes, verified against its digest. */
  async getBlob (name: string, digest: string): Promise<Buffer> {
    const response = this.expect(await this.send({ method: 'GET', url: this.urls.blob(name, digest) }), [200], 'BLOB_UNKNOWN')
    const algorithm = digest.slice(0, digest.indexOf(':')) as Algorithm
    if (digestOf(response.body, algorithm) !== digest) {
      throw new RegistryError('DIGEST_INVALID', { digest, reason: 'the blob served does not match its digest' })
    }
    return response.body
  }

  /** A blob as a stream (not verified: the caller hashes it as it reads). */
  async openBlob (name: string, digest: string): Promise<Readable> {
    const response = await this.stream({ method: 'GET', url: this.urls.blob(name, digest) })
    if (response.status !== 200) throw this.errorOf(await readBody(response), 'BLOB_UNKNOWN')
    return response.body
  }

  /** Starts an upload; returns its absolute URL and the registry's minimum chunk size. */
  async startUpload (name: string, query: { 'digest-algorithm'?: string } = {}): Promise<{ location: string, minChunk?: number }> {
    const response = this.expect(await this.send({ method: 'POST', url: this.urls.blobUpload(name, query), headers: { 'content-length': 0 } }), [202])
    const location = headerOf(response.headers, 'location')
    if (location === undefined) throw new RegistryError('BLOB_UPLOAD_INVALID', { reason: 'no Location in the answer to POST' })
    const min = Number(headerOf(response.headers, 'oci-chunk-min-length'))
    return { location: this.resolve(location), ...(Number.isSafeInteger(min) && min > 0 ? { minChunk: min } : {}) }
  }

  /** Pushes a blob with the chosen upload method; returns its digest. */
  async pushBlob (name: string, content: Uint8Array, options: PushBlobOptions = {}): Promise<string> {
    const digest = digestOf(content, options.algorithm ?? 'sha256')
    const method = options.method ?? 'post-put'
    if (method === 'monolithic') {
      const response = await this.send({ method: 'POST', url: this.urls.blobUpload(name, { digest }), headers: { 'content-type': 'application/octet-stream' }, body: content })
      if (response.status === 201) return digest
      this.expect(response, [202])
      const location = headerOf(response.headers, 'location') ?? ''
      await this.finishUpload(this.resolve(location), digest, content)
      return digest
    }
    const algorithm = options.algorithm === undefined || options.algorithm === 'sha256' ? {} : { 'digest-algorithm': options.algorithm }
    const upload = await this.startUpload(name, algorithm)
    if (method === 'post-put') {
      await this.finishUpload(upload.location, digest, content)
      return digest
    }
    if (method === 'stream') {
      const location = await this.patch(upload.location, content)
      await this.finishUpload(location, digest)
      return digest
    }
    const chunkSize = Math.max(options.chunkSize ?? Math.ceil(content.byteLength / 3), upload.minChunk ?? 1, 1)
    let location = upload.location
    for (let start = 0; start < content.byteLength; start += chunkSize) {
      const end = Math.min(start + chunkSize, content.byteLength)
      location = await this.patch(location, content.subarray(start, end), start)
    }
    await this.finishUpload(location, digest)
    return digest
  }

  /**
   * Pushes a blob from a stream (POST, one streamed PATCH, PUT), hashing it as it goes; the
   * digest, when given, is checked by the registry. Returns the digest and size.
   */
  async pushBlobStream (name: string, source: AsyncIterable<Uint8Array>, options: { algorithm?: Algorithm } = {}): Promise<BlobInfo> {
    const upload = await this.startUpload(name)
    const digester = new Digester(options.algorithm ?? 'sha256')
    async function * hashed (): AsyncGenerator<Uint8Array> {
      for await (const chunk of source) {
        digester.update(chunk)
        yield chunk
      }
    }
    const location = await this.patch(upload.location, hashed())
    const digest = digester.digest()
    await this.finishUpload(location, digest)
    return { digest, size: digester.size }
  }

  /** Sends a PATCH (with `Content-Range` when `start` is given); returns the next Location. */
  private async patch (location: string, body: Uint8Array | AsyncIterable<Uint8Array>, start?: number): Promise<string> {
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream' }
    if (start !== undefined && body instanceof Uint8Array) {
      headers['content-range'] = `${start}-${start + body.byteLength - 1}`
      headers['content-length'] = body.byteLength
    }
    const response = this.expect(await this.send({ method: 'PATCH', url: location, headers, body }), [202], 'BLOB_UPLOAD_UNKNOWN')
    return this.resolve(headerOf(response.headers, 'location') ?? location)
  }

  /** The PUT closing an upload, with the last bytes when given. */
  private async finishUpload (location: string, digest: string, body?: Uint8Array): Promise<void> {
    const url = new URL(location)
    url.searchParams.set('digest', digest)
    this.expect(await this.send({
      method: 'PUT',
      url: url.toString(),
      headers: { 'content-type': 'application/octet-stream', 'content-length': body?.byteLength ?? 0 },
      ...(body === undefined ? {} : { body })
    }), [201], 'BLOB_UPLOAD_UNKNOWN')
  }

  /** Mounts a blob from another repository; false when the registry started an upload instead. */
  async mountBlob (name: string, digest: string, from?: string): Promise<boolean> {
    const response = await this.send({ method: 'POST', url: this.urls.blobUpload(name, { mount: digest, ...(from === undefined ? {} : { from }) }), headers: { 'content-length': 0 } })
    if (response.status === 201) return true
    this.expect(response, [202])
    const location = headerOf(response.headers, 'location')
    if (location !== undefined) await this.send({ method: 'DELETE', url: location })
    return false
  }

  async deleteBlob (name: string, digest: string): Promise<void> {
    this.expect(await this.send({ method: 'DELETE', url: this.urls.blob(name, digest) }), [202], 'BLOB_UNKNOWN')
  }

  async putManifest (name: string, reference: string, content: Uint8Array, mediaType?: string, options: { tags?: readonly string[] } = {}): Promise<PushedManifest> {
    const type = mediaType ?? declaredMediaType(content) ?? MediaTypes.ociManifest
    const response = this.expect(await this.send({
      method: 'PUT',
      url: this.urls.manifest(name, reference, options.tags === undefined ? undefined : { tag: options.tags }),
      headers: { 'content-type': type },
      body: content
    }), [201], 'MANIFEST_UNKNOWN')
    const subject = headerOf(response.headers, 'oci-subject')
    return {
      digest: headerOf(response.headers, 'docker-content-digest') ?? digestOf(content),
      location: this.resolve(headerOf(response.headers, 'location') ?? this.urls.manifest(name, digestOf(content))),
      ...(subject === undefined ? {} : { subject }),
      tags: (headerOf(response.headers, 'oci-tag') ?? '').split(',').map((tag) => tag.trim()).filter((tag) => tag !== '')
    }
  }

  async getManifest (name: string, reference: string, accept: readonly string[] = DEFAULT_ACCEPT): Promise<ManifestResponse> {
    const response = this.expect(await this.send({ method: 'GET', url: this.urls.manifest(name, reference), headers: { accept: accept.join(', ') } }), [200], 'MANIFEST_UNKNOWN')
    const digest = headerOf(response.headers, 'docker-content-digest') ?? digestOf(response.body)
    if (reference.includes(':') && digestOf(response.body, reference.slice(0, reference.indexOf(':')) as Algorithm) !== reference) {
      throw new RegistryError('DIGEST_INVALID', { digest: reference, reason: 'the manifest served does not match its digest' })
    }
    return { digest, mediaType: baseMediaType(headerOf(response.headers, 'content-type')) ?? '', content: response.body }
  }

  /** A manifest's digest, media type and size, or undefined when it does not exist. */
  async headManifest (name: string, reference: string, accept: readonly string[] = DEFAULT_ACCEPT): Promise<BlobInfo & { mediaType: string } | undefined> {
    const response = await this.send({ method: 'HEAD', url: this.urls.manifest(name, reference), headers: { accept: accept.join(', ') } })
    if (response.status === 404) return undefined
    this.expect(response, [200], 'MANIFEST_UNKNOWN')
    return {
      digest: headerOf(response.headers, 'docker-content-digest') ?? '',
      size: Number(headerOf(response.headers, 'content-length')),
      mediaType: baseMediaType(headerOf(response.headers, 'content-type')) ?? ''
    }
  }

  async deleteManifest (name: string, reference: string): Promise<void> {
    this.expect(await this.send({ method: 'DELETE', url: this.urls.manifest(name, reference) }), [202], 'MANIFEST_UNKNOWN')
  }

  /** One page of tags; pass `next` of the previous page as `url` to continue. */
  async listTags (name: string, query: { n?: number, last?: string, url?: string } = {}): Promise<TagPage> {
    const url = query.url ?? this.urls.tags(name, { ...(query.n === undefined ? {} : { n: query.n }), ...(query.last === undefined ? {} : { last: query.last }) })
    const response = this.expect(await this.send({ method: 'GET', url }), [200])
    const body = this.json<{ name: string, tags: string[] | null }>(response, (value) => isObject(value) && typeof value.name === 'string' && (value.tags === null || isStringArray(value.tags)))
    const next = nextLink(headerOf(response.headers, 'link'))
    return { name: body.name, tags: body.tags ?? [], ...(next === undefined ? {} : { next: this.resolve(next) }) }
  }

  /** Every tag, following `Link` headers. */
  async allTags (name: string, pageSize?: number): Promise<string[]> {
    const tags: string[] = []
    let page = await this.listTags(name, pageSize === undefined ? {} : { n: pageSize })
    tags.push(...page.tags)
    while (page.next !== undefined) {
      page = await this.listTags(name, { url: page.next })
      tags.push(...page.tags)
    }
    return tags
  }

  /** One page of the catalog. */
  async catalog (query: { n?: number, last?: string } = {}): Promise<{ repositories: string[], next?: string }> {
    const response = this.expect(await this.send({ method: 'GET', url: this.urls.catalog(query) }), [200])
    const body = this.json<{ repositories: string[] | null }>(response, (value) => isObject(value) && (value.repositories === null || isStringArray(value.repositories)))
    const next = nextLink(headerOf(response.headers, 'link'))
    return { repositories: body.repositories ?? [], ...(next === undefined ? {} : { next: this.resolve(next) }) }
  }

  /** The referrers index of a subject (every page), and whether the registry applied the filter. */
  async referrers (name: string, digest: string, query: { artifactType?: string } = {}): Promise<ReferrerList> {
    const manifests: Descriptor[] = []
    const filters = new Set<string>()
    let url: string | undefined = this.urls.referrers(name, digest, query)
    while (url !== undefined) {
      const response = this.expect(await this.send({ method: 'GET', url, headers: { accept: MediaTypes.ociIndex } }), [200])
      const body = this.json<{ manifests?: unknown[] }>(response, (value) => isObject(value) && (value.manifests === undefined || Array.isArray(value.manifests)))
      for (const [index, entry] of (body.manifests ?? []).entries()) {
        try {
          manifests.push(parseDescriptor(entry, `manifests[${index}]`))
        } catch (error) {
          throw new RegistryClientError('INVALID_RESPONSE', `${response.url} answered an index whose manifests[${index}] is not a descriptor`, response.url, { cause: error })
        }
      }
      for (const filter of (headerOf(response.headers, 'oci-filters-applied') ?? '').split(',')) {
        if (filter.trim() !== '') filters.add(filter.trim())
      }
      url = nextLink(headerOf(response.headers, 'link'))
    }
    return { manifests, filtersApplied: [...filters] }
  }
}
