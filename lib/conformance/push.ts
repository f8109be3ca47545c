/**
 * Push: every way of uploading a blob (monolithic POST, POST then PUT, streamed PATCH, chunks
 * in order, out of order, with the last on PUT), with sha256 and sha512, with wrong digests;
 * cancels; mounts; empty blobs; manifests of every shape, by digest, by tag and with `?tag=`.
 */

import { randomBytes } from 'node:crypto'
import { digestOf, type Algorithm } from '../digest.js'
import { headerOf, type ClientResponse } from '../client/index.js'
import { blob, contentSets, EMPTY_JSON, image, randomBlob, type Blob, type ContentSet } from './data.js'
import {
  OCTET,
  cleanUp,
  expectNotFound,
  locationOf,
  pushBlob,
  pushManifest,
  send,
  startUpload,
  verifyBlob,
  verifyBlobHead,
  verifyCreated,
  verifyManifest,
  verifyManifestHead,
  withQuery,
  type CheckDefinition,
  type Context
} from './common.js'
import { Unsupported, expectEqual, expectErrorBody, expectHeader, expectStatus, expectTrue, fail, jsonOf, requireHeader } from './expect.js'
import { MediaTypes } from '../manifest/media-types.js'

/** The chunk size the checks use: small enough for three chunks, at least the registry's minimum. */
function chunkSizeFor (response: ClientResponse, total: number): number {
  const min = Number(headerOf(response.headers, 'oci-chunk-min-length'))
  return Math.max(Math.ceil(total / 3), Number.isSafeInteger(min) ? min : 0, 1)
}

type UploadMethod = 'monolithic POST' | 'POST then PUT' | 'streamed PATCH' | 'one chunk' | 'three chunks' | 'three chunks, the last on PUT' | 'chunks out of order' | 'chunks out of order, the last on PUT'

const METHODS: UploadMethod[] = ['monolithic POST', 'POST then PUT', 'streamed PATCH', 'one chunk', 'three chunks', 'three chunks, the last on PUT', 'chunks out of order', 'chunks out of order, the last on PUT']

/**
 * Uploads `item` (whose digest may be wrong, `expectBad`) with one method and returns the
 * answer to the request that closed the upload.
 */
async function upload (context: Context, repo: string, item: Blob, method: UploadMethod, expectBad = false): Promise<ClientResponse> {
  const closing = (response: ClientResponse): ClientResponse => {
    expectStatus(response, expectBad ? 400 : 201)
    if (expectBad) expectErrorBody(response, ['DIGEST_INVALID'])
    return response
  }
  if (method === 'monolithic POST') {
    const response = await send(context, { method: 'POST', url: context.client.urls.blobUpload(repo, { digest: item.digest }), headers: { ...OCTET, 'content-length': item.content.length }, body: item.content })
    if (response.status !== 202) return closing(response)
    // The spec lets a registry ignore the body and start an upload: finish it with PUT.
    const put = await send(context, { method: 'PUT', url: withQuery(locationOf(context, response), { digest: item.digest }), headers: { ...OCTET, 'content-length': item.content.length }, body: item.content })
    return closing(put)
  }
  const { location: start, response: opened } = await startUpload(context, repo, item.digest)
  let location = start
  if (method === 'POST then PUT') {
    return closing(await send(context, { method: 'PUT', url: withQuery(location, { digest: item.digest }), headers: { ...OCTET, 'content-length': item.content.length }, body: item.content }))
  }
  if (method === 'streamed PATCH') {
    const patched = await send(context, { method: 'PATCH', url: location, headers: OCTET, body: item.content })
    expectStatus(patched, 202)
    location = locationOf(context, patched)
    return closing(await send(context, { method: 'PUT', url: withQuery(location, { digest: item.digest }), headers: { 'content-length': 0 } }))
  }
  const total = item.content.length
  const size = method === 'one chunk' ? total : chunkSizeFor(opened, total)
  const lastOnPut = method.endsWith('on PUT')
  const outOfOrder = method.startsWith('chunks out of order')
  let offset = 0
  while (offset < total) {
    const end = Math.min(offset + size, total)
    if (outOfOrder) {
      // A chunk that does not continue the upload is 416; GET then says where the upload is.
      // (When one chunk is the whole blob, as under a large OCI-Chunk-Min-Length, it starts at 1.)
      const badStart = end < total ? end : offset === 0 ? 1 : 0
      const badEnd = Math.min(badStart + size, total)
      const refused = await send(context, { method: 'PATCH', url: location, headers: { ...OCTET, 'content-range': `${badStart}-${badEnd - 1}`, 'content-length': badEnd - badStart }, body: item.content.subarray(badStart, badEnd) })
      expectStatus(refused, 416)
      const status = await send(context, { method: 'GET', url: location })
      expectStatus(status, 204)
      expectHeader(status, 'range', `0-${Math.max(offset - 1, 0)}`)
      location = locationOf(context, status)
    }
    const chunk = item.content.subarray(offset, end)
    const headers = { ...OCTET, 'content-range': `${offset}-${end - 1}`, 'content-length': chunk.length }
    if (lastOnPut && end === total) {
      return closing(await send(context, { method: 'PUT', url: withQuery(location, { digest: item.digest }), headers, body: chunk }))
    }
    const patched = await send(context, { method: 'PATCH', url: location, headers, body: chunk })
    expectStatus(patched, 202)
    expectHeader(patched, 'range', `0-${end - 1}`)
    location = locationOf(context, patched)
    offset = end
  }
  return closing(await send(context, { method: 'PUT', url: withQuery(location, { digest: item.digest }), headers: { ...OCTET, 'content-length': 0 } }))
}

