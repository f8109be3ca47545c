/**
 * Behaviour aligned with CNCF distribution where the differential corpus (the integration
 * tier) showed it right and us wrong: no Content-Length on a 204, no representation metadata
 * on a 304, 400 DIGEST_INVALID for a digest of an unsupported algorithm.
 */

import t from 'tap'
import { build, storageKinds, urls, blobOf, pushBlob, prepareImage, putManifest, locationPath, errorCode } from '../helpers.js'

const md5 = `md5:${'a'.repeat(32)}`

for (const kind of storageKinds) {
  t.test(`${kind}: a 204 has no Content-Length`, async (t) => {
    const app = await build(t, kind)
    const post = await app.inject({ method: 'POST', url: urls.blobUpload('parity/a') })
    t.equal(post.statusCode, 202)
    t.equal(post.headers['content-length'], '0', 'a 202 says its body is empty')
    const location = locationPath(post.headers.location)
    const status = await app.inject({ method: 'GET', url: location })
    t.equal(status.statusCode, 204)
    t.equal(status.headers['content-length'], undefined, 'upload status')
    t.equal(status.headers.range, '0-0')
    const cancel = await app.inject({ method: 'DELETE', url: location })
    t.equal(cancel.statusCode, 204)
    t.equal(cancel.headers['content-length'], undefined, 'upload cancel')
  })

  t.test(`${kind}: a 304 carries the validators only`, async (t) => {
    const app = await build(t, kind)
    const { content, digest } = blobOf('cached blob')
    await pushBlob(app, 'parity/b', content)
    const blob = await app.inject({ method: 'GET', url: urls.blob('parity/b', digest), headers: { 'if-none-match': `"${digest}"` } })
    t.equal(blob.statusCode, 304)
    t.equal(blob.headers.etag, `"${digest}"`)
    t.equal(blob.headers['docker-content-digest'], digest)
    t.equal(blob.headers['content-type'], undefined)
    t.equal(blob.headers['accept-ranges'], undefined)
    t.equal(blob.rawPayload.length, 0)
    const full = await app.inject({ method: 'GET', url: urls.blob('parity/b', digest) })
    t.equal(full.headers['content-type'], 'application/octet-stream', 'a 200 still has them')
    t.equal(full.headers['accept-ranges'], 'bytes')

    const image = await prepareImage(app, 'parity/b')
    t.equal((await putManifest(app, 'parity/b', 'v1', image.manifest)).statusCode, 201)
    const manifest = await app.inject({ method: 'GET', url: urls.manifest('parity/b', 'v1'), headers: { 'if-none-match': `"${image.digest}"` } })
    t.equal(manifest.statusCode, 304)
    t.equal(manifest.headers.etag, `"${image.digest}"`)
    t.equal(manifest.headers['content-type'], undefined)
    t.equal(manifest.headers['content-length'], undefined)
    t.equal(manifest.rawPayload.length, 0)
    const head = await app.inject({ method: 'HEAD', url: urls.manifest('parity/b', 'v1') })
    t.equal(head.headers['content-type'], 'application/vnd.oci.image.manifest.v1+json', 'a 200 still has them')
    t.equal(head.headers['content-length'], String(image.manifest.length))
  })

  t.test(`${kind}: a digest of an unsupported algorithm is 400 DIGEST_INVALID`, async (t) => {
    const app = await build(t, kind)
    for (const [what, request] of [
      ['GET blob', { method: 'GET' as const, url: urls.blob('parity/c', md5) }],
      ['HEAD manifest', { method: 'HEAD' as const, url: urls.manifest('parity/c', md5) }],
      ['POST ?digest-algorithm=', { method: 'POST' as const, url: urls.blobUpload('parity/c', { 'digest-algorithm': 'md5' }) }],
      ['POST ?digest=', { method: 'POST' as const, url: urls.blobUpload('parity/c', { digest: md5 }), payload: 'x' }]
    ] as const) {
      const response = await app.inject(request)
      t.equal(response.statusCode, 400, what)
      if (request.method !== 'HEAD') t.equal(errorCode(response.body), 'DIGEST_INVALID', what)
    }
    const post = await app.inject({ method: 'POST', url: urls.blobUpload('parity/c') })
    const put = await app.inject({ method: 'PUT', url: `${locationPath(post.headers.location)}?digest=${encodeURIComponent(md5)}`, payload: 'x', headers: { 'content-type': 'application/octet-stream' } })
    t.equal(put.statusCode, 400, 'PUT completing an upload')
    t.equal(errorCode(put.body), 'DIGEST_INVALID')
  })
}
