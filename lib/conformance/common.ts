/** What every check shares: its context, and the push and pull steps the checks are made of. */

import { headerOf, type ClientRequest, type ClientResponse, type RegistryClient } from '../client/index.js'
import { MediaTypes } from '../manifest/media-types.js'
import type { Blob, Manifest } from './data.js'
import {
  expectBody,
  expectContentType,
  expectEmptyBody,
  expectErrorBody,
  expectHeader,
  expectOptionalHeader,
  expectStatus,
  fail,
  requireHeader,
  Unsupported
} from './expect.js'

export const CATEGORIES = ['pull', 'push', 'discovery', 'management'] as const
export type Category = typeof CATEGORIES[number]

export interface Context {
  client: RegistryClient
  /** The repository most checks use. */
  repo: string
  /** A second repository, for mounts. */
  repo2: string
}

export interface CheckDefinition {
  name: string
  run: (context: Context) => Promise<void>
}

export const OCTET = { 'content-type': 'application/octet-stream' }
export const MANIFEST_ACCEPT = [MediaTypes.ociManifest, MediaTypes.ociIndex, MediaTypes.dockerManifest, MediaTypes.dockerManifestList].join(', ')

export async function send (context: Context, request: ClientRequest): Promise<ClientResponse> {
  return await context.client.send(request)
}

/** The absolute URL of a response's Location, failing when it has none. */
export function locationOf (context: Context, response: ClientResponse): string {
  return context.client.resolve(requireHeader(response, 'location'))
}

export function withQuery (url: string, query: Record<string, string>): string {
  const parsed = new URL(url)
  for (const [key, value] of Object.entries(query)) parsed.searchParams.set(key, value)
  return parsed.toString()
}

function algorithmOf (digest: string): string {
  return digest.slice(0, digest.indexOf(':'))
}

/** POST opening an upload (with `digest-algorithm` for digests other than sha256); its Location. */
export async function startUpload (context: Context, repo: string, digest?: string): Promise<{ location: string, response: ClientResponse }> {
  const algorithm = digest === undefined ? 'sha256' : algorithmOf(digest)
  const response = await send(context, {
    method: 'POST',
    url: context.client.urls.blobUpload(repo, algorithm === 'sha256' ? {} : { 'digest-algorithm': algorithm }),
    headers: { 'content-length': 0 }
  })
  expectStatus(response, 202)
  return { location: locationOf(context, response), response }
}

/** GET of a blob: 200, its bytes, its length, its digest when the header is sent. */
export async function verifyBlob (context: Context, repo: string, item: Blob, url?: string): Promise<void> {
  const response = await send(context, { method: 'GET', url: url ?? context.client.urls.blob(repo, item.digest) })
  expectStatus(response, 200)
  expectBody(response, item.content)
  expectHeader(response, 'content-length', String(item.content.length))
  expectOptionalHeader(response, 'docker-content-digest', item.digest)
}

/** HEAD of a blob: 200, no body, its length, its digest when the header is sent. */
export async function verifyBlobHead (context: Context, repo: string, item: Blob): Promise<void> {
  const response = await send(context, { method: 'HEAD', url: context.client.urls.blob(repo, item.digest) })
  expectStatus(response, 200)
  expectEmptyBody(response)
  expectHeader(response, 'content-length', String(item.content.length))
  expectOptionalHeader(response, 'docker-content-digest', item.digest)
}

/** The 201 closing an upload: Location of the blob (which serves it), digest when sent. */
export async function verifyCreated (context: Context, repo: string, response: ClientResponse, item: Blob): Promise<void> {
  expectStatus(response, 201)
  expectOptionalHeader(response, 'docker-content-digest', item.digest)
  await verifyBlob(context, repo, item, locationOf(context, response))
}

/** Pushes a blob with POST then PUT (what every registry supports) and checks the answer. */
export async function pushBlob (context: Context, repo: string, item: Blob): Promise<void> {
  const { location } = await startUpload(context, repo, item.digest)
  const response = await send(context, {
    method: 'PUT',
    url: withQuery(location, { digest: item.digest }),
    headers: { ...OCTET, 'content-length': item.content.length },
    body: item.content
  })
  expectStatus(response, 201)
  expectOptionalHeader(response, 'docker-content-digest', item.digest)
}

