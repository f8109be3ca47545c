/**
 * The registry's HTTP behaviour that depends on S3 itself, on any S3-compatible server: the
 * fast tier runs it on s3rver (s3.test.ts), the integration tier on Swift's s3api.
 */

import type { Test } from 'tap'
import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import registry from '../../plugins/registry.js'
import { digestOf } from '../../lib/digest.js'
import type { StorageOptions } from '../../lib/options.js'
import { S3Driver } from '../../lib/storage/drivers/s3.js'
import { pathFor } from '../../lib/storage/paths.js'
import { locationPath, pushBlob, urls } from '../helpers.js'

export type S3Storage = Extract<StorageOptions, { driver: 's3' }>

/** `storage`: the options of a fresh bucket, for each app the suite builds. */
export function s3HttpSuite (t: Test, storage: () => Promise<S3Storage>): void {
  async function build (t: Test, extra: Partial<S3Storage> = {}): Promise<FastifyInstance> {
    const app = Fastify({ logger: false })
    await app.register(registry, { storage: { ...await storage(), ...extra } })
    t.teardown(() => app.close())
    return app
  }

  t.test('s3: POST announces S3\'s smallest part as OCI-Chunk-Min-Length', async (t) => {
    const app = await build(t)
    const post = await app.inject({ method: 'POST', url: urls.blobUpload('chunks') })
    t.equal(post.statusCode, 202)
    t.equal(post.headers['oci-chunk-min-length'], '5242880')
  })

  t.test('s3 with redirect: blob GETs answer 307 to a presigned URL that serves the blob', async (t) => {
    const app = await build(t, { redirect: true, redirectExpirySeconds: 300 })
    const content = randomBytes(200_000)
    const digest = await pushBlob(app, 'redirected', content)
    const get = await app.inject({ method: 'GET', url: urls.blob('redirected', digest) })
    t.equal(get.statusCode, 307)
    const location = get.headers.location as string
    t.match(location, /^http:\/\/127\.0\.0\.1:\d+\/.*X-Amz-Signature=/, 'to a signed URL of the S3 service')
    t.match(location, /X-Amz-Expires=300/, 'with the configured expiry')
    const direct = await fetch(location)
    t.equal(direct.status, 200)
    t.ok(Buffer.from(await direct.arrayBuffer()).equals(content), 'the URL serves the blob')

    const unknown = await app.inject({ method: 'GET', url: urls.blob('redirected', `sha256:${'0'.repeat(64)}`) })
    t.equal(unknown.statusCode, 404, 'an unknown blob is still 404, not a redirect')
    const other = await app.inject({ method: 'GET', url: urls.blob('elsewhere', digest) })
    t.equal(other.statusCode, 404, 'nor is a blob of another repository redirected')
    t.equal(locationPath(get.headers.location).includes(digest.slice(7)), true, 'the URL names the blob\'s key')
  })

  t.test('s3: an upload rewritten by another replica with as many other bytes is re-read, not trusted', async (t) => {
    const options = await storage()
    const app = Fastify({ logger: false })
    await app.register(registry, { storage: options })
    t.teardown(() => app.close())
    const { driver: _driver, ...driverOptions } = options
    const replica = new S3Driver(driverOptions)
    t.teardown(() => replica.close())

    const mine = randomBytes(100_000)
    const theirs = randomBytes(100_000)
    const post = await app.inject({ method: 'POST', url: urls.blobUpload('race/repo') })
    const location = locationPath(post.headers.location)
    const uuid = post.headers['docker-upload-uuid'] as string
    const patch = await app.inject({ method: 'PATCH', url: location, payload: mine, headers: { 'content-type': 'application/octet-stream' } })
    t.equal(patch.statusCode, 202)
    // Another process's session on the same upload won the race: same size, other bytes.
    const writer = await replica.writer(pathFor({ kind: 'uploadData', name: 'race/repo', uuid }), false)
    await writer.write(theirs)
    await writer.commit()

    const finish = locationPath(patch.headers.location)
    const separator = finish.includes('?') ? '&' : '?'
    const wrong = await app.inject({ method: 'PUT', url: `${finish}${separator}digest=${encodeURIComponent(digestOf(mine))}` })
    t.equal(wrong.statusCode, 400, 'the digest of the bytes this process hashed no longer matches the upload')
    t.equal(JSON.parse(wrong.body).errors[0].code, 'DIGEST_INVALID')
    const right = await app.inject({ method: 'PUT', url: `${finish}${separator}digest=${encodeURIComponent(digestOf(theirs))}` })
    t.equal(right.statusCode, 201, 'the digest of what is stored is accepted')
    const get = await app.inject({ method: 'GET', url: urls.blob('race/repo', digestOf(theirs)) })
    t.ok(get.rawPayload.equals(theirs), 'and the blob is what is stored')
  })
}