function uploadChecks (algorithm: Algorithm): CheckDefinition[] {
  const checks: CheckDefinition[] = []
  for (const method of METHODS) {
    const item = randomBlob(method.includes('chunk') ? 3 * 1024 - 5 : 512, algorithm)
    checks.push({
      name: `${algorithm} blob upload, ${method}: 201, and the blob is served`,
      run: async (context) => {
        const response = await upload(context, context.repo, item, method)
        await verifyCreated(context, context.repo, response, item)
        await verifyBlobHead(context, context.repo, item)
        await cleanUp(context, context.repo, [], [item])
      }
    })
  }
  for (const method of ['monolithic POST', 'POST then PUT', 'streamed PATCH', 'three chunks', 'three chunks, the last on PUT'] as const) {
    const good = randomBlob(3 * 1024 - 5, algorithm)
    const bad: Blob = { content: Buffer.concat([good.content, Buffer.from('oh no')]), digest: good.digest }
    checks.push({
      name: `${algorithm} blob upload, ${method}, with a digest that does not match: 400 DIGEST_INVALID, nothing stored`,
      run: async (context) => {
        await upload(context, context.repo, bad, method, true)
        expectStatus(await send(context, { method: 'HEAD', url: context.client.urls.blob(context.repo, good.digest) }), 404)
      }
    })
  }
  return checks
}

/** The legacy suite's chunked sequence, step by step, each step its own check. */
function chunkedSequence (): CheckDefinition[] {
  const item = randomBlob(2 * 1024, 'sha256')
  const half = item.content.length / 2
  let location = ''
  let previous = ''
  const patch = async (context: Context, url: string, start: number, end: number): Promise<ClientResponse> =>
    await send(context, { method: 'PATCH', url, headers: { ...OCTET, 'content-range': `${start}-${end - 1}`, 'content-length': end - start }, body: item.content.subarray(start, end) })
  return [
    {
      name: 'chunked upload: a second chunk before the first is 416',
      run: async (context) => {
        const { location: url } = await startUpload(context, context.repo)
        expectStatus(await patch(context, url, half, item.content.length), 416)
      }
    },
    {
      name: 'chunked upload: the first chunk is 202 with Range 0-<end> and a Location',
      run: async (context) => {
        const { location: url } = await startUpload(context, context.repo)
        previous = url
        const response = await patch(context, url, 0, half)
        expectStatus(response, 202)
        expectHeader(response, 'range', `0-${half - 1}`)
        location = locationOf(context, response)
      }
    },
    {
      name: 'chunked upload: sending the first chunk again is 416',
      run: async (context) => { expectStatus(await patch(context, previous, 0, half), 416) }
    },
    {
      name: 'chunked upload: GET of the upload is 204 with its Location and Range',
      run: async (context) => {
        const response = await send(context, { method: 'GET', url: location })
        expectStatus(response, 204)
        expectHeader(response, 'range', `0-${half - 1}`)
        location = locationOf(context, response)
      }
    },
    {
      name: 'chunked upload: the second chunk is 202 with Range 0-<size - 1>',
      run: async (context) => {
        const response = await patch(context, location, half, item.content.length)
        expectStatus(response, 202)
        expectHeader(response, 'range', `0-${item.content.length - 1}`)
        location = locationOf(context, response)
      }
    },
    {
      name: 'chunked upload: PUT with the digest and no body is 201, and the blob is served',
      run: async (context) => {
        const response = await send(context, { method: 'PUT', url: withQuery(location, { digest: item.digest }), headers: { ...OCTET, 'content-length': 0 } })
        await verifyCreated(context, context.repo, response, item)
        await cleanUp(context, context.repo, [], [item])
      }
    }
  ]
}

