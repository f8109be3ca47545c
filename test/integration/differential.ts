/**
 * The differential corpus: requests, good and bad, sent to our registry and to CNCF
 * distribution with the same content in both. Each response is reduced to what the spec pins
 * down (status, error codes, the spec's headers, JSON bodies, the digest of a content body) so
 * that two registries' answers can be compared field by field.
 */

import { createHash } from 'node:crypto'
import { RegistryClient, headerOf, type ClientRequest, type ClientResponse } from '../../lib/client/index.js'

/** A response reduced to comparable fields (absent ones omitted). */
export type Observation = Record<string, string>

/** Headers the spec (or distribution's API description) gives a meaning to. */
const SPEC_HEADERS = [
  'docker-distribution-api-version',
  'docker-content-digest',
  'docker-upload-uuid',
  'location',
  'range',
  'content-range',
  'accept-ranges',
  'etag',
  'link',
  'oci-subject',
  'oci-tag',
  'oci-filters-applied',
  'oci-chunk-min-length',
  'allow'
]

const UUID_PATH = /\/blobs\/uploads\/[^/?]+/

/** A URL as a path and query, the upload id and distribution's `_state` token blanked. */
function normalizeUrl (value: string): string {
  const url = new URL(value, 'http://registry.invalid')
  url.searchParams.delete('_state')
  // Parameter order carries no meaning.
  url.searchParams.sort()
  const query = url.searchParams.toString()
  return url.pathname.replace(UUID_PATH, '/blobs/uploads/<uuid>') + (query === '' ? '' : `?${query}`)
}

export function observe (request: ClientRequest, response: ClientResponse): Observation {
  const observed: Observation = { status: String(response.status) }
  const type = headerOf(response.headers, 'content-type')
  const baseType = type?.split(';')[0]?.trim()
  let json: unknown
  if (baseType !== undefined && /json/.test(baseType) && response.body.byteLength > 0) {
    try {
      json = JSON.parse(response.body.toString('utf8'))
    } catch {
      json = undefined
    }
  }
  if (response.status >= 400) {
    const errors = (json as { errors?: Array<{ code?: unknown }> } | undefined)?.errors
    observed.errors = Array.isArray(errors) && errors.length > 0 ? errors.map((error) => String(error.code)).join(',') : '(none)'
  } else {
    if (baseType !== undefined) observed['content-type'] = baseType
    const length = headerOf(response.headers, 'content-length')
    if (json !== undefined) {
      // JSON is compared parsed: its length depends on whitespace (distribution ends it with a
      // newline). Tags are compared as sets: distribution 2.8.2 lists them in directory order.
      const tags = (json as { tags?: unknown }).tags
      observed.body = JSON.stringify(Array.isArray(tags) ? { ...json, tags: [...tags].sort() } : json)
    } else {
      if (length !== undefined) observed['content-length'] = length
      if (request.method === 'GET' && response.body.byteLength > 0) observed.body = `sha256:${createHash('sha256').update(response.body).digest('hex')}`
    }
  }
  for (const name of SPEC_HEADERS) {
    const value = headerOf(response.headers, name)
    if (value === undefined) continue
    if (name === 'location') observed[name] = normalizeUrl(value)
    else if (name === 'link') observed[name] = value.replace(/<([^>]*)>/, (_, url: string) => `<${normalizeUrl(url)}>`)
    else if (name === 'docker-upload-uuid') observed[name] = '(present)'
    else if (name === 'allow') observed[name] = value.split(',').map((method) => method.trim()).sort().join(', ')
    else observed[name] = value
  }
  return observed
}

/** One step's observations from both registries. */
export interface StepResult {
  check: string
  ours: Observation
  theirs: Observation
}

export interface Difference {
  check: string
  field: string
  ours: string
  theirs: string
}

const ABSENT = '(absent)'

