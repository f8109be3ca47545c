/**
 * Manifests whose media type is a built-in property name of JavaScript objects: refused as
 * unsupported media types, never stored (they once passed a lookup in a plain object).
 */

import t from 'tap'
import { build, errorCode, putManifest, storageKinds, urls } from '../helpers.js'

const NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf']

for (const kind of storageKinds) {
  t.test(`${kind}: built-in property names are not manifest media types`, async (t) => {
    const app = await build(t, kind)
    for (const name of NAMES) {
      const inBody = Buffer.from(`{"schemaVersion":2,"mediaType":${JSON.stringify(name)},"manifests":[]}`)
      const asBody = await putManifest(app, 'demo/app', 'proto', inBody, 'application/json')
      t.equal(asBody.statusCode, 400, `mediaType ${name} in the body`)
      t.equal(errorCode(asBody.body), 'MANIFEST_INVALID')
    }
    t.equal((await app.inject({ url: urls.manifest('demo/app', 'proto') })).statusCode, 404, 'nothing was stored')
    for (const name of NAMES) {
      // A Content-Type that is no manifest type is ignored, as for any other: the type is inferred.
      const asHeader = await putManifest(app, 'demo/app', 'inferred', Buffer.from('{"schemaVersion":2,"manifests":[]}'), name)
      t.equal(asHeader.statusCode, 201, `Content-Type ${name}`)
      const served = await app.inject({ url: urls.manifest('demo/app', 'inferred') })
      t.equal(served.headers['content-type'], 'application/vnd.oci.image.index.v1+json', 'served with the inferred type')
    }
  })
}