function miscBlobChecks (): CheckDefinition[] {
  const missing = digestOf(randomBytes(32))
  const mounted = randomBlob(512)
  const anonymous = randomBlob(512)
  const absent = randomBlob(512)
  const empty = blob(Buffer.alloc(0))
  const emptyJson = blob(EMPTY_JSON)
  return [
    {
      name: 'GET of a blob that was never pushed is 404',
      run: async (context) => { expectNotFound(await send(context, { method: 'GET', url: context.client.urls.blob(context.repo, missing) }), ['BLOB_UNKNOWN']) }
    },
    {
      name: 'cancelling an upload: DELETE is 204, then the upload is 404 BLOB_UPLOAD_UNKNOWN',
      run: async (context) => {
        const { location } = await startUpload(context, context.repo)
        const cancel = await send(context, { method: 'DELETE', url: location, headers: { 'content-length': 0 } })
        expectStatus(cancel, 204)
        expectNotFound(await send(context, { method: 'GET', url: location }), ['BLOB_UPLOAD_UNKNOWN'])
      }
    },
    {
      name: 'mount from another repository: 201 with the blob\'s Location (or 202 and an upload)',
      run: async (context) => {
        await pushBlob(context, context.repo2, mounted)
        const response = await send(context, { method: 'POST', url: context.client.urls.blobUpload(context.repo, { mount: mounted.digest, from: context.repo2 }), headers: { 'content-length': 0 } })
        expectStatus(response, 201, 202)
        if (response.status === 202) {
          const put = await send(context, { method: 'PUT', url: withQuery(locationOf(context, response), { digest: mounted.digest }), headers: { ...OCTET, 'content-length': mounted.content.length }, body: mounted.content })
          await verifyCreated(context, context.repo, put, mounted)
        } else {
          expectEqual(new URL(locationOf(context, response)).pathname, new URL(context.client.urls.blob(context.repo, mounted.digest)).pathname, 'the Location path')
          await verifyCreated(context, context.repo, response, mounted)
        }
        await cleanUp(context, context.repo, [], [mounted])
        await cleanUp(context, context.repo2, [], [mounted])
      }
    },
    {
      name: 'mount without from: 201 when the registry finds the blob, else 202 and an upload',
      run: async (context) => {
        await pushBlob(context, context.repo2, anonymous)
        const response = await send(context, { method: 'POST', url: context.client.urls.blobUpload(context.repo, { mount: anonymous.digest }), headers: { 'content-length': 0 } })
        expectStatus(response, 201, 202)
        if (response.status === 201) await verifyCreated(context, context.repo, response, anonymous)
        else requireHeader(response, 'location')
        await cleanUp(context, context.repo, [], [anonymous])
        await cleanUp(context, context.repo2, [], [anonymous])
      }
    },
    {
      name: 'mount of a blob the source repository does not have: 202 and an upload',
      run: async (context) => {
        const response = await send(context, { method: 'POST', url: context.client.urls.blobUpload(context.repo, { mount: absent.digest, from: context.repo2 }), headers: { 'content-length': 0 } })
        expectStatus(response, 202)
        const location = locationOf(context, response)
        if (!new URL(location).pathname.startsWith(new URL(context.client.urls.blobUpload(context.repo)).pathname)) fail(`expected an upload Location in ${context.repo}, got ${location}`)
        await send(context, { method: 'DELETE', url: location })
      }
    },
    {
      name: 'mount without from of a digest nobody has: 202 and an upload',
      run: async (context) => {
        const response = await send(context, { method: 'POST', url: context.client.urls.blobUpload(context.repo, { mount: missing }), headers: { 'content-length': 0 } })
        expectStatus(response, 202)
        await send(context, { method: 'DELETE', url: locationOf(context, response) })
      }
    },
    ...([['an empty blob (0 bytes)', empty], ['the empty JSON blob {}', emptyJson]] as const).map(([what, item]): CheckDefinition => ({
      name: `${what} is pushed, HEAD and GET serve it`,
      run: async (context) => {
        await pushBlob(context, context.repo, item)
        await verifyBlobHead(context, context.repo, item)
        await verifyBlob(context, context.repo, item)
        await cleanUp(context, context.repo, [], [item])
      }
    }))
  ]
}

