/**
 * The cases, each run against one server: it does its work, checks every answer (status codes,
 * Docker-Content-Digest, the bytes pulled) and returns its figure. A failed check throws, and
 * the case is reported as failed rather than as a figure.
 */

import { createHash } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { BlobContent, digestOf, freshSeed } from './content.js'
import { CheckError, Client, check, expectStatus, header, withQuery } from './http.js'
import { loadFixed } from './loadgen.js'
import type { Target } from './targets.js'

export const MB = 1e6
export const MiB = 1024 * 1024

export interface Settings {
  /** Size of the big blob (push and pull cases). */
  size: number
  /** Length of the timed load cases. */
  durationMs: number
  /** Connections of the load cases. */
  connections: number
}

export interface Figure {
  value: number
  /** Secondary figures, e.g. latency percentiles (named with their unit). */
  extras: Record<string, number>
}

/** The server does not offer what the case measures (not a failure, not a figure). */
export class Unsupported extends Error {
  override name = 'Unsupported'
}

/** Content shared by both servers in one round, so that both get the same bytes. */
export interface RoundContent {
  monolithic: BlobContent
  chunked: BlobContent
  postDigest: BlobContent
  concurrent: BlobContent[]
  /** Offsets of the range reads. */
  rangeStarts: number[]
}

const CONCURRENT_CLIENTS = 32
const CONCURRENT_BLOBS_EACH = 4
const CONCURRENT_BLOB_SIZE = 8 * MiB
const CHUNK_SIZE = 16 * MiB
const RANGE_READS = 1000
const RANGE_SIZE = MiB
const RANGE_PARALLEL = 8
const TAG_COUNT = 1000
const TAG_PAGE = 100
const LISTERS = 8

const REPO_BLOBS = 'bench/blobs'
const REPO_CONCURRENT = 'bench/concurrent'
const REPO_IMAGE = 'bench/image'
const REPO_TAGS = 'bench/tags'

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
/** What docker and containerd send when pulling by tag. */
const MANIFEST_ACCEPT = [
  OCI_MANIFEST,
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json'
].join(', ')

/** A small deterministic generator, so both servers read the same ranges in a round. */
function random (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function roundContent (settings: Settings): RoundContent {
  const next = random(freshSeed())
  const rangeSpan = Math.max(0, settings.size - RANGE_SIZE)
  return {
    monolithic: new BlobContent(freshSeed(), settings.size),
    chunked: new BlobContent(freshSeed(), settings.size),
    postDigest: new BlobContent(freshSeed(), settings.size),
    concurrent: Array.from({ length: CONCURRENT_CLIENTS * CONCURRENT_BLOBS_EACH }, () => new BlobContent(freshSeed(), CONCURRENT_BLOB_SIZE)),
    rangeStarts: Array.from({ length: RANGE_READS }, () => Math.floor(next() * (rangeSpan + 1)))
  }
}

interface Image {
  manifest: Buffer
  digest: string
  layer: { digest: string, size: number }
}

/** What the cases know of one server across rounds. */
export class TargetState {
  readonly client: Client
  /** The last big blob pushed, for the pull cases. */
  pullable: BlobContent | undefined
  image: Image | undefined
  tags: string[] | undefined
  postDigestSupported: boolean | undefined
  /** Big blobs to drop from storage at the end of the round. */
  private readonly bigBlobs = new Set<string>()

  constructor (readonly target: Target, connections: number) {
    this.client = new Client(target.origin, connections)
  }

  remember (digest: string): void {
    this.bigBlobs.add(digest)
  }

  /**
   * Frees the disk taken by the round's big blobs. Both servers use the same blob store layout,
   * and no case reads these blobs again, so they are removed from the tree directly (a registry
   * delete only unlinks them; reclaiming is garbage collection's job, out of scope here).
   */
  async reclaim (): Promise<void> {
    for (const digest of this.bigBlobs) {
      const hex = digest.slice('sha256:'.length)
      await rm(join(this.target.root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex), { recursive: true, force: true })
    }
    this.bigBlobs.clear()
    this.pullable = undefined
  }
}

function bodyOf (content: BlobContent, start = 0, end = content.size): Readable {
  return Readable.from(content.slices(start, end), { objectMode: false })
}

async function startUpload (client: Client, repo: string): Promise<string> {
  const response = await client.request('POST', `/v2/${repo}/blobs/uploads/`, { 'content-length': '0' })
  expectStatus(response, 202, 'POST upload')
  return client.pathOf(header(response, 'location'))
}

function expectCreated (response: { status: number, body: Buffer, headers: Record<string, string | string[] | undefined> }, digest: string, what: string): void {
  expectStatus(response, 201, what)
  check(header(response, 'docker-content-digest') === digest, `${what}: Docker-Content-Digest ${header(response, 'docker-content-digest')}, expected ${digest}`)
}

async function expectBlob (client: Client, repo: string, content: BlobContent): Promise<void> {
  const response = await client.request('HEAD', `/v2/${repo}/blobs/${content.digest}`)
  expectStatus(response, 200, 'HEAD pushed blob')
  check(header(response, 'content-length') === String(content.size), `HEAD pushed blob: Content-Length ${header(response, 'content-length')}, expected ${content.size}`)
}

/** POST, then one PUT with the whole body. */
/** After a timed push: the blob is remembered for clean-up, and a HEAD checks it is served whole. */
async function checkPushed (state: TargetState, content: BlobContent): Promise<void> {
  state.remember(content.digest)
  await expectBlob(state.client, REPO_BLOBS, content)
}

async function pushMonolithic (client: Client, repo: string, content: BlobContent): Promise<void> {
  const location = await startUpload(client, repo)
  const response = await client.request('PUT', withQuery(location, { digest: content.digest }), {
    'content-type': 'application/octet-stream',
    'content-length': String(content.size)
  }, bodyOf(content))
  expectCreated(response, content.digest, 'PUT upload')
}

/** Times `work` over `bytes`, in MB/s. */
async function rate (bytes: number, work: () => Promise<void>): Promise<number> {
  const started = performance.now()
  await work()
  return bytes / MB / ((performance.now() - started) / 1000)
}

async function parallel<T> (limit: number, items: readonly T[], work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++
      await work(items[index] as T, index)
    }
  }))
}

