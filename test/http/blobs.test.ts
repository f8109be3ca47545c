import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { build, storageKinds, urls, blobOf, pushBlob, locationPath, errorCode, tempDir } from '../helpers.js'
import { digestOf } from '../../lib/digest.js'

const octet = { 'content-type': 'application/octet-stream' }

for (const kind of storageKinds) {
  t.test(`${kind}: monolithic upload with POST then PUT, then GET and HEAD`, async (t) => {
    const app = await build(t, kind)
    const { content, digest } = blobOf(randomBytes(100_000))
    const post = await app.inject({ method: 'POST', url: urls.blobUpload('a/b') })
    t.equal(post.statusCode, 202)
    t.equal(post.headers.range, '0-0')
    const uuid = post.headers['docker-upload-uuid']
    t.match(uuid, /^[0-9a-f-]{36}$/)
    const location = locationPath(post.headers.location)
    t.equal(location, urls.blobUploadChunk('a/b', uuid as string))
    const put = await app.inject({ method: 'PUT', url: `${location}?digest=${encodeURIComponent(digest)}`, payload: content, headers: octet })
    t.equal(put.statusCode, 201, put.body)
    t.equal(put.headers['docker-content-digest'], digest)
    t.equal(locationPath(put.headers.location), urls.blob('a/b', digest))

    const get = await app.inject({ method: 'GET', url: urls.blob('a/b', digest) })
    t.equal(get.statusCode, 200)
    t.equal(get.headers['content-length'], String(content.length))
    t.equal(get.headers['content-type'], 'application/octet-stream')
    t.equal(get.headers['docker-content-digest'], digest)
    t.equal(get.headers.etag, `"${digest}"`)
    t.equal(get.headers['accept-ranges'], 'bytes')
    t.ok(get.rawPayload.equals(content), 'bytes round trip')

    const head = await app.inject({ method: 'HEAD', url: urls.blob('a/b', digest) })
    t.equal(head.statusCode, 200)
    t.equal(head.headers['content-length'], String(content.length))
    t.equal(head.headers['docker-content-digest'], digest)
    t.equal(head.rawPayload.length, 0)

    const after = await app.inject({ method: 'GET', url: location })
    t.equal(after.statusCode, 404, 'the upload is gone after PUT')
    t.equal(errorCode(after.body), 'BLOB_UPLOAD_UNKNOWN')

    const notModified = await app.inject({ method: 'GET', url: urls.blob('a/b', digest), headers: { 'if-none-match': `"${digest}"` } })
    t.equal(notModified.statusCode, 304)
  })

  t.test(`${kind}: one-request push with POST ?digest=, zero-length blob, sha512`, async (t) => {
    const app = await build(t, kind)
    const { content, digest } = blobOf('single request')
    const post = await app.inject({ method: 'POST', url: urls.blobUpload('repo', { digest }), payload: content, headers: octet })
    t.equal(post.statusCode, 201, post.body)
    t.equal(post.headers['docker-content-digest'], digest)
    t.equal(locationPath(post.headers.location), urls.blob('repo', digest))

    const empty = digestOf('')
    const zero = await app.inject({ method: 'POST', url: urls.blobUpload('repo', { digest: empty }), headers: { 'content-length': '0' } })
    t.equal(zero.statusCode, 201, zero.body)
    const getZero = await app.inject({ method: 'GET', url: urls.blob('repo', empty) })
    t.equal(getZero.statusCode, 200)
    t.equal(getZero.headers['content-length'], '0')

    const sha512 = digestOf(content, 'sha512')
    const start = await app.inject({ method: 'POST', url: urls.blobUpload('repo', { 'digest-algorithm': 'sha512' }) })
    t.equal(start.statusCode, 202)
    const put = await app.inject({ method: 'PUT', url: `${locationPath(start.headers.location)}?digest=${encodeURIComponent(sha512)}`, payload: content, headers: octet })
    t.equal(put.statusCode, 201, put.body)
    t.equal((await app.inject({ method: 'GET', url: urls.blob('repo', sha512) })).body, 'single request')

    const mismatch = await app.inject({ method: 'POST', url: urls.blobUpload('repo', { digest, 'digest-algorithm': 'sha512' }), payload: content, headers: octet })
    t.equal(mismatch.statusCode, 400)
    t.equal(errorCode(mismatch.body), 'DIGEST_INVALID')
    const unknownAlgorithm = await app.inject({ method: 'POST', url: urls.blobUpload('repo', { 'digest-algorithm': 'md5' }) })
    t.equal(unknownAlgorithm.statusCode, 400)
    t.equal(errorCode(unknownAlgorithm.body), 'DIGEST_INVALID')
    const badDigest = await app.inject({ method: 'POST', url: urls.blobUpload('repo', { digest: 'sha256:nothex' }), payload: content, headers: octet })
    t.equal(badDigest.statusCode, 400)
    t.equal(errorCode(badDigest.body), 'DIGEST_INVALID')
    const wrong = await app.inject({ method: 'POST', url: urls.blobUpload('repo', { digest: digestOf('other') }), payload: content, headers: octet })
    t.equal(wrong.statusCode, 400)
    t.equal(errorCode(wrong.body), 'DIGEST_INVALID')
    t.equal((await app.inject({ method: 'HEAD', url: urls.blob('repo', digestOf('other')) })).statusCode, 404, 'nothing stored for a wrong digest')
  })

  t.test(`${kind}: chunked upload with Content-Range, status, out-of-order chunk`, async (t) => {
    const app = await build(t, kind)
    const { content, digest } = blobOf(randomBytes(300_000))
    const post = await app.inject({ method: 'POST', url: urls.blobUpload('chunks') })
    let location = locationPath(post.headers.location)
    const chunks = [content.subarray(0, 100_000), content.subarray(100_000, 250_000), content.subarray(250_000)]
    let offset = 0
    for (const chunk of chunks) {
      const patch = await app.inject({
        method: 'PATCH',
        url: location,
        payload: chunk,
        headers: { ...octet, 'content-range': `${offset}-${offset + chunk.length - 1}` }
      })
      t.equal(patch.statusCode, 202, patch.body)
      offset += chunk.length
      t.equal(patch.headers.range, `0-${offset - 1}`)
      t.equal(patch.headers['content-length'], '0')
      location = locationPath(patch.headers.location)
      const status = await app.inject({ method: 'GET', url: location })
      t.equal(status.statusCode, 204)
      t.equal(status.headers.range, `0-${offset - 1}`)
    }
    const outOfOrder = await app.inject({ method: 'PATCH', url: location, payload: Buffer.from('xx'), headers: { ...octet, 'content-range': '5-6' } })
    t.equal(outOfOrder.statusCode, 416)
    t.equal(errorCode(outOfOrder.body), 'RANGE_INVALID')
    t.equal(outOfOrder.headers.range, `0-${offset - 1}`, 'answers the current range')
    const disagree = await app.inject({ method: 'PATCH', url: location, payload: Buffer.from('xx'), headers: { ...octet, 'content-range': `${offset}-${offset + 5}` } })
    t.equal(disagree.statusCode, 416, 'Content-Range and Content-Length disagree')
    const malformed = await app.inject({ method: 'PATCH', url: location, payload: Buffer.from('xx'), headers: { ...octet, 'content-range': 'bytes 0-1/2' } })
    t.equal(malformed.statusCode, 416)
    t.equal((await app.inject({ method: 'GET', url: location })).headers.range, `0-${offset - 1}`, 'refused chunks changed nothing')

    const badSize = await app.inject({ method: 'PUT', url: `${location}?digest=${encodeURIComponent(digest)}&size=${content.length + 1}` })
    t.equal(badSize.statusCode, 400)
    t.equal(errorCode(badSize.body), 'SIZE_INVALID')
    const badDigest = await app.inject({ method: 'PUT', url: `${location}?digest=${encodeURIComponent(digestOf('nope'))}` })
    t.equal(badDigest.statusCode, 400)
    t.equal(errorCode(badDigest.body), 'DIGEST_INVALID')
    const missingDigest = await app.inject({ method: 'PUT', url: location })
    t.equal(missingDigest.statusCode, 400)
    t.equal(errorCode(missingDigest.body), 'DIGEST_INVALID')
    t.equal((await app.inject({ method: 'GET', url: location })).statusCode, 204, 'a refused PUT keeps the upload')

    const put = await app.inject({ method: 'PUT', url: `${location}?digest=${encodeURIComponent(digest)}&size=${content.length}` })
    t.equal(put.statusCode, 201, put.body)
    const get = await app.inject({ method: 'GET', url: urls.blob('chunks', digest) })
    t.ok(get.rawPayload.equals(content))
  })

  t.test(`${kind}: streamed PATCH without Content-Range (docker's way) and a final chunk on PUT`, async (t) => {
    const app = await build(t, kind)
    const { content, digest } = blobOf(randomBytes(2_000_000))
    const post = await app.inject({ method: 'POST', url: urls.blobUpload('stream') })
    const body = Readable.from((function * () {
      for (let i = 0; i < 1_500_000; i += 64 * 1024) yield content.subarray(i, Math.min(i + 64 * 1024, 1_500_000))
    })())
    const patch = await app.inject({ method: 'PATCH', url: locationPath(post.headers.location), payload: body, headers: { ...octet, 'transfer-encoding': 'chunked' } })
    t.equal(patch.statusCode, 202, patch.body)
    t.equal(patch.headers.range, '0-1499999')
    const put = await app.inject({
      method: 'PUT',
      url: `${locationPath(patch.headers.location)}?digest=${encodeURIComponent(digest)}`,
      payload: content.subarray(1_500_000),
      headers: { ...octet, 'content-range': '1500000-1999999' }
    })
    t.equal(put.statusCode, 201, put.body)
    t.ok((await app.inject({ method: 'GET', url: urls.blob('stream', digest) })).rawPayload.equals(content))
  })

  t.test(`${kind}: range requests`, async (t) => {
    const app = await build(t, kind)
    const content = Buffer.from('0123456789')
    const digest = await pushBlob(app, 'r', content)
    const cases: Array<[string, number, string | undefined, string | undefined]> = [
      ['bytes=2-5', 206, '2345', 'bytes 2-5/10'],
      ['bytes=7-', 206, '789', 'bytes 7-9/10'],
      ['bytes=-3', 206, '789', 'bytes 7-9/10'],
      ['bytes=-30', 206, '0123456789', 'bytes 0-9/10'],
      ['bytes=8-100', 206, '89', 'bytes 8-9/10'],
      ['bytes=10-', 416, undefined, 'bytes */10'],
      ['bytes=5-2', 416, undefined, 'bytes */10'],
      ['bytes=-0', 416, undefined, 'bytes */10'],
      ['bytes=abc', 416, undefined, 'bytes */10'],
      ['pages=1-2', 416, undefined, 'bytes */10'],
      ['bytes=0-1,4-5', 200, '0123456789', undefined]
    ]
    for (const [range, status, body, contentRange] of cases) {
      const response = await app.inject({ method: 'GET', url: urls.blob('r', digest), headers: { range } })
      t.equal(response.statusCode, status, range)
      if (body !== undefined) t.equal(response.body, body, range)
      t.equal(response.headers['content-range'], contentRange, range)
      if (status === 416) t.equal(errorCode(response.body), 'RANGE_INVALID')
    }
    const head = await app.inject({ method: 'HEAD', url: urls.blob('r', digest), headers: { range: 'bytes=2-5' } })
    t.equal(head.statusCode, 206)
    t.equal(head.headers['content-length'], '4')
  })

  t.test(`${kind}: unknown, malformed and unlinked blobs`, async (t) => {
    const app = await build(t, kind)
    const digest = await pushBlob(app, 'owner', Buffer.from('private'))
    const other = await app.inject({ method: 'GET', url: urls.blob('someone/else', digest) })
    t.equal(other.statusCode, 404, 'not readable from a repository without a link')
    t.equal(errorCode(other.body), 'BLOB_UNKNOWN')
    t.equal((await app.inject({ method: 'HEAD', url: urls.blob('someone/else', digest) })).statusCode, 404)
    const unknown = await app.inject({ method: 'GET', url: urls.blob('owner', digestOf('never pushed')) })
    t.equal(unknown.statusCode, 404)
    t.equal(errorCode(unknown.body), 'BLOB_UNKNOWN')
    const malformed = await app.inject({ method: 'GET', url: '/v2/owner/blobs/sha256:xyz' })
    t.equal(malformed.statusCode, 400)
    t.equal(errorCode(malformed.body), 'DIGEST_INVALID')
  })

  t.test(`${kind}: cross-repository mount`, async (t) => {
    const app = await build(t, kind)
    const digest = await pushBlob(app, 'source', Buffer.from('shared layer'))
    const mount = await app.inject({ method: 'POST', url: urls.blobUpload('target', { mount: digest, from: 'source' }) })
    t.equal(mount.statusCode, 201)
    t.equal(mount.headers['docker-content-digest'], digest)
    t.equal(locationPath(mount.headers.location), urls.blob('target', digest))
    t.equal((await app.inject({ method: 'GET', url: urls.blob('target', digest) })).body, 'shared layer')

    const missing = await app.inject({ method: 'POST', url: urls.blobUpload('target2', { mount: digest, from: 'nowhere' }) })
    t.equal(missing.statusCode, 202, 'falls back to an upload when the source lacks the blob')
    t.ok(missing.headers['docker-upload-uuid'])
    const noFrom = await app.inject({ method: 'POST', url: urls.blobUpload('target3', { mount: digest }) })
    t.equal(noFrom.statusCode, 202, 'mount without from is off by default')

    const auto = await build(t, kind, { mountWithoutFrom: true })
    const autoDigest = await pushBlob(auto, 'source', Buffer.from('found anywhere'))
    const autoMount = await auto.inject({ method: 'POST', url: urls.blobUpload('elsewhere', { mount: autoDigest }) })
    t.equal(autoMount.statusCode, 201, 'automatic content discovery when enabled')
    const badFrom = await app.inject({ method: 'POST', url: urls.blobUpload('target', { mount: digest, from: 'BAD NAME' }) })
    t.equal(badFrom.statusCode, 400)
    t.equal(errorCode(badFrom.body), 'NAME_INVALID')
  })

  t.test(`${kind}: deletes`, async (t) => {
    const closed = await build(t, kind)
    const digest = await pushBlob(closed, 'd', Buffer.from('keep me'))
    const refused = await closed.inject({ method: 'DELETE', url: urls.blob('d', digest) })
    t.equal(refused.statusCode, 405)
    t.equal(errorCode(refused.body), 'UNSUPPORTED')
    t.equal((await closed.inject({ method: 'GET', url: urls.blob('d', digest) })).statusCode, 200, 'still there')

    const open = await build(t, kind, { delete: true })
    const deletable = await pushBlob(open, 'd', Buffer.from('delete me'))
    await pushBlob(open, 'other', Buffer.from('delete me'))
    const deleted = await open.inject({ method: 'DELETE', url: urls.blob('d', deletable) })
    t.equal(deleted.statusCode, 202)
    t.equal((await open.inject({ method: 'GET', url: urls.blob('d', deletable) })).statusCode, 404)
    t.equal((await open.inject({ method: 'GET', url: urls.blob('other', deletable) })).statusCode, 200, 'other links untouched')
    const again = await open.inject({ method: 'DELETE', url: urls.blob('d', deletable) })
    t.equal(again.statusCode, 404)
    t.equal(errorCode(again.body), 'BLOB_UNKNOWN')
  })

  t.test(`${kind}: cancel an upload; unknown and foreign uploads`, async (t) => {
    const app = await build(t, kind)
    const post = await app.inject({ method: 'POST', url: urls.blobUpload('mine') })
    const location = locationPath(post.headers.location)
    const uuid = post.headers['docker-upload-uuid'] as string
    const foreign = await app.inject({ method: 'PATCH', url: urls.blobUploadChunk('theirs', uuid), payload: Buffer.from('x'), headers: octet })
    t.equal(foreign.statusCode, 404, 'an upload id of another repository is unknown')
    t.equal(errorCode(foreign.body), 'BLOB_UPLOAD_UNKNOWN')
    t.equal((await app.inject({ method: 'GET', url: urls.blobUploadChunk('mine', 'not-a-real-upload') })).statusCode, 404)
    t.equal((await app.inject({ method: 'GET', url: urls.blobUploadChunk('mine', 'bad..id') })).statusCode, 404)
    const cancel = await app.inject({ method: 'DELETE', url: location })
    t.equal(cancel.statusCode, 204)
    for (const method of ['GET', 'PATCH', 'PUT', 'DELETE'] as const) {
      const response = await app.inject({ method, url: method === 'PUT' ? `${location}?digest=${encodeURIComponent(digestOf(''))}` : location })
      t.equal(response.statusCode, 404, `${method} after cancel`)
      t.equal(errorCode(response.body), 'BLOB_UPLOAD_UNKNOWN')
    }
  })

  t.test(`${kind}: the same blob pushed by many clients at once is stored once, every push succeeds`, async (t) => {
    const app = await build(t, kind)
    const content = randomBytes(500_000)
    const digest = digestOf(content)
    const results = await Promise.all(Array.from({ length: 16 }, async (_, i) => {
      const post = await app.inject({ method: 'POST', url: urls.blobUpload(`many/r${i % 4}`) })
      const put = await app.inject({ method: 'PUT', url: `${locationPath(post.headers.location)}?digest=${encodeURIComponent(digest)}`, payload: content, headers: octet })
      return put.statusCode
    }))
    t.same(results, Array(16).fill(201))
    for (let i = 0; i < 4; i++) {
      const get = await app.inject({ method: 'GET', url: urls.blob(`many/r${i}`, digest) })
      t.equal(createHash('sha256').update(get.rawPayload).digest('hex'), digest.slice(7))
    }
  })

  t.test(`${kind}: two concurrent PATCHes to one upload never interleave`, async (t) => {
    const app = await build(t, kind)
    const post = await app.inject({ method: 'POST', url: urls.blobUpload('race') })
    const location = locationPath(post.headers.location)
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => { release = resolve })
    const slowBody = Readable.from((async function * () {
      yield Buffer.alloc(1000, 1)
      await gate
      yield Buffer.alloc(1000, 1)
    })())
    // The first writer holds the upload once its first bytes reach storage.
    const firstWrite = new Promise<void>((resolve) => {
      const stop = app.ociRegistry.driver.observe((event) => {
        if (event.action === 'writer_write') { stop(); resolve() }
      })
    })
    const first = app.inject({ method: 'PATCH', url: location, payload: slowBody, headers: { ...octet, 'transfer-encoding': 'chunked' } })
    await firstWrite
    const second = await app.inject({ method: 'PATCH', url: location, payload: Buffer.alloc(500, 2), headers: octet })
    release()
    t.equal(second.statusCode, 416, 'the second writer is refused')
    t.equal(errorCode(second.body), 'RANGE_INVALID')
    t.equal((await first).statusCode, 202)
    const status = await app.inject({ method: 'GET', url: location })
    t.equal(status.headers.range, '0-1999', 'only the first writer\'s bytes')
    const put = await app.inject({ method: 'PUT', url: `${location}?digest=${encodeURIComponent(digestOf(Buffer.alloc(2000, 1)))}` })
    t.equal(put.statusCode, 201)
  })
}