/** Push, pull back and clean up one content set. */
function contentChecks (set: ContentSet): CheckDefinition[] {
  // `?tag=` is optional (a MAY): when the registry ignores it, the tags are not checked.
  let tagsApplied = set.tagParameters !== true
  return [
    {
      name: `manifests, ${set.name}: push the blobs, the manifests by digest${Object.keys(set.tags).length > 0 ? (set.tagParameters === true ? ' with ?tag=' : ' and by tag') : ''}`,
      run: async (context) => {
        for (const item of set.blobs) await pushBlob(context, context.repo, item)
        const top = set.manifests[set.manifests.length - 1]
        for (const item of set.manifests) {
          const tags = Object.entries(set.tags).filter(([, digest]) => digest === item.digest).map(([tag]) => tag)
          if (set.tagParameters === true && item === top) {
            const response = await pushManifest(context, context.repo, item.digest, item, { tag: tags })
            const header = headerOf(response.headers, 'oci-tag')
            if (header === undefined) throw new Unsupported('the registry ignores ?tag= (no OCI-Tag header), which the spec allows')
            const answered = header.split(',').map((tag) => tag.trim())
            for (const tag of tags) if (!answered.includes(tag)) fail(`expected OCI-Tag to list ${tag}, got ${header}`)
            tagsApplied = true
          } else {
            await pushManifest(context, context.repo, item.digest, item)
            if (set.tagParameters !== true) for (const tag of tags) await pushManifest(context, context.repo, tag, item)
          }
        }
      }
    },
    {
      name: `manifests, ${set.name}: HEAD and GET by digest and by tag serve the exact bytes`,
      run: async (context) => {
        for (const item of set.manifests) {
          await verifyManifestHead(context, context.repo, item.digest, item)
          await verifyManifest(context, context.repo, item.digest, item)
        }
        for (const [tag, digest] of Object.entries(tagsApplied ? set.tags : {})) {
          const item = set.manifests.find((candidate) => candidate.digest === digest)
          if (item === undefined) continue
          await verifyManifestHead(context, context.repo, tag, item)
          await verifyManifest(context, context.repo, tag, item)
        }
        for (const item of set.blobs) await verifyBlobHead(context, context.repo, item)
      }
    },
    ...(set.manifests.some((item) => item.subject !== undefined)
      ? [{
          name: `manifests, ${set.name}: the referrers API lists each manifest under its subject`,
          run: async (context: Context) => {
            for (const subject of new Set(set.manifests.map((item) => item.subject).filter((digest): digest is string => digest !== undefined))) {
              const response = await send(context, { method: 'GET', url: context.client.urls.referrers(context.repo, subject), headers: { accept: MediaTypes.ociIndex } })
              expectStatus(response, 200)
              const listed = (jsonOf<{ manifests?: Array<{ digest: string }> }>(response).manifests ?? []).map((entry) => entry.digest)
              for (const item of set.manifests.filter((candidate) => candidate.subject === subject)) {
                expectTrue(listed.includes(item.digest), `expected referrer ${item.digest} of ${subject}, got ${listed.join(', ') || 'none'}`)
              }
            }
          }
        }]
      : []),
    {
      name: `manifests, ${set.name}: teardown`,
      run: async (context) => { await cleanUp(context, context.repo, set.manifests, set.blobs) }
    }
  ]
}

function manifestChecks (): CheckDefinition[] {
  const pushed = image()
  const bad = image()
  const digest = bad.manifest.digest
  const tampered = { ...bad.manifest, content: Buffer.concat([bad.manifest.content, Buffer.from('  ')]) }
  return [
    {
      name: 'GET of a manifest that was never pushed is 404',
      run: async (context) => {
        expectNotFound(await send(context, { method: 'GET', url: context.client.urls.manifest(context.repo, `never-${randomBytes(4).toString('hex')}`) }), ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN'])
      }
    },
    {
      name: 'PUT of a manifest under four tags: 201 with a Location serving it',
      run: async (context) => {
        for (const item of pushed.blobs) await pushBlob(context, context.repo, item)
        for (let i = 0; i < 4; i++) {
          const response = await pushManifest(context, context.repo, `test${i}`, pushed.manifest)
          requireHeader(response, 'location')
        }
        await verifyManifest(context, context.repo, pushed.manifest.digest, pushed.manifest)
        await cleanUp(context, context.repo, [pushed.manifest], pushed.blobs)
      }
    },
    {
      name: 'PUT of a manifest whose bytes do not match the digest in the URL is 400',
      run: async (context) => {
        for (const item of bad.blobs) await pushBlob(context, context.repo, item)
        const response = await send(context, { method: 'PUT', url: context.client.urls.manifest(context.repo, digest), headers: { 'content-type': tampered.mediaType }, body: tampered.content })
        expectStatus(response, 400)
        expectErrorBody(response)
      }
    },
    {
      name: 'PUT of a manifest by a malformed digest is 400',
      run: async (context) => {
        const response = await send(context, { method: 'PUT', url: context.client.urls.manifest(context.repo, 'sha256:baddigeststring'), headers: { 'content-type': bad.manifest.mediaType }, body: bad.manifest.content })
        expectStatus(response, 400)
        expectErrorBody(response)
        await cleanUp(context, context.repo, [], bad.blobs)
      }
    }
  ]
}

export function pushChecks (): CheckDefinition[] {
  return [
    ...uploadChecks('sha256'),
    ...uploadChecks('sha512'),
    ...chunkedSequence(),
    ...miscBlobChecks(),
    ...manifestChecks(),
    ...contentSets().flatMap(contentChecks)
  ]
}
