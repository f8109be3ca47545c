/** Pull: blobs and manifests by digest and tag, HEAD and GET, ranges, and the 404s of missing content. */

import { randomBytes } from 'node:crypto'
import { digestOf } from '../digest.js'
import { image, index, randomBlob, type Blob, type Manifest } from './data.js'
import {
  MANIFEST_ACCEPT,
  cleanUp,
  expectNotFound,
  pushBlob,
  pushManifest,
  send,
  verifyBlob,
  verifyBlobHead,
  verifyManifest,
  verifyManifestHead,
  type CheckDefinition
} from './common.js'
import { expectBody, expectEmptyBody, expectErrorBody, expectHeader, expectStatus } from './expect.js'

export function pullChecks (): CheckDefinition[] {
  const first = image()
  const second = image()
  const top = index([first.manifest.descriptor, second.manifest.descriptor])
  const ranged: Blob = randomBlob(2048)
  const blobs = [...first.blobs, ...second.blobs, ranged]
  const manifests: Manifest[] = [first.manifest, second.manifest, top]
  const tag = `pull-${randomBytes(4).toString('hex')}`
  const indexTag = `${tag}-index`
  const missing = digestOf(randomBytes(32))
  const config = first.blobs[0] as Blob

  const checks: CheckDefinition[] = [
    {
      name: 'setup: push the blobs (POST then PUT)',
      run: async (context) => { for (const item of blobs) await pushBlob(context, context.repo, item) }
    },
    {
      name: 'setup: push a manifest by tag, another by digest, and an index by tag',
      run: async (context) => {
        await pushManifest(context, context.repo, tag, first.manifest)
        await pushManifest(context, context.repo, second.manifest.digest, second.manifest)
        await pushManifest(context, context.repo, indexTag, top)
      }
    },
    {
      name: 'HEAD of a blob that does not exist is 404',
      run: async (context) => {
        const response = await send(context, { method: 'HEAD', url: context.client.urls.blob(context.repo, missing) })
        expectStatus(response, 404)
        expectEmptyBody(response)
      }
    },
    {
      name: 'HEAD of a blob is 200 with its length and digest, without a body',
      run: async (context) => { await verifyBlobHead(context, context.repo, config) }
    },
    {
      name: 'GET of a blob that does not exist is 404 BLOB_UNKNOWN',
      run: async (context) => {
        expectNotFound(await send(context, { method: 'GET', url: context.client.urls.blob(context.repo, missing) }), ['BLOB_UNKNOWN'])
      }
    },
    {
      name: 'GET of a blob is 200 with its exact bytes',
      run: async (context) => {
        for (const item of [...first.blobs, ranged]) await verifyBlob(context, context.repo, item)
      }
    }
  ]

  const size = ranged.content.length
  const ranges: Array<{ range: string, start?: number, end?: number }> = [
    { range: 'bytes=500-1499', start: 500, end: 1499 },
    { range: 'bytes=500-', start: 500, end: size - 1 },
    { range: 'bytes=-500', start: size - 500, end: size - 1 },
    { range: 'bytes=2000-5000', start: 2000, end: size - 1 },
    { range: 'bytes=500-0' },
    { range: 'bytes=5000-10000' }
  ]
  for (const { range, start, end } of ranges) {
    checks.push({
      name: start === undefined ? `GET of a blob with Range: ${range} (unsatisfiable) is 416` : `GET of a blob with Range: ${range} is 206 with that part`,
      run: async (context) => {
        const response = await send(context, { method: 'GET', url: context.client.urls.blob(context.repo, ranged.digest), headers: { range } })
        if (start === undefined || end === undefined) {
          expectStatus(response, 416)
          return
        }
        expectStatus(response, 206)
        expectBody(response, ranged.content.subarray(start, end + 1))
        expectHeader(response, 'content-length', String(end - start + 1))
        expectHeader(response, 'content-range', `bytes ${start}-${end}/${size}`, `bytes ${start}-${end}/*`)
      }
    })
  }

  checks.push(
    {
      name: 'HEAD of a manifest that does not exist is 404',
      run: async (context) => {
        const response = await send(context, { method: 'HEAD', url: context.client.urls.manifest(context.repo, `missing-${randomBytes(4).toString('hex')}`), headers: { accept: MANIFEST_ACCEPT } })
        expectStatus(response, 404)
        expectEmptyBody(response)
      }
    },
    {
      name: 'HEAD of a manifest by digest is 200 with its media type, length and digest',
      run: async (context) => {
        for (const item of manifests) await verifyManifestHead(context, context.repo, item.digest, item)
      }
    },
    {
      name: 'HEAD of a manifest by tag is 200 with its media type, length and digest',
      run: async (context) => {
        await verifyManifestHead(context, context.repo, tag, first.manifest)
        await verifyManifestHead(context, context.repo, indexTag, top)
      }
    },
    {
      name: 'GET of a manifest by a tag that does not exist is 404',
      run: async (context) => {
        expectNotFound(await send(context, { method: 'GET', url: context.client.urls.manifest(context.repo, `missing-${randomBytes(4).toString('hex')}`), headers: { accept: MANIFEST_ACCEPT } }), ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN'])
      }
    },
    {
      name: 'GET of a manifest by a digest that does not exist is 404',
      run: async (context) => {
        expectNotFound(await send(context, { method: 'GET', url: context.client.urls.manifest(context.repo, missing), headers: { accept: MANIFEST_ACCEPT } }), ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN'])
      }
    },
    {
      name: 'GET of a manifest by digest is 200 with its exact bytes and media type',
      run: async (context) => {
        for (const item of manifests) await verifyManifest(context, context.repo, item.digest, item)
      }
    },
    {
      name: 'GET of a manifest by tag is 200 with its exact bytes and media type',
      run: async (context) => {
        await verifyManifest(context, context.repo, tag, first.manifest)
        await verifyManifest(context, context.repo, indexTag, top)
      }
    },
    {
      name: 'GET and HEAD of a manifest by a reference that cannot exist are 404, as the OCI conformance suite asks',
      run: async (context) => {
        const url = context.client.urls.manifest(context.repo, '.INVALID_MANIFEST_NAME')
        // Only the status, as the OCI suite: a router that finds no route may answer without the spec's body.
        expectStatus(await send(context, { method: 'GET', url, headers: { accept: MANIFEST_ACCEPT } }), 404)
        const head = await send(context, { method: 'HEAD', url, headers: { accept: MANIFEST_ACCEPT } })
        expectStatus(head, 404)
      }
    },
    {
      name: 'GET of a manifest with a malformed digest is 400 or 404 with a spec error code',
      run: async (context) => {
        for (const reference of ['sha256:totallywrong', 'sha256:baddigeststring']) {
          const response = await send(context, { method: 'GET', url: context.client.urls.manifest(context.repo, reference), headers: { accept: MANIFEST_ACCEPT } })
          expectStatus(response, 400, 404)
          expectErrorBody(response)
        }
      }
    },
    {
      name: 'teardown: delete what was pushed',
      run: async (context) => { await cleanUp(context, context.repo, manifests, blobs) }
    }
  )
  return checks
}