/** The big blob the pull cases read: this round's pushed one, else one pushed now (untimed). */
async function pullable (state: TargetState, round: RoundContent): Promise<BlobContent> {
  if (state.pullable === undefined) {
    await pushMonolithic(state.client, REPO_BLOBS, round.monolithic)
    state.remember(round.monolithic.digest)
    state.pullable = round.monolithic
  }
  return state.pullable
}

async function setupImage (client: Client, repo: string, seed: string): Promise<Image> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] }, seed }))
  const configDigest = digestOf(config)
  const layers = [0, 1, 2].map(() => new BlobContent(freshSeed(), MiB))
  for (const blob of [{ digest: configDigest, body: config, size: config.length }, ...layers.map((layer) => ({ digest: layer.digest, body: layer.bytes(0, layer.size), size: layer.size }))]) {
    const location = await startUpload(client, repo)
    const response = await client.request('PUT', withQuery(location, { digest: blob.digest }), {
      'content-type': 'application/octet-stream',
      'content-length': String(blob.size)
    }, blob.body)
    expectCreated(response, blob.digest, 'PUT image blob')
  }
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: layers.map((layer) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.size }))
  }))
  const digest = digestOf(manifest)
  const first = layers[0] as BlobContent
  return { manifest, digest, layer: { digest: first.digest, size: first.size } }
}

async function putManifest (client: Client, repo: string, reference: string, image: Image): Promise<void> {
  const response = await client.request('PUT', `/v2/${repo}/manifests/${reference}`, { 'content-type': OCI_MANIFEST }, image.manifest)
  expectCreated(response, image.digest, `PUT manifest ${reference}`)
}

async function image (state: TargetState): Promise<Image> {
  if (state.image === undefined) {
    const made = await setupImage(state.client, REPO_IMAGE, 'image')
    await putManifest(state.client, REPO_IMAGE, 'latest', made)
    state.image = made
  }
  return state.image
}

async function tags (state: TargetState): Promise<string[]> {
  if (state.tags === undefined) {
    const made = await setupImage(state.client, REPO_TAGS, 'tags')
    const names = Array.from({ length: TAG_COUNT }, (_, i) => `t${String(i).padStart(4, '0')}`)
    await parallel(8, names, async (tag) => { await putManifest(state.client, REPO_TAGS, tag, made) })
    state.tags = names
  }
  return state.tags
}

export interface CaseDefinition {
  name: string
  unit: string
  /** What one figure means, for the report. */
  description: string
  /** Untimed setup (content the case reads), outside the CPU and memory figures too. */
  prepare?: (state: TargetState, round: RoundContent) => Promise<void>
  run: (state: TargetState, round: RoundContent, settings: Settings) => Promise<Figure>
}