export function differences (results: StepResult[]): Difference[] {
  const found: Difference[] = []
  for (const { check, ours, theirs } of results) {
    // When the outcomes differ, the headers and bodies that go with each outcome differ too.
    const fields = ours.status === theirs.status ? [...new Set([...Object.keys(ours), ...Object.keys(theirs)])] : ['status', 'errors']
    for (const field of fields) {
      const a = ours[field] ?? ABSENT
      const b = theirs[field] ?? ABSENT
      if (a !== b) found.push({ check, field, ours: a, theirs: b })
    }
  }
  return found
}

/** What a scenario is given: a way to send a named request and get the raw response back. */
export interface Probe {
  client: RegistryClient
  send: (check: string, request: ClientRequest) => Promise<ClientResponse>
}

export interface Scenario {
  name: string
  run: (probe: Probe, fixture: Fixture) => Promise<void>
}

function sha256 (bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** Content pushed to both registries before the corpus runs, identical byte for byte. */
export interface Fixture {
  repo: string
  config: Buffer
  configDigest: string
  layer: Buffer
  layerDigest: string
  manifest: Buffer
  manifestDigest: string
  tags: string[]
}

/** Bytes that look random but are the same on every run, so that documented digests stay valid. */
export function seededBytes (seed: string, length: number): Buffer {
  const blocks: Buffer[] = []
  for (let i = 0; blocks.length * 32 < length; i++) blocks.push(createHash('sha256').update(`${seed}/${i}`).digest())
  return Buffer.concat(blocks).subarray(0, length)
}

export function makeFixture (): Fixture {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: {} }))
  const layer = seededBytes('layer', 4096)
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }]
  }))
  return { repo: 'diff/repo', config, configDigest: sha256(config), layer, layerDigest: sha256(layer), manifest, manifestDigest: sha256(manifest), tags: ['latest', 'v1', 'v2'] }
}

export async function pushFixture (client: RegistryClient, fixture: Fixture): Promise<void> {
  await client.pushBlob(fixture.repo, fixture.config)
  await client.pushBlob(fixture.repo, fixture.layer)
  for (const tag of fixture.tags) await client.putManifest(fixture.repo, tag, fixture.manifest)
}

const octet = { 'content-type': 'application/octet-stream' }
const ociManifest = 'application/vnd.oci.image.manifest.v1+json'
const unknownDigest = sha256(Buffer.from('nothing has this digest'))

function withQuery (location: string, query: Record<string, string>): string {
  const url = new URL(location)
  for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value)
  return url.toString()
}

/** Starts an upload and returns its Location (with distribution's state token, as given). */
async function startUpload (probe: Probe, check: string, repo: string): Promise<string> {
  const response = await probe.send(check, { method: 'POST', url: `/v2/${repo}/blobs/uploads/`, headers: { 'content-length': 0 } })
  return probe.client.resolve(headerOf(response.headers, 'location') ?? '')
}

function manifestOf (fixture: Fixture, change: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify({ ...JSON.parse(fixture.manifest.toString('utf8')) as object, ...change }))
}

