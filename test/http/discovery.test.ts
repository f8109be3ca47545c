import t from 'tap'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { build, storageKinds, urls, pushBlob, prepareImage, putManifest, locationPath, errorCode, tempDir } from '../helpers.js'
import { MediaTypes, EMPTY_BLOB_DIGEST } from '../../lib/manifest/media-types.js'
import { digestOf } from '../../lib/digest.js'
import type { FastifyInstance } from 'fastify'

/** Follows Link headers from `url` and returns every page's items. */
async function allPages (app: FastifyInstance, url: string, key: 'tags' | 'repositories' | 'manifests'): Promise<unknown[][]> {
  const pages: unknown[][] = []
  let next: string | undefined = url
  while (next !== undefined) {
    const response: Awaited<ReturnType<FastifyInstance['inject']>> = await app.inject({ method: 'GET', url: next })
    if (response.statusCode !== 200) throw new Error(`${next}: ${response.statusCode} ${response.body}`)
    pages.push(response.json()[key])
    const link: unknown = response.headers.link
    const match: RegExpExecArray | null = typeof link === 'string' ? /^<([^>]+)>; rel="next"$/.exec(link) : null
    next = match?.[1] === undefined ? undefined : locationPath(match[1])
    if (pages.length > 1000) throw new Error('paging does not end')
  }
  return pages
}

for (const kind of storageKinds) {
  t.test(`${kind}: tags list in lexical order with paging edges`, async (t) => {
    const app = await build(t, kind)
    const image = await prepareImage(app, 'tagged')
    const tags = ['b', 'a', 'C', '1.0', '_x', 'a-1', 'latest']
    const put = await putManifest(app, 'tagged', image.digest, image.manifest, undefined, { tag: tags })
    t.equal(put.statusCode, 201)
    const sorted = [...tags].sort()
    const all = await app.inject({ method: 'GET', url: urls.tags('tagged') })
    t.same(all.json(), { name: 'tagged', tags: sorted })
    t.equal(all.headers.link, undefined)
    t.same((await allPages(app, urls.tags('tagged', { n: 2 }), 'tags')).flat(), sorted, 'pages of 2 cover everything once')
    const exact = await allPages(app, urls.tags('tagged', { n: 7 }), 'tags')
    t.equal(exact.length, 1, 'an exact page boundary has no next link')
    const zero = await app.inject({ method: 'GET', url: urls.tags('tagged', { n: 0 }) })
    t.same(zero.json().tags, [])
    t.equal(zero.headers.link, undefined)
    const afterLast = await app.inject({ method: 'GET', url: urls.tags('tagged', { last: 'zzz' }) })
    t.same(afterLast.json().tags, [], 'last past the end')
    const afterA = await app.inject({ method: 'GET', url: urls.tags('tagged', { n: 2, last: 'a' }) })
    t.same(afterA.json().tags, sorted.filter((tag) => tag > 'a').slice(0, 2))
    for (const bad of ['-1', 'abc', '1.5']) {
      const response = await app.inject({ method: 'GET', url: `${urls.tags('tagged')}?n=${bad}` })
      t.equal(response.statusCode, 400, `n=${bad}`)
      t.equal(errorCode(response.body), 'PAGINATION_NUMBER_INVALID')
    }
    await pushBlob(app, 'untagged', Buffer.from('only a blob'))
    t.same((await app.inject({ method: 'GET', url: urls.tags('untagged') })).json(), { name: 'untagged', tags: [] }, 'a repository without tags lists none')
  })

  t.test(`${kind}: catalog lists repositories with content, paged`, async (t) => {
    const app = await build(t, kind, { delete: true })
    t.same((await app.inject({ method: 'GET', url: urls.catalog() })).json(), { repositories: [] }, 'empty registry')
    const names = ['b/c', 'a', 'a/b', 'a-c', 'z/y/x', 'blobs/manifests']
    for (const name of names) await pushBlob(app, name, Buffer.from(name))
    const started = await app.inject({ method: 'POST', url: urls.blobUpload('only-an-upload') })
    t.equal(started.statusCode, 202)
    const sorted = [...names].sort()
    t.same((await app.inject({ method: 'GET', url: urls.catalog() })).json().repositories, sorted)
    t.same((await allPages(app, urls.catalog({ n: 4 }), 'repositories')).flat(), sorted)
    t.same((await app.inject({ method: 'GET', url: urls.catalog({ n: 0 }) })).json().repositories, [])
    t.same((await app.inject({ method: 'GET', url: urls.catalog({ last: 'b/c' }) })).json().repositories, ['blobs/manifests', 'z/y/x'])
    const bad = await app.inject({ method: 'GET', url: `${urls.catalog()}?n=x` })
    t.equal(errorCode(bad.body), 'PAGINATION_NUMBER_INVALID')
    await app.inject({ method: 'DELETE', url: urls.blob('a-c', digestOf('a-c')) })
    t.notOk((await app.inject({ method: 'GET', url: urls.catalog() })).json().repositories.includes('a-c'), 'a repository emptied by deletes leaves the catalog')
  })

  t.test(`${kind}: referrers with and without filters, after deletes, paged`, async (t) => {
    const app = await build(t, kind, { delete: true })
    const subject = await prepareImage(app, 'ref')
    const subjectDescriptor = { mediaType: MediaTypes.ociManifest, digest: subject.digest, size: subject.manifest.length }
    const empty = await app.inject({ method: 'GET', url: urls.referrers('ref', subject.digest) })
    t.equal(empty.statusCode, 200, 'unknown subject: an empty index, not 404')
    t.equal(empty.headers['content-type'], MediaTypes.ociIndex)
    t.same(empty.json(), { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] })

    await pushBlob(app, 'ref', Buffer.from('{}'))
    const referrers = []
    for (const [i, artifactType] of ['application/vnd.example.sbom', 'application/vnd.example.sig', 'application/vnd.example.sbom'].entries()) {
      const layer = await pushBlob(app, 'ref', Buffer.from(`payload ${i}`))
      const manifest = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        artifactType,
        config: { mediaType: MediaTypes.ociEmpty, digest: EMPTY_BLOB_DIGEST, size: 2 },
        layers: [{ mediaType: 'application/octet-stream', digest: layer, size: `payload ${i}`.length }],
        subject: subjectDescriptor,
        annotations: { index: String(i) }
      }))
      const put = await putManifest(app, 'ref', digestOf(manifest), manifest)
      t.equal(put.statusCode, 201, put.body)
      t.equal(put.headers['oci-subject'], subject.digest, 'OCI-Subject even though the subject is not pushed yet')
      referrers.push({ mediaType: MediaTypes.ociManifest, digest: digestOf(manifest), size: manifest.length, artifactType, annotations: { index: String(i) } })
    }
    const imageReferrer = await prepareImage(app, 'ref', { seed: 'signed image', subject: subjectDescriptor })
    await putManifest(app, 'ref', imageReferrer.digest, imageReferrer.manifest)
    referrers.push({ mediaType: MediaTypes.ociManifest, digest: imageReferrer.digest, size: imageReferrer.manifest.length, artifactType: 'application/vnd.oci.image.config.v1+json' })
    const expected = [...referrers].sort((a, b) => a.digest < b.digest ? -1 : 1)

    const all = await app.inject({ method: 'GET', url: urls.referrers('ref', subject.digest) })
    t.same(all.json().manifests, expected)
    t.equal(all.headers['oci-filters-applied'], undefined)
    const filtered = await app.inject({ method: 'GET', url: urls.referrers('ref', subject.digest, { artifactType: 'application/vnd.example.sbom' }) })
    t.equal(filtered.headers['oci-filters-applied'], 'artifactType')
    t.same(filtered.json().manifests, expected.filter((d) => d.artifactType === 'application/vnd.example.sbom'))
    t.same((await allPages(app, urls.referrers('ref', subject.digest, { n: 3 }), 'manifests')).flat(), expected, 'paged with Link')

    const gone = referrers[1]?.digest as string
    t.equal((await app.inject({ method: 'DELETE', url: urls.manifest('ref', gone) })).statusCode, 202)
    t.same((await app.inject({ method: 'GET', url: urls.referrers('ref', subject.digest) })).json().manifests, expected.filter((d) => d.digest !== gone), 'exact after a delete')
    t.same((await app.inject({ method: 'GET', url: urls.referrers('other', subject.digest) })).json().manifests, [], 'per repository')
    const bad = await app.inject({ method: 'GET', url: '/v2/ref/referrers/sha256:nothex' })
    t.equal(bad.statusCode, 400)
    t.equal(errorCode(bad.body), 'DIGEST_INVALID')
  })
}

