import t from 'tap'
import { build, storageKinds, urls, pushBlob, prepareImage, putManifest, locationPath, errorCode } from '../helpers.js'
import { digestOf } from '../../lib/digest.js'
import { MediaTypes, EMPTY_BLOB_DIGEST } from '../../lib/manifest/media-types.js'

for (const kind of storageKinds) {
  t.test(`${kind}: OCI and Docker image manifests round trip by tag and digest`, async (t) => {
    const app = await build(t, kind)
    for (const mediaType of [MediaTypes.ociManifest, MediaTypes.dockerManifest]) {
      const image = await prepareImage(app, 'lib/app', { mediaType, seed: mediaType })
      const put = await putManifest(app, 'lib/app', 'v1', image.manifest, mediaType)
      t.equal(put.statusCode, 201, put.body)
      t.equal(put.headers['docker-content-digest'], image.digest)
      t.equal(locationPath(put.headers.location), urls.manifest('lib/app', image.digest))
      for (const reference of ['v1', image.digest]) {
        const get = await app.inject({ method: 'GET', url: urls.manifest('lib/app', reference), headers: { accept: mediaType } })
        t.equal(get.statusCode, 200)
        t.equal(get.headers['content-type'], mediaType)
        t.equal(get.headers['docker-content-digest'], image.digest)
        t.equal(get.headers.etag, `"${image.digest}"`)
        t.ok(get.rawPayload.equals(image.manifest), 'exact bytes')
        const head = await app.inject({ method: 'HEAD', url: urls.manifest('lib/app', reference) })
        t.equal(head.statusCode, 200)
        t.equal(head.headers['content-length'], String(image.manifest.length))
        t.equal(head.headers['docker-content-digest'], image.digest)
        t.equal(head.rawPayload.length, 0)
      }
      const cached = await app.inject({ method: 'GET', url: urls.manifest('lib/app', 'v1'), headers: { 'if-none-match': `"${image.digest}"` } })
      t.equal(cached.statusCode, 304)
    }
  })

  t.test(`${kind}: the exact bytes are stored and the digest is of the bytes as received`, async (t) => {
    const app = await build(t, kind)
    const image = await prepareImage(app, 'bytes')
    const pretty = Buffer.from(JSON.stringify(JSON.parse(image.manifest.toString()), null, 3) + '\n')
    const put = await putManifest(app, 'bytes', 'pretty', pretty)
    t.equal(put.headers['docker-content-digest'], digestOf(pretty))
    t.ok((await app.inject({ method: 'GET', url: urls.manifest('bytes', 'pretty') })).rawPayload.equals(pretty))
    const byDigest = await putManifest(app, 'bytes', digestOf(pretty), pretty)
    t.equal(byDigest.statusCode, 201, 'PUT by its own digest')
    const wrongDigest = await putManifest(app, 'bytes', digestOf('other'), pretty)
    t.equal(wrongDigest.statusCode, 400)
    t.equal(errorCode(wrongDigest.body), 'DIGEST_INVALID')
  })

  t.test(`${kind}: image index and Docker manifest list`, async (t) => {
    const app = await build(t, kind)
    const amd = await prepareImage(app, 'multi', { seed: 'amd64' })
    const arm = await prepareImage(app, 'multi', { seed: 'arm64' })
    for (const mediaType of [MediaTypes.ociIndex, MediaTypes.dockerManifestList]) {
      const index = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType,
        manifests: [amd, arm].map((image, i) => ({ mediaType: MediaTypes.ociManifest, digest: image.digest, size: image.manifest.length, platform: { architecture: i === 0 ? 'amd64' : 'arm64', os: 'linux' } }))
      }))
      if (mediaType === MediaTypes.ociIndex) {
        const early = await putManifest(app, 'multi', 'all', index, mediaType)
        t.equal(early.statusCode, 400, 'children must exist first')
        t.equal(errorCode(early.body), 'MANIFEST_BLOB_UNKNOWN')
        t.match(early.json().errors[0].detail, { digest: amd.digest })
        await putManifest(app, 'multi', amd.digest, amd.manifest)
        await putManifest(app, 'multi', arm.digest, arm.manifest)
      }
      const put = await putManifest(app, 'multi', 'all', index, mediaType)
      t.equal(put.statusCode, 201, put.body)
      const get = await app.inject({ method: 'GET', url: urls.manifest('multi', 'all') })
      t.equal(get.headers['content-type'], mediaType)
      t.ok(get.rawPayload.equals(index))
    }
  })

  t.test(`${kind}: artifacts with artifactType and the empty config`, async (t) => {
    const app = await build(t, kind)
    const layer = await pushBlob(app, 'art', Buffer.from('sbom'))
    const artifact = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      artifactType: 'application/vnd.example.sbom',
      config: { mediaType: MediaTypes.ociEmpty, digest: EMPTY_BLOB_DIGEST, size: 2 },
      layers: [{ mediaType: 'application/json', digest: layer, size: 4 }]
    }))
    const put = await putManifest(app, 'art', 'sbom', artifact)
    t.equal(put.statusCode, 201, put.body)
  })

  t.test(`${kind}: validation refuses bad manifests and stores nothing`, async (t) => {
    const app = await build(t, kind)
    const image = await prepareImage(app, 'v')
    const json = JSON.parse(image.manifest.toString())
    const cases: Array<[string, Buffer | string, string, string, number]> = [
      ['not JSON', 'nope', MediaTypes.ociManifest, 'MANIFEST_INVALID', 400],
      ['JSON array', '[]', MediaTypes.ociManifest, 'MANIFEST_INVALID', 400],
      ['type disagreement', image.manifest, MediaTypes.dockerManifest, 'MANIFEST_INVALID', 400],
      ['unknown media type', JSON.stringify({ ...json, mediaType: 'application/x-unknown' }), 'application/x-unknown', 'MANIFEST_INVALID', 400],
      ['schemaVersion 3', JSON.stringify({ ...json, schemaVersion: 3 }), MediaTypes.ociManifest, 'MANIFEST_INVALID', 400],
      ['layers not an array', JSON.stringify({ ...json, layers: {} }), MediaTypes.ociManifest, 'MANIFEST_INVALID', 400],
      ['negative size', JSON.stringify({ ...json, config: { ...json.config, size: -1 } }), MediaTypes.ociManifest, 'MANIFEST_INVALID', 400],
      ['bad layer digest', JSON.stringify({ ...json, layers: [{ ...json.layers[0], digest: 'sha256:zz' }] }), MediaTypes.ociManifest, 'DIGEST_INVALID', 400],
      ['unknown layer', JSON.stringify({ ...json, layers: [{ ...json.layers[0], digest: digestOf('missing') }] }), MediaTypes.ociManifest, 'MANIFEST_BLOB_UNKNOWN', 400],
      ['unknown config', JSON.stringify({ ...json, config: { ...json.config, digest: digestOf('missing config') } }), MediaTypes.ociManifest, 'MANIFEST_BLOB_UNKNOWN', 400],
      ['schema 1 unsigned', JSON.stringify({ schemaVersion: 1, name: 'v', tag: 'x', fsLayers: [], history: [] }), MediaTypes.dockerSchema1, 'MANIFEST_UNVERIFIED', 400]
    ]
    for (const [label, body, contentType, code, status] of cases) {
      const response = await putManifest(app, 'v', 'bad', Buffer.from(body), contentType)
      t.equal(response.statusCode, status, label)
      t.equal(errorCode(response.body), code, label)
    }
    const badTag = await putManifest(app, 'v', '-bad', image.manifest)
    t.equal(badTag.statusCode, 400)
    t.equal(errorCode(badTag.body), 'TAG_INVALID')
    t.equal((await app.inject({ method: 'GET', url: urls.manifest('v', 'bad') })).statusCode, 404, 'nothing stored')
    const tags = await app.inject({ method: 'GET', url: urls.tags('v') })
    t.same(tags.json().tags, [])

    const external = JSON.stringify({ ...json, layers: [...json.layers, { mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: digestOf('windows base'), size: 10, urls: ['https://example.com/layer'] }] })
    t.equal((await putManifest(app, 'v', 'foreign', Buffer.from(external))).statusCode, 201, 'non-distributable layers are exempt')
  })

  t.test(`${kind}: manifest size limit answers 413 with a spec body`, async (t) => {
    const app = await build(t, kind, { manifestBodyLimit: 2048 })
    const image = await prepareImage(app, 'big')
    const json = JSON.parse(image.manifest.toString())
    const big = Buffer.from(JSON.stringify({ ...json, annotations: { filler: 'x'.repeat(4096) } }))
    const response = await putManifest(app, 'big', 'huge', big)
    t.equal(response.statusCode, 413)
    t.equal(errorCode(response.body), 'MANIFEST_INVALID')
    t.equal((await putManifest(app, 'big', 'ok', image.manifest)).statusCode, 201)
  })

  t.test(`${kind}: unknown manifests and repositories`, async (t) => {
    const app = await build(t, kind)
    const unknownRepo = await app.inject({ method: 'GET', url: urls.manifest('nobody', 'latest') })
    t.equal(unknownRepo.statusCode, 404)
    t.equal(errorCode(unknownRepo.body), 'NAME_UNKNOWN')
    const image = await prepareImage(app, 'somebody')
    await putManifest(app, 'somebody', 'latest', image.manifest)
    const unknownTag = await app.inject({ method: 'GET', url: urls.manifest('somebody', 'nope') })
    t.equal(unknownTag.statusCode, 404)
    t.equal(errorCode(unknownTag.body), 'MANIFEST_UNKNOWN')
    const unknownDigest = await app.inject({ method: 'HEAD', url: urls.manifest('somebody', digestOf('x')) })
    t.equal(unknownDigest.statusCode, 404)
    const otherRepo = await app.inject({ method: 'GET', url: urls.manifest('elsewhere', image.digest) })
    t.equal(otherRepo.statusCode, 404, 'manifests are per repository')
    const badDigest = await app.inject({ method: 'GET', url: '/v2/somebody/manifests/sha256:123' })
    t.equal(badDigest.statusCode, 400)
    t.equal(errorCode(badDigest.body), 'DIGEST_INVALID')
    const unknownTags = await app.inject({ method: 'GET', url: urls.tags('nobody') })
    t.equal(unknownTags.statusCode, 404)
    t.equal(errorCode(unknownTags.body), 'NAME_UNKNOWN')
  })

  t.test(`${kind}: several tags in one PUT, all or none`, async (t) => {
    const app = await build(t, kind, { maxTagsPerRequest: 12 })
    const image = await prepareImage(app, 'multi-tag')
    const tags = Array.from({ length: 10 }, (_, i) => `t${i}`)
    const put = await putManifest(app, 'multi-tag', image.digest, image.manifest, undefined, { tag: tags })
    t.equal(put.statusCode, 201, put.body)
    const ociTags = put.headers['oci-tag']
    t.same(Array.isArray(ociTags) ? ociTags : [ociTags], tags)
    t.same((await app.inject({ method: 'GET', url: urls.tags('multi-tag') })).json().tags, [...tags].sort())
    const badOne = await putManifest(app, 'multi-tag', image.digest, image.manifest, undefined, { tag: ['good', '-bad'] })
    t.equal(badOne.statusCode, 400)
    t.equal(errorCode(badOne.body), 'TAG_INVALID')
    t.equal((await app.inject({ method: 'GET', url: urls.manifest('multi-tag', 'good') })).statusCode, 404, 'none written')
    const tooMany = await putManifest(app, 'multi-tag', image.digest, image.manifest, undefined, { tag: Array.from({ length: 13 }, (_, i) => `x${i}`) })
    t.equal(tooMany.statusCode, 414)
    t.equal((await app.inject({ method: 'GET', url: urls.manifest('multi-tag', 'x0') })).statusCode, 404)
  })

  t.test(`${kind}: deletes by digest and by tag`, async (t) => {
    const closed = await build(t, kind)
    const kept = await prepareImage(closed, 'd')
    await putManifest(closed, 'd', 'v1', kept.manifest)
    const refused = await closed.inject({ method: 'DELETE', url: urls.manifest('d', kept.digest) })
    t.equal(refused.statusCode, 405)
    t.equal(errorCode(refused.body), 'UNSUPPORTED')

    const app = await build(t, kind, { delete: true })
    const image = await prepareImage(app, 'd')
    await putManifest(app, 'd', 'a', image.manifest)
    await putManifest(app, 'd', 'b', image.manifest)
    await putManifest(app, 'd', 'c', image.manifest)
    const other = await prepareImage(app, 'd', { seed: 'other' })
    await putManifest(app, 'd', 'other', other.manifest)

    const untag = await app.inject({ method: 'DELETE', url: urls.manifest('d', 'a') })
    t.equal(untag.statusCode, 202)
    t.equal((await app.inject({ method: 'GET', url: urls.manifest('d', 'a') })).statusCode, 404)
    t.equal((await app.inject({ method: 'GET', url: urls.manifest('d', image.digest) })).statusCode, 200, 'deleting a tag keeps the manifest')
    const missingTag = await app.inject({ method: 'DELETE', url: urls.manifest('d', 'a') })
    t.equal(missingTag.statusCode, 404)
    t.equal(errorCode(missingTag.body), 'MANIFEST_UNKNOWN')

    const byDigest = await app.inject({ method: 'DELETE', url: urls.manifest('d', image.digest) })
    t.equal(byDigest.statusCode, 202)
    t.equal((await app.inject({ method: 'GET', url: urls.manifest('d', image.digest) })).statusCode, 404)
    t.same((await app.inject({ method: 'GET', url: urls.tags('d') })).json().tags, ['other'], 'every tag on it is gone, others stay')
    const again = await app.inject({ method: 'DELETE', url: urls.manifest('d', image.digest) })
    t.equal(again.statusCode, 404)
  })
}