/**
 * PUTs a manifest and checks the answer: 201, the digest when sent, `OCI-Subject` when the
 * manifest has a subject and the registry says it processed it, and a Location serving the
 * exact bytes with their media type.
 */
export async function pushManifest (context: Context, repo: string, reference: string, item: Manifest, query: Record<string, string | string[]> = {}): Promise<ClientResponse> {
  const url = new URL(context.client.urls.manifest(repo, reference))
  for (const [key, value] of Object.entries(query)) {
    for (const one of Array.isArray(value) ? value : [value]) url.searchParams.append(key, one)
  }
  const response = await send(context, { method: 'PUT', url: url.toString(), headers: { 'content-type': item.mediaType }, body: item.content })
  expectStatus(response, 201)
  expectOptionalHeader(response, 'docker-content-digest', item.digest)
  const location = locationOf(context, response)
  const get = await send(context, { method: 'GET', url: location, headers: { accept: MANIFEST_ACCEPT } })
  expectStatus(get, 200)
  expectBody(get, item.content)
  expectContentType(get, item.mediaType)
  return response
}

/** GET of a manifest by tag or digest: 200, exact bytes, media type, length, digest. */
export async function verifyManifest (context: Context, repo: string, reference: string, item: Manifest): Promise<void> {
  const response = await send(context, { method: 'GET', url: context.client.urls.manifest(repo, reference), headers: { accept: MANIFEST_ACCEPT } })
  expectStatus(response, 200)
  expectBody(response, item.content)
  expectContentType(response, item.mediaType)
  expectHeader(response, 'content-length', String(item.content.length))
  expectOptionalHeader(response, 'docker-content-digest', item.digest)
}

/** HEAD of a manifest by tag or digest: 200, no body, media type, length, digest. */
export async function verifyManifestHead (context: Context, repo: string, reference: string, item: Manifest): Promise<void> {
  const response = await send(context, { method: 'HEAD', url: context.client.urls.manifest(repo, reference), headers: { accept: MANIFEST_ACCEPT } })
  expectStatus(response, 200)
  expectEmptyBody(response)
  expectContentType(response, item.mediaType)
  expectHeader(response, 'content-length', String(item.content.length))
  expectOptionalHeader(response, 'docker-content-digest', item.digest)
}

/** A 404 answer, with the spec's error body when it has one. */
export function expectNotFound (response: ClientResponse, codes?: string[]): void {
  expectStatus(response, 404)
  expectErrorBody(response, codes)
}

/**
 * A delete: 202, or the spec's refusal of deletes (405, or 400 with UNSUPPORTED), reported as
 * unsupported. 404 counts as done when `missingIsDone`.
 */
export async function deleteResource (context: Context, url: string, missingIsDone = false): Promise<void> {
  const response = await send(context, { method: 'DELETE', url })
  if (response.status === 202 || (missingIsDone && response.status === 404)) return
  if (response.status === 405 || (response.status === 400 && headerOf(response.headers, 'content-type')?.includes('json') === true && response.body.toString('utf8').includes('UNSUPPORTED'))) {
    throw new Unsupported(`the registry does not delete (${response.status})`)
  }
  fail(`expected status 202, or 405 when deletes are not supported, got ${response.status} ${response.body.toString('utf8').slice(0, 200)}`)
}

/**
 * Teardown: deletes manifests then blobs, accepting what a registry that does not delete
 * answers; what it says it deleted must be gone at once (HEAD is 404).
 */
export async function cleanUp (context: Context, repo: string, manifests: Manifest[], blobs: Blob[]): Promise<void> {
  for (const item of [...manifests].reverse()) {
    const url = context.client.urls.manifest(repo, item.digest)
    const response = await send(context, { method: 'DELETE', url })
    expectStatus(response, 202, 404, 405, 400)
    if (response.status === 202) expectStatus(await send(context, { method: 'HEAD', url, headers: { accept: MANIFEST_ACCEPT } }), 404)
  }
  for (const item of blobs) {
    const url = context.client.urls.blob(repo, item.digest)
    const response = await send(context, { method: 'DELETE', url })
    expectStatus(response, 202, 404, 405, 400)
    if (response.status === 202) expectStatus(await send(context, { method: 'HEAD', url }), 404)
  }
}
