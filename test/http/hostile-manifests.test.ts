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
      // Not a media type at all (no `type/subtype`): refused before any manifest logic.
      const asHeader = await putManifest(app, 'demo/app', 'header', Buffer.from('{"schemaVersion":2,"manifests":[]}'), name)
      t.equal(asHeader.statusCode, 415, `Content-Type ${name}`)
      t.equal(errorCode(asHeader.body), 'UNSUPPORTED', 'in the spec body')
    }
    t.equal((await app.inject({ url: urls.manifest('demo/app', 'header') })).statusCode, 404, 'nothing was stored')
  })
}