t.test('filesystem: tags list stays fast with 10,000 tags', async (t) => {
  // On tmpfs when there is one: this measures listing, not the disk's metadata speed.
  const root = await tempDir(t, 'oci-registry-tags-', true)
  const app = await build(t, 'filesystem', { root })
  const image = await prepareImage(app, 'many')
  await putManifest(app, 'many', 'v00000', image.manifest)
  // The tag links are written straight into the tree, as another registry on this root would.
  const tags = Array.from({ length: 10_000 }, (_, i) => `v${String(i).padStart(5, '0')}`)
  const tagsRoot = join(root, 'docker/registry/v2/repositories/many/_manifests/tags')
  for (let i = 0; i < tags.length; i += 500) {
    await Promise.all(tags.slice(i, i + 500).map(async (tag) => {
      await mkdir(join(tagsRoot, tag, 'current'), { recursive: true })
      await writeFile(join(tagsRoot, tag, 'current', 'link'), image.digest)
    }))
  }
  const started = process.hrtime.bigint()
  const pages = await allPages(app, urls.tags('many', { n: 1000 }), 'tags')
  t.equal(pages.length, 10)
  t.same(pages.flat(), tags)
  t.comment(`listed 10,000 tags in pages of 1000 in ${Number(process.hrtime.bigint() - started) / 1e6} ms`)
  const get = await app.inject({ method: 'GET', url: urls.manifest('many', 'v09999') })
  t.equal(get.headers['docker-content-digest'], image.digest, 'a tag written by another registry resolves')
})