/** The corpus. Scenarios that write use their own repositories so that they cannot disturb the others. */
export const corpus: Scenario[] = [
  {
    name: 'base and routing',
    run: async (probe) => {
      await probe.send('GET /v2/', { method: 'GET', url: '/v2/' })
      await probe.send('GET /v2 (no trailing slash)', { method: 'GET', url: '/v2' })
      await probe.send('GET /v2/ unknown single-segment path', { method: 'GET', url: '/v2/nothing-here' })
      await probe.send('PATCH a manifest (method not allowed)', { method: 'PATCH', url: '/v2/diff/repo/manifests/v1' })
      await probe.send('GET referrers', { method: 'GET', url: `/v2/diff/repo/referrers/${unknownDigest}` })
    }
  },
  {
    name: 'repository names',
    run: async (probe) => {
      await probe.send('tags of an upper-case name', { method: 'GET', url: '/v2/Diff/Repo/tags/list' })
      await probe.send('tags of a name with an empty component', { method: 'GET', url: '/v2/diff//repo/tags/list' })
      await probe.send('tags of a name ending in a separator', { method: 'GET', url: '/v2/diff/repo-/tags/list' })
      await probe.send('tags of a 256-character name', { method: 'GET', url: `/v2/${'a'.repeat(256)}/tags/list` })
      await probe.send('tags of an unknown repository', { method: 'GET', url: '/v2/diff/unknown/tags/list' })
      await probe.send('upload to an upper-case name', { method: 'POST', url: '/v2/Diff/Upper/blobs/uploads/' })
    }
  },
  {
    name: 'tags and catalog',
    run: async (probe, fixture) => {
      await probe.send('tags list', { method: 'GET', url: `/v2/${fixture.repo}/tags/list` })
      await probe.send('tags list n=1', { method: 'GET', url: `/v2/${fixture.repo}/tags/list?n=1` })
      await probe.send('tags list n=1 last=latest', { method: 'GET', url: `/v2/${fixture.repo}/tags/list?n=1&last=latest` })
      await probe.send('tags list last=v1', { method: 'GET', url: `/v2/${fixture.repo}/tags/list?last=v1` })
      await probe.send('tags list n=0', { method: 'GET', url: `/v2/${fixture.repo}/tags/list?n=0` })
      await probe.send('tags list n=abc', { method: 'GET', url: `/v2/${fixture.repo}/tags/list?n=abc` })
      await probe.send('catalog', { method: 'GET', url: '/v2/_catalog' })
      await probe.send('catalog n=1', { method: 'GET', url: '/v2/_catalog?n=1' })
      await probe.send('catalog n=abc', { method: 'GET', url: '/v2/_catalog?n=abc' })
      await probe.send('catalog n=-1', { method: 'GET', url: '/v2/_catalog?n=-1' })
    }
  },
  {
    name: 'blobs and ranges',
    run: async (probe, fixture) => {
      const blob = `/v2/${fixture.repo}/blobs/${fixture.layerDigest}`
      await probe.send('HEAD blob', { method: 'HEAD', url: blob })
      await probe.send('GET blob', { method: 'GET', url: blob })
      await probe.send('GET blob, If-None-Match its digest', { method: 'GET', url: blob, headers: { 'if-none-match': `"${fixture.layerDigest}"` } })
      await probe.send('GET unknown blob', { method: 'GET', url: `/v2/${fixture.repo}/blobs/${unknownDigest}` })
      await probe.send('HEAD unknown blob', { method: 'HEAD', url: `/v2/${fixture.repo}/blobs/${unknownDigest}` })
      await probe.send('GET blob of another repository', { method: 'GET', url: `/v2/diff/other/blobs/${fixture.layerDigest}` })
      await probe.send('GET blob with a short hex digest', { method: 'GET', url: `/v2/${fixture.repo}/blobs/sha256:abc` })
      await probe.send('GET blob with a 64-character non-hex digest', { method: 'GET', url: `/v2/${fixture.repo}/blobs/sha256:${'z'.repeat(64)}` })
      await probe.send('GET blob with a wrong-length sha256 digest', { method: 'GET', url: `/v2/${fixture.repo}/blobs/sha256:${'a'.repeat(40)}` })
      await probe.send('GET blob with an unsupported algorithm', { method: 'GET', url: `/v2/${fixture.repo}/blobs/md5:${'a'.repeat(32)}` })
      for (const range of ['bytes=0-0', 'bytes=0-9', 'bytes=4000-', 'bytes=-10', 'bytes=4000-9999', 'bytes=5000-6000', 'bytes=9-0', 'bytes=0-1,3-4', 'pages=0-1']) {
        await probe.send(`GET blob, Range: ${range}`, { method: 'GET', url: blob, headers: { range } })
      }
    }
  },
  {
    name: 'uploads',
    run: async (probe, fixture) => {
      const repo = 'diff/uploads'
      const content = fixture.layer
      const digest = fixture.layerDigest
      const size = content.length
      /** Sends a step of an upload and follows the Location it answers with, as clients do. */
      const step = async (check: string, location: string, request: Omit<ClientRequest, 'url'>, query?: Record<string, string>): Promise<string> => {
        const response = await probe.send(check, { ...request, url: query === undefined ? location : withQuery(location, query) })
        const next = headerOf(response.headers, 'location')
        return next === undefined || response.status >= 300 ? location : probe.client.resolve(next)
      }
      const chunk = (start: number, end: number): Omit<ClientRequest, 'url'> => ({
        method: 'PATCH', headers: { ...octet, 'content-range': `${start}-${end - 1}`, 'content-length': end - start }, body: content.subarray(start, end)
      })

      let location = await startUpload(probe, 'POST start an upload', repo)
      location = await step('GET upload status', location, { method: 'GET' })
      location = await step('PATCH first chunk with Content-Range', location, chunk(0, 1000))
      location = await step('PATCH the rest, streamed', location, { method: 'PATCH', headers: octet, body: content.subarray(1000) })
      location = await step('GET upload status after two chunks', location, { method: 'GET' })
      await step('PUT completing the upload', location, { method: 'PUT', headers: { 'content-length': 0 } }, { digest })
      await probe.send('GET the uploaded blob', { method: 'GET', url: `/v2/${repo}/blobs/${digest}` })

      location = await startUpload(probe, 'POST an upload for a chunk that skips ahead', repo)
      location = await step('PATCH a first chunk before skipping', location, chunk(0, 1000))
      await step('PATCH a chunk that skips ahead', location, chunk(2000, 3000))

      location = await startUpload(probe, 'POST an upload for a repeated chunk', repo)
      location = await step('PATCH a chunk to repeat', location, chunk(0, 1000))
      await step('PATCH the same chunk again', location, chunk(0, 1000))

      location = await startUpload(probe, 'POST an upload for a malformed Content-Range', repo)
      await step('PATCH with a malformed Content-Range', location, { method: 'PATCH', headers: { ...octet, 'content-range': 'a-b', 'content-length': 1000 }, body: content.subarray(0, 1000) })

      location = await startUpload(probe, 'POST an upload for disagreeing lengths', repo)
      await step('PATCH with Content-Range and Content-Length disagreeing', location, { method: 'PATCH', headers: { ...octet, 'content-range': '0-499', 'content-length': 1000 }, body: content.subarray(0, 1000) })

      location = await startUpload(probe, 'POST an upload for a wrong digest', repo)
      location = await step('PATCH the blob for a wrong digest', location, { method: 'PATCH', headers: octet, body: content })
      await step('PUT with a digest that does not match', location, { method: 'PUT', headers: { 'content-length': 0 } }, { digest: unknownDigest })
      await step('GET upload status after a refused PUT', location, { method: 'GET' })

      location = await startUpload(probe, 'POST an upload for a PUT without digest', repo)
      await step('PUT without a digest', location, { method: 'PUT', headers: { ...octet, 'content-length': size }, body: content })

      location = await startUpload(probe, 'POST an upload for a malformed digest', repo)
      await step('PUT with a malformed digest', location, { method: 'PUT', headers: { ...octet, 'content-length': size }, body: content }, { digest: 'sha256:nothex' })

      location = await startUpload(probe, 'POST an upload for an unsupported algorithm', repo)
      await step('PUT with a digest of an unsupported algorithm', location, { method: 'PUT', headers: { ...octet, 'content-length': size }, body: content }, { digest: `md5:${'a'.repeat(32)}` })

      location = await startUpload(probe, 'POST an upload for POST+PUT', repo)
      await step('PUT the whole blob (POST+PUT)', location, { method: 'PUT', headers: { ...octet, 'content-length': fixture.config.length }, body: fixture.config }, { digest: fixture.configDigest })

      location = await startUpload(probe, 'POST an upload to cancel', repo)
      await step('DELETE an upload', location, { method: 'DELETE' })
      await step('GET a cancelled upload', location, { method: 'GET' })
      await step('PATCH a cancelled upload', location, { method: 'PATCH', headers: octet, body: content })
      await probe.send('GET an upload id that was never issued', { method: 'GET', url: `/v2/${repo}/blobs/uploads/00000000-0000-0000-0000-000000000000` })
      await probe.send('DELETE an upload id that was never issued', { method: 'DELETE', url: `/v2/${repo}/blobs/uploads/00000000-0000-0000-0000-000000000000` })

      const small = seededBytes('monolithic', 100)
      await probe.send('POST ?digest= with the blob (monolithic)', { method: 'POST', url: `/v2/diff/monolithic/blobs/uploads/?digest=${sha256(small)}`, headers: { ...octet, 'content-length': small.length }, body: small })
      await probe.send('HEAD the blob of a monolithic POST', { method: 'HEAD', url: `/v2/diff/monolithic/blobs/${sha256(small)}` })
      await probe.send('POST ?digest-algorithm=sha512', { method: 'POST', url: `/v2/${repo}/blobs/uploads/?digest-algorithm=sha512`, headers: { 'content-length': 0 } })
      await probe.send('POST ?digest-algorithm=md5', { method: 'POST', url: `/v2/${repo}/blobs/uploads/?digest-algorithm=md5`, headers: { 'content-length': 0 } })
    }
  },
  {
    name: 'mounts',
    run: async (probe, fixture) => {
      await probe.send('POST mount from a repository that has the blob', { method: 'POST', url: `/v2/diff/mounted/blobs/uploads/?mount=${fixture.layerDigest}&from=${fixture.repo}`, headers: { 'content-length': 0 } })
      await probe.send('GET the mounted blob', { method: 'GET', url: `/v2/diff/mounted/blobs/${fixture.layerDigest}` })
      await probe.send('POST mount of a blob the source lacks', { method: 'POST', url: `/v2/diff/mounted2/blobs/uploads/?mount=${unknownDigest}&from=${fixture.repo}`, headers: { 'content-length': 0 } })
      await probe.send('POST mount without from', { method: 'POST', url: `/v2/diff/mounted3/blobs/uploads/?mount=${fixture.layerDigest}`, headers: { 'content-length': 0 } })
      await probe.send('POST mount with a malformed digest', { method: 'POST', url: `/v2/diff/mounted4/blobs/uploads/?mount=sha256:nothex&from=${fixture.repo}`, headers: { 'content-length': 0 } })
      await probe.send('POST mount from an invalid repository name', { method: 'POST', url: `/v2/diff/mounted5/blobs/uploads/?mount=${fixture.layerDigest}&from=Not/Valid`, headers: { 'content-length': 0 } })
    }
  },
  {
    name: 'manifests',
    run: async (probe, fixture) => {
      const url = (reference: string, repo = fixture.repo): string => `/v2/${repo}/manifests/${reference}`
      const accept = { accept: `${ociManifest}, application/vnd.oci.image.index.v1+json` }
      await probe.send('GET manifest by tag', { method: 'GET', url: url('v1'), headers: accept })
      await probe.send('HEAD manifest by tag', { method: 'HEAD', url: url('v1'), headers: accept })
      await probe.send('GET manifest by digest', { method: 'GET', url: url(fixture.manifestDigest), headers: accept })
      await probe.send('GET OCI manifest without Accept', { method: 'GET', url: url('v1') })
      await probe.send('HEAD manifest by digest', { method: 'HEAD', url: url(fixture.manifestDigest), headers: accept })
      await probe.send('HEAD manifest of an unknown repository', { method: 'HEAD', url: url('v1', 'diff/unknown'), headers: accept })
      await probe.send('GET manifest, If-None-Match its digest', { method: 'GET', url: url('v1'), headers: { ...accept, 'if-none-match': `"${fixture.manifestDigest}"` } })
      await probe.send('GET unknown tag', { method: 'GET', url: url('nope'), headers: accept })
      await probe.send('GET unknown digest', { method: 'GET', url: url(unknownDigest), headers: accept })
      await probe.send('HEAD unknown tag', { method: 'HEAD', url: url('nope'), headers: accept })
      await probe.send('GET manifest of an unknown repository', { method: 'GET', url: url('v1', 'diff/unknown'), headers: accept })
      await probe.send('GET manifest with an invalid tag', { method: 'GET', url: url('-bad'), headers: accept })
      await probe.send('GET manifest with a malformed digest', { method: 'GET', url: url('sha256:totallywrong'), headers: accept })

      const repo = 'diff/manifests'
      await probe.client.pushBlob(repo, fixture.config)
      await probe.client.pushBlob(repo, fixture.layer)
      const put = (check: string, reference: string, body: Buffer, contentType?: string): Promise<ClientResponse> =>
        probe.send(check, { method: 'PUT', url: url(reference, repo), headers: contentType === undefined ? {} : { 'content-type': contentType }, body })
      await put('PUT manifest by tag', 'v1', fixture.manifest, ociManifest)
      await put('PUT manifest by digest', fixture.manifestDigest, fixture.manifest, ociManifest)
      await put('PUT the same manifest again', 'v1', fixture.manifest, ociManifest)
      await put('PUT manifest by a digest that does not match', unknownDigest, fixture.manifest, ociManifest)
      await put('PUT manifest by a malformed digest', 'sha256:baddigeststring', fixture.manifest, ociManifest)
      await put('PUT manifest that is not JSON', 'bad', Buffer.from('not json'), ociManifest)
      await put('PUT manifest with schemaVersion 3', 'bad', manifestOf(fixture, { schemaVersion: 3 }), ociManifest)
      await put('PUT manifest without a config', 'bad', manifestOf(fixture, { config: undefined }), ociManifest)
      await put('PUT manifest with a malformed layer digest', 'bad', manifestOf(fixture, { layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: 'sha256:nothex', size: 1 }] }), ociManifest)
      await put('PUT manifest referencing an unknown blob', 'bad', manifestOf(fixture, { layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: unknownDigest, size: 1 }] }), ociManifest)
      await put('PUT manifest with Content-Type Docker v2 and an OCI body', 'bad', fixture.manifest, 'application/vnd.docker.distribution.manifest.v2+json')
      await put('PUT manifest without Content-Type', 'no-type', fixture.manifest)
      await put('PUT manifest with Content-Type text/plain', 'text', fixture.manifest, 'text/plain')
      await put('PUT manifest with an invalid tag', '-bad', fixture.manifest, ociManifest)
      const huge = manifestOf(fixture, { annotations: { 'org.example.padding': 'x'.repeat(5 * 1024 * 1024) } })
      await put('PUT manifest larger than 4 MiB', 'huge', huge, ociManifest)
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: ociManifest, digest: fixture.manifestDigest, size: fixture.manifest.length, platform: { architecture: 'amd64', os: 'linux' } }] }))
      await put('PUT index', 'index', index, 'application/vnd.oci.image.index.v1+json')
      const badIndex = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: ociManifest, digest: unknownDigest, size: 10 }] }))
      await put('PUT index referencing an unknown manifest', 'bad-index', badIndex, 'application/vnd.oci.image.index.v1+json')
      const withSubject = manifestOf(fixture, { subject: { mediaType: ociManifest, digest: fixture.manifestDigest, size: fixture.manifest.length } })
      await put('PUT manifest with a subject', sha256(withSubject), withSubject, ociManifest)
      await probe.send('PUT manifest with ?tag= parameters', { method: 'PUT', url: `${url(fixture.manifestDigest, repo)}?tag=t1&tag=t2`, headers: { 'content-type': ociManifest }, body: fixture.manifest })
      await probe.send('tags after the manifest PUTs', { method: 'GET', url: `/v2/${repo}/tags/list` })
      await probe.send('GET index by tag', { method: 'GET', url: url('index', repo), headers: { accept: 'application/vnd.oci.image.index.v1+json' } })
      await probe.send('GET index accepting only image manifests', { method: 'GET', url: url('index', repo), headers: { accept: ociManifest } })
    }
  },
  {
    name: 'deletes',
    run: async (probe, fixture) => {
      const repo = 'diff/deletes'
      await probe.client.pushBlob(repo, fixture.config)
      await probe.client.pushBlob(repo, fixture.layer)
      await probe.client.putManifest(repo, 'v1', fixture.manifest, ociManifest)
      await probe.client.putManifest(repo, 'v2', fixture.manifest, ociManifest)
      await probe.send('DELETE manifest by tag', { method: 'DELETE', url: `/v2/${repo}/manifests/v2` })
      await probe.send('tags after deleting a tag', { method: 'GET', url: `/v2/${repo}/tags/list` })
      await probe.send('DELETE manifest by digest', { method: 'DELETE', url: `/v2/${repo}/manifests/${fixture.manifestDigest}` })
      const accept = { accept: ociManifest }
      await probe.send('GET a deleted manifest', { method: 'GET', url: `/v2/${repo}/manifests/${fixture.manifestDigest}`, headers: accept })
      await probe.send('GET the tag of a deleted manifest', { method: 'GET', url: `/v2/${repo}/manifests/v1`, headers: accept })
      await probe.send('tags after deleting the manifest', { method: 'GET', url: `/v2/${repo}/tags/list` })
      await probe.send('DELETE manifest by digest again', { method: 'DELETE', url: `/v2/${repo}/manifests/${fixture.manifestDigest}` })
      await probe.send('DELETE manifest by a malformed digest', { method: 'DELETE', url: `/v2/${repo}/manifests/sha256:nothex` })
      await probe.send('DELETE blob', { method: 'DELETE', url: `/v2/${repo}/blobs/${fixture.layerDigest}` })
      await probe.send('GET a deleted blob', { method: 'GET', url: `/v2/${repo}/blobs/${fixture.layerDigest}` })
      await probe.send('DELETE blob again', { method: 'DELETE', url: `/v2/${repo}/blobs/${fixture.layerDigest}` })
      await probe.send('DELETE unknown blob', { method: 'DELETE', url: `/v2/${repo}/blobs/${unknownDigest}` })
      await probe.send('GET the deleted blob from the repository it came from', { method: 'GET', url: `/v2/${fixture.repo}/blobs/${fixture.layerDigest}` })
    }
  }
]