t.test('filesystem: an upload continues on another instance sharing the root (a restart, or a replica)', async (t) => {
  const root = await tempDir(t)
  const one = await build(t, 'filesystem', { root })
  const two = await build(t, 'filesystem', { root })
  const content = randomBytes(600_000)
  const digest = digestOf(content)
  const post = await one.inject({ method: 'POST', url: urls.blobUpload('shared') })
  let location = locationPath(post.headers.location)
  const servers = [one, two, one, two]
  for (let i = 0; i < 4; i++) {
    const chunk = content.subarray(i * 150_000, (i + 1) * 150_000)
    const server = servers[i]
    if (server === undefined) throw new Error('no server')
    const patch = await server.inject({ method: 'PATCH', url: location, payload: chunk, headers: { ...octet, 'content-range': `${i * 150_000}-${(i + 1) * 150_000 - 1}` } })
    t.equal(patch.statusCode, 202, `chunk ${i}`)
    location = locationPath(patch.headers.location)
  }
  const put = await two.inject({ method: 'PUT', url: `${location}?digest=${encodeURIComponent(digest)}` })
  t.equal(put.statusCode, 201, put.body)
  t.ok((await one.inject({ method: 'GET', url: urls.blob('shared', digest) })).rawPayload.equals(content), 'the other instance serves it')

  const started = await one.inject({ method: 'POST', url: urls.blobUpload('restart') })
  await one.inject({ method: 'PATCH', url: locationPath(started.headers.location), payload: content.subarray(0, 100), headers: octet })
  await one.close()
  const reborn = await build(t, 'filesystem', { root })
  const finish = await reborn.inject({ method: 'PUT', url: `${locationPath(started.headers.location)}?digest=${encodeURIComponent(digestOf(content.subarray(0, 300)))}`, payload: content.subarray(100, 300), headers: octet })
  t.equal(finish.statusCode, 201, 'finished after a restart with the right digest')
})