export const CASES: readonly CaseDefinition[] = [
  {
    name: 'push_monolithic',
    unit: 'MB/s',
    description: 'big blob: POST, then one PUT with the body',
    run: async (state, round) => {
      const content = round.monolithic
      const value = await rate(content.size, async () => { await pushMonolithic(state.client, REPO_BLOBS, content) })
      await checkPushed(state, content)
      state.pullable = content
      return { value, extras: {} }
    }
  },
  {
    name: 'push_chunked',
    unit: 'MB/s',
    description: 'big blob: POST, 16 MiB PATCHes with Content-Range, PUT',
    run: async (state, round) => {
      const { client } = state
      const content = round.chunked
      const digest = content.digest
      const value = await rate(content.size, async () => {
        let location = await startUpload(client, REPO_BLOBS)
        for (let start = 0; start < content.size; start += CHUNK_SIZE) {
          const end = Math.min(content.size, start + CHUNK_SIZE)
          const response = await client.request('PATCH', location, {
            'content-type': 'application/octet-stream',
            'content-length': String(end - start),
            'content-range': `${start}-${end - 1}`
          }, bodyOf(content, start, end))
          expectStatus(response, 202, 'PATCH chunk')
          check(header(response, 'range') === `0-${end - 1}`, `PATCH chunk: Range ${header(response, 'range')}, expected 0-${end - 1}`)
          location = client.pathOf(header(response, 'location'))
        }
        const response = await client.request('PUT', withQuery(location, { digest }), { 'content-length': '0' })
        expectCreated(response, digest, 'PUT upload')
      })
      await checkPushed(state, content)
      return { value, extras: {} }
    }
  },
  {
    name: 'push_post_digest',
    unit: 'MB/s',
    description: 'big blob: one POST ?digest= with the body',
    run: async (state, round) => {
      const { client } = state
      if (state.postDigestSupported === undefined) {
        // A small probe: a server that ignores the body answers 202 and opens an upload.
        const probe = Buffer.from(`probe ${freshSeed()}`)
        const response = await client.request('POST', `/v2/${REPO_BLOBS}/blobs/uploads/?digest=${digestOf(probe)}`, {
          'content-type': 'application/octet-stream'
        }, probe)
        if (response.status === 202) {
          const cancel = await client.request('DELETE', client.pathOf(header(response, 'location')))
          expectStatus(cancel, 204, 'DELETE probe upload')
        } else {
          expectCreated(response, digestOf(probe), 'POST ?digest= probe')
        }
        state.postDigestSupported = response.status === 201
      }
      if (!state.postDigestSupported) throw new Unsupported('answers 202 to POST ?digest= with a body (ignores the body)')
      const content = round.postDigest
      const digest = content.digest
      const value = await rate(content.size, async () => {
        const response = await client.request('POST', `/v2/${REPO_BLOBS}/blobs/uploads/?digest=${digest}`, {
          'content-type': 'application/octet-stream',
          'content-length': String(content.size)
        }, bodyOf(content))
        expectCreated(response, digest, 'POST ?digest=')
      })
      await checkPushed(state, content)
      return { value, extras: {} }
    }
  },
  {
    name: 'pull_blob',
    unit: 'MB/s',
    description: 'GET of the big blob, digest verified while reading',
    prepare: async (state, round) => { await pullable(state, round) },
    run: async (state, round) => {
      const content = await pullable(state, round)
      const value = await rate(content.size, async () => {
        const response = await state.client.pool.request({ method: 'GET', path: `/v2/${REPO_BLOBS}/blobs/${content.digest}` })
        const hash = createHash('sha256')
        let size = 0
        for await (const chunk of response.body) {
          hash.update(chunk as Buffer)
          size += (chunk as Buffer).length
        }
        expectStatus({ status: response.statusCode, body: Buffer.alloc(0) }, 200, 'GET blob')
        check(header(response, 'docker-content-digest') === content.digest, 'GET blob: wrong Docker-Content-Digest')
        check(size === content.size, `GET blob: ${size} bytes, expected ${content.size}`)
        check(`sha256:${hash.digest('hex')}` === content.digest, 'GET blob: the bytes do not match the digest')
      })
      return { value, extras: {} }
    }
  },
  {
    name: 'pull_range',
    unit: 'req/s',
    description: `${RANGE_READS} random 1 MiB Range GETs, ${RANGE_PARALLEL} in parallel, bytes compared`,
    prepare: async (state, round) => { await pullable(state, round) },
    run: async (state, round) => {
      const content = await pullable(state, round)
      const path = `/v2/${REPO_BLOBS}/blobs/${content.digest}`
      const started = performance.now()
      await parallel(RANGE_PARALLEL, round.rangeStarts, async (start) => {
        const end = Math.min(content.size, start + RANGE_SIZE)
        const response = await state.client.request('GET', path, { range: `bytes=${start}-${end - 1}` })
        expectStatus(response, 206, 'GET range')
        check(header(response, 'content-range') === `bytes ${start}-${end - 1}/${content.size}`, `GET range: Content-Range ${header(response, 'content-range')}`)
        check(response.body.length === end - start, `GET range: ${response.body.length} bytes, expected ${end - start}`)
        let offset = 0
        for (const slice of content.slices(start, end)) {
          check(response.body.subarray(offset, offset + slice.length).equals(slice), `GET range: wrong bytes at ${start + offset}`)
          offset += slice.length
        }
      })
      return { value: round.rangeStarts.length / ((performance.now() - started) / 1000), extras: {} }
    }
  },
  {
    name: 'manifest_get',
    unit: 'req/s',
    description: 'GET manifest by tag with the usual Accept header, timed load',
    prepare: async (state) => { await image(state) },
    run: async (state, _round, settings) => {
      const made = await image(state)
      const result = await loadFixed(state.target.origin, {
        connections: settings.connections,
        durationMs: settings.durationMs,
        request: { method: 'GET', path: `/v2/${REPO_IMAGE}/manifests/latest`, headers: { accept: MANIFEST_ACCEPT } },
        check: (response) => {
          expectStatus(response, 200, 'GET manifest')
          check(header(response, 'docker-content-digest') === made.digest, 'GET manifest: wrong Docker-Content-Digest')
          check(response.body.equals(made.manifest), 'GET manifest: wrong bytes')
        }
      })
      return { value: result.perSecond, extras: { 'p50 ms': result.p50Ms, 'p99 ms': result.p99Ms } }
    }
  },
  {
    name: 'blob_head',
    unit: 'req/s',
    description: 'HEAD of a layer, timed load',
    prepare: async (state) => { await image(state) },
    run: async (state, _round, settings) => {
      const made = await image(state)
      const result = await loadFixed(state.target.origin, {
        connections: settings.connections,
        durationMs: settings.durationMs,
        request: { method: 'HEAD', path: `/v2/${REPO_IMAGE}/blobs/${made.layer.digest}` },
        check: (response) => {
          expectStatus(response, 200, 'HEAD blob')
          check(header(response, 'docker-content-digest') === made.layer.digest, 'HEAD blob: wrong Docker-Content-Digest')
          check(header(response, 'content-length') === String(made.layer.size), 'HEAD blob: wrong Content-Length')
        }
      })
      return { value: result.perSecond, extras: { 'p50 ms': result.p50Ms, 'p99 ms': result.p99Ms } }
    }
  },
  {
    name: 'concurrent_push',
    unit: 'MB/s',
    description: `${CONCURRENT_CLIENTS} clients each pushing ${CONCURRENT_BLOBS_EACH} distinct 8 MiB blobs`,
    run: async (state, round) => {
      const blobs = round.concurrent
      const digests = blobs.map((blob) => blob.digest)
      const bytes = blobs.reduce((sum, blob) => sum + blob.size, 0)
      const value = await rate(bytes, async () => {
        await Promise.all(Array.from({ length: CONCURRENT_CLIENTS }, async (_, client) => {
          for (let i = 0; i < CONCURRENT_BLOBS_EACH; i++) {
            await pushMonolithic(state.client, REPO_CONCURRENT, blobs[client * CONCURRENT_BLOBS_EACH + i] as BlobContent)
          }
        }))
      })
      for (const digest of digests) state.remember(digest)
      await expectBlob(state.client, REPO_CONCURRENT, blobs[blobs.length - 1] as BlobContent)
      return { value, extras: {} }
    }
  },
  {
    name: 'tags_list',
    unit: 'listings/s',
    description: `full listings of ${TAG_COUNT} tags paged with n=${TAG_PAGE}, ${LISTERS} listers, timed`,
    prepare: async (state) => { await tags(state) },
    run: async (state, _round, settings) => {
      const expected = await tags(state)
      const { client } = state
      const deadline = performance.now() + settings.durationMs
      const started = performance.now()
      let listings = 0
      let pages = 0
      await Promise.all(Array.from({ length: LISTERS }, async () => {
        while (performance.now() < deadline) {
          const seen: string[] = []
          let path: string | undefined = `/v2/${REPO_TAGS}/tags/list?n=${TAG_PAGE}`
          while (path !== undefined) {
            const response = await client.request('GET', path)
            expectStatus(response, 200, 'GET tags')
            const body = JSON.parse(response.body.toString('utf8')) as { name?: string, tags?: string[] }
            check(body.name === REPO_TAGS && Array.isArray(body.tags), 'GET tags: bad body')
            seen.push(...(body.tags as string[]))
            pages++
            const link = header(response, 'link')
            path = link === undefined ? undefined : client.pathOf(/^<([^>]+)>/.exec(link)?.[1])
            check(seen.length <= expected.length, 'GET tags: more tags than pushed')
          }
          // Distribution 2.8.2 ignores n and last and lists in directory order: compare as sets.
          const sorted = [...seen].sort()
          check(sorted.length === expected.length && sorted.every((tag, i) => tag === expected[i]), `GET tags: listing of ${seen.length} tags differs from the ${expected.length} pushed`)
          listings++
        }
      }))
      return { value: listings / ((performance.now() - started) / 1000), extras: { 'pages/listing': pages / Math.max(1, listings) } }
    }
  }
]

export function isCheckError (error: unknown): boolean {
  return error instanceof CheckError
}