t.test('schema 1: signed manifests verified and served as stored, unsigned and tampered refused, option to reject all', async (t) => {
  const { signSchema1, sampleManifest, ecKey } = await import('../lib/manifest/schema1-fixtures.js')
  for (const kind of storageKinds) {
    const app = await build(t, kind)
    const layers = [await pushBlob(app, 'library/sample', Buffer.from('schema1 layer a')), await pushBlob(app, 'library/sample', Buffer.from('schema1 layer b'))]
    const body = sampleManifest()
    body.fsLayers = layers.map((blobSum) => ({ blobSum }))
    const key = ecKey('P-256')
    const signed = signSchema1(body, [key.privateKey])
    const put = await putManifest(app, 'library/sample', 'latest', signed, MediaTypes.dockerSchema1Signed)
    t.equal(put.statusCode, 201, put.body)
    const digest = put.headers['docker-content-digest'] as string
    t.not(digest, digestOf(signed), 'known by the digest of its signed payload, as distribution does')
    const get = await app.inject({ method: 'GET', url: urls.manifest('library/sample', 'latest') })
    t.equal(get.headers['content-type'], MediaTypes.dockerSchema1Signed)
    t.equal(get.headers['docker-content-digest'], digest)
    t.ok(get.rawPayload.equals(signed), 'served as stored, signatures included')
    t.equal((await app.inject({ method: 'GET', url: urls.manifest('library/sample', digest) })).statusCode, 200)

    const tampered = Buffer.from(signed.toString().replace('"tag": "latest"', '"tag": "lateST"'))
    const refused = await putManifest(app, 'library/sample', 'lateST', tampered, MediaTypes.dockerSchema1Signed)
    t.equal(refused.statusCode, 400)
    t.equal(errorCode(refused.body), 'MANIFEST_UNVERIFIED')
    const wrongTag = await putManifest(app, 'library/sample', 'other', signed, MediaTypes.dockerSchema1Signed)
    t.equal(errorCode(wrongTag.body), 'TAG_INVALID', 'the signed tag must match the URL')
    const wrongName = await putManifest(app, 'library/other', 'latest', signed, MediaTypes.dockerSchema1Signed)
    t.equal(errorCode(wrongName.body), 'NAME_INVALID', 'the signed name must match the URL')
    const missingLayer = sampleManifest()
    const unknown = await putManifest(app, 'library/sample', 'latest', signSchema1(missingLayer, [key.privateKey]), MediaTypes.dockerSchema1Signed)
    t.equal(errorCode(unknown.body), 'MANIFEST_BLOB_UNKNOWN')

    const strict = await build(t, kind, { schema1: 'reject' })
    await pushBlob(strict, 'library/sample', Buffer.from('schema1 layer a'))
    await pushBlob(strict, 'library/sample', Buffer.from('schema1 layer b'))
    const rejected = await putManifest(strict, 'library/sample', 'latest', signed, MediaTypes.dockerSchema1Signed)
    t.equal(rejected.statusCode, 400)
    t.equal(errorCode(rejected.body), 'MANIFEST_INVALID')
  }
})