/** Runs after the others, when several repositories exist. */
export const closingScenario: Scenario = {
  name: 'catalog and tags at the end',
  run: async (probe, fixture) => {
    await probe.send('catalog at the end', { method: 'GET', url: '/v2/_catalog' })
    await probe.send('catalog n=2 at the end', { method: 'GET', url: '/v2/_catalog?n=2' })
    await probe.send('catalog n=2 last=diff/manifests at the end', { method: 'GET', url: '/v2/_catalog?n=2&last=diff/manifests' })
    await probe.client.pushBlob('diff/blobs-only', fixture.config)
    await probe.send('tags of a repository with blobs and no manifest', { method: 'GET', url: '/v2/diff/blobs-only/tags/list' })
  }
}

/** Runs a scenario against one registry, recording each step's observation. */
export async function runScenario (scenario: Scenario, client: RegistryClient, fixture: Fixture): Promise<Array<{ check: string, observation: Observation }>> {
  const recorded: Array<{ check: string, observation: Observation }> = []
  const probe: Probe = {
    client,
    send: async (check, request) => {
      let response: ClientResponse
      try {
        response = await client.send(request)
      } catch (error) {
        // A connection the registry dropped is an answer too.
        recorded.push({ check, observation: { status: `no response: ${(error as NodeJS.ErrnoException).code ?? String(error)}` } })
        return { status: 0, headers: {}, body: Buffer.alloc(0), url: client.resolve(request.url) }
      }
      recorded.push({ check, observation: observe(request, response) })
      return response
    }
  }
  await scenario.run(probe, fixture)
  return recorded
}