t.test('a pull during a push of the same digest never sees partial content', async (t) => {
  for (const kind of storageKinds) {
    const app = await build(t, kind)
    const content = randomBytes(400_000)
    const digest = digestOf(content)
    const post = await app.inject({ method: 'POST', url: urls.blobUpload('pp') })
    let location = locationPath(post.headers.location)
    for (let offset = 0; offset < content.length; offset += 100_000) {
      const patch = await app.inject({ method: 'PATCH', url: location, payload: content.subarray(offset, offset + 100_000), headers: { ...octet, 'content-range': `${offset}-${offset + 99_999}` } })
      location = locationPath(patch.headers.location)
      const pull = await app.inject({ method: 'GET', url: urls.blob('pp', digest) })
      t.equal(pull.statusCode, 404, `${kind}: unknown while ${offset + 100_000} bytes are in`)
    }
    t.equal((await app.inject({ method: 'PUT', url: `${location}?digest=${encodeURIComponent(digest)}` })).statusCode, 201)
    const pull = await app.inject({ method: 'GET', url: urls.blob('pp', digest) })
    t.ok(pull.rawPayload.equals(content), `${kind}: whole once published`)
  }
})

t.test('a driver with a minimum chunk size announces it, and smaller chunks still work', async (t) => {
  const { InMemoryDriver } = await import('../../lib/storage/drivers/inmemory.js')
  const driver = Object.assign(new InMemoryDriver(), { minChunkSize: 5 * 1024 * 1024 })
  const { default: Fastify } = await import('fastify')
  const { default: registry } = await import('../../plugins/registry.js')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(registry, { storage: driver })
  const post = await app.inject({ method: 'POST', url: urls.blobUpload('s3like') })
  t.equal(post.headers['oci-chunk-min-length'], String(5 * 1024 * 1024))
  const content = Buffer.from('tiny chunks')
  let location = locationPath(post.headers.location)
  for (let i = 0; i < content.length; i += 4) {
    const patch = await app.inject({ method: 'PATCH', url: location, payload: content.subarray(i, i + 4), headers: { ...octet, 'content-range': `${i}-${Math.min(i + 4, content.length) - 1}` } })
    t.equal(patch.statusCode, 202)
    location = locationPath(patch.headers.location)
  }
  t.equal((await app.inject({ method: 'PUT', url: `${location}?digest=${encodeURIComponent(digestOf(content))}` })).statusCode, 201)
  t.equal((await app.inject({ method: 'GET', url: urls.blob('s3like', digestOf(content)) })).body, 'tiny chunks')
})

