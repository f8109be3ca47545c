/**
 * Behaviour aligned with CNCF distribution where the differential corpus (the integration
 * tier) showed it right and us wrong: no Content-Length on a 204, no representation metadata
 * on a 304, 400 DIGEST_INVALID for a digest of an unsupported algorithm.
 */

import t from 'tap'
import { build, storageKinds, urls, locationPath } from '../helpers.js'

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
}