t.test('abandoned uploads are purged by age, running ones are kept', async (t) => {
  const { RegistryService } = await import('../../lib/storage/registry.js')
  const { InMemoryDriver } = await import('../../lib/storage/drivers/inmemory.js')
  const { FilesystemDriver } = await import('../../lib/storage/drivers/filesystem.js')
  const { pathFor } = await import('../../lib/storage/paths.js')
  for (const driver of [new InMemoryDriver(), new FilesystemDriver({ root: await tempDir(t) })]) {
    const registry = new RegistryService(driver)
    const old = await registry.repository('purge/a').uploads.start()
    await registry.repository('purge/a').uploads.append(old.uuid, [Buffer.from('abandoned')])
    // Abandoned an hour ago: its start time says so, without the test waiting for a clock.
    const anHourAgo = new Date(Date.now() - 3_600_000)
    await driver.putContent(pathFor({ kind: 'uploadStartedAt', name: 'purge/a', uuid: old.uuid }), Buffer.from(anHourAgo.toISOString()))
    const cutoff = new Date(Date.now() - 60_000)
    const fresh = await registry.repository('purge/b').uploads.start()
    const purged = await registry.purgeUploads(cutoff)
    t.same(purged.map((upload) => [upload.name, upload.uuid]), [['purge/a', old.uuid]], driver.name)
    await t.rejects(registry.repository('purge/a').uploads.state(old.uuid), { code: 'BLOB_UPLOAD_UNKNOWN' })
    t.equal((await registry.repository('purge/b').uploads.state(fresh.uuid)).offset, 0)
  }
})
