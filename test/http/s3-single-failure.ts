/**
 * The single-failure sweep: each S3 request of a push is failed in turn (as a 500 the SDK does
 * not retry), then the push is retried. Publishing must be correct whichever call fails: the
 * client gets an error and storage is unchanged, or the blob is published whole and a retry
 * succeeds; an upload left behind is one the upload purge removes, and no multipart upload stays
 * open.
 */

import type { Test } from 'tap'
import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import Fastify, { type FastifyInstance } from 'fastify'
import registry from '../../plugins/registry.js'
import { digestOf } from '../../lib/digest.js'
import { S3Driver } from '../../lib/storage/drivers/s3.js'
import { RegistryService } from '../../lib/storage/registry.js'
import { locationPath, s3Storage, urls } from '../helpers.js'

export const MiB = 1024 * 1024
const octet = { 'content-type': 'application/octet-stream' }

/** A driver whose `failAt`-th S3 request (counted from `reset`) fails once. */
class FaultyDriver {
  calls: string[] = []
  failAt = 0
  failed: string | undefined

  constructor (readonly driver: S3Driver) {
    driver.client.middlewareStack.add((next, context) => async (args) => {
      this.calls.push(context.commandName ?? 'unknown')
      if (this.calls.length === this.failAt) {
        this.failed = context.commandName
        throw Object.assign(new Error('injected failure'), { name: 'InternalError', $metadata: { httpStatusCode: 500 } })
      }
      return await next(args)
    }, { step: 'initialize', name: 'injectFailure' })
  }

  reset (failAt: number): void {
    this.calls = []
    this.failAt = failAt
    this.failed = undefined
  }
}

export type Push = (app: FastifyInstance, name: string, content: Buffer) => Promise<number>

/** POST, then PUT with the whole body. */
export const twoStep: Push = async (app, name, content) => {
  const post = await app.inject({ method: 'POST', url: urls.blobUpload(name) })
  if (post.statusCode !== 202) return post.statusCode
  const location = locationPath(post.headers.location)
  const put = await app.inject({ method: 'PUT', url: `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digestOf(content))}`, payload: content, headers: octet })
  return put.statusCode
}

/** POST, two PATCHes (the first past S3's smallest part), then PUT with the last bytes. */
export const chunked: Push = async (app, name, content) => {
  const cuts = [0, 5 * MiB + 1, 5 * MiB + 1000, content.length]
  const post = await app.inject({ method: 'POST', url: urls.blobUpload(name) })
  if (post.statusCode !== 202) return post.statusCode
  let location = locationPath(post.headers.location)
  for (let i = 0; i < 3; i++) {
    const last = i === 2
    const url = last ? `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digestOf(content))}` : location
    const response = await app.inject({
      method: last ? 'PUT' : 'PATCH',
      url,
      payload: content.subarray(cuts[i], cuts[i + 1]),
      headers: { ...octet, 'content-range': `${cuts[i] as number}-${(cuts[i + 1] as number) - 1}` }
    })
    if (response.statusCode !== (last ? 201 : 202)) return response.statusCode
    if (!last) location = locationPath(response.headers.location)
  }
  return 201
}

export async function everyFailure (t: Test, push: Push, content: Buffer): Promise<void> {
  const options = await s3Storage()
  const { driver: _kind, ...driverOptions } = options
  const warnings: string[] = []
  // The injected failure happens before the SDK's retries, which would otherwise hide it.
  const driver = new S3Driver({ ...driverOptions, log: { warn: (_object, message) => { warnings.push(message) } } })
  const faulty = new FaultyDriver(driver)
  const app = Fastify({ logger: false })
  await app.register(registry, { storage: driver })
  t.teardown(() => app.close())

  faulty.reset(0)
  t.equal(await push(app, 'clean/run', content), 201, 'a push without failures')
  const calls = faulty.calls.length
  t.ok(calls > 3, `${calls} S3 requests: ${faulty.calls.join(', ')}`)

  const digest = digestOf(content)
  for (let failAt = 1; failAt <= calls; failAt++) {
    const name = `fail/at-${failAt}`
    faulty.reset(failAt)
    const status = await push(app, name, content)
    const failed = faulty.failed ?? 'nothing'
    faulty.reset(0)
    const get = await app.inject({ method: 'GET', url: urls.blob(name, digest) })
    if (status === 201) {
      t.ok(get.statusCode === 200 && get.rawPayload.equals(content), `${failAt} (${failed}): answered 201, the blob is whole`)
      continue
    }
    t.ok(status >= 500, `${failAt} (${failed}): answered ${status}`)
    t.ok(get.statusCode === 404 || get.rawPayload.equals(content), `${failAt} (${failed}): the blob is absent or whole (${get.statusCode})`)
    t.equal(await push(app, name, content), 201, `${failAt} (${failed}): a retry succeeds`)
    const again = await app.inject({ method: 'GET', url: urls.blob(name, digest) })
    t.ok(again.statusCode === 200 && again.rawPayload.equals(content), `${failAt} (${failed}): then the blob is whole`)
  }

  // Whatever the failures left in _uploads, the purge removes; no multipart upload stays open.
  await new RegistryService(driver).purgeUploads(new Date(Date.now() + 60_000))
  const keys = (await driver.client.send(new ListObjectsV2Command({ Bucket: driver.bucket }))).Contents?.map((object) => object.Key as string) ?? []
  t.same(keys.filter((key) => key.includes('/_uploads/') || key.includes('~')), [], 'no upload or segment is left after the purge')
  const open = await driver.client.send(new ListMultipartUploadsCommand({ Bucket: driver.bucket })).catch(() => undefined)
  t.same(open?.Uploads ?? [], [], 'no multipart upload is left open')
  t.comment(`warnings: ${[...new Set(warnings)].join('; ') || 'none'}`)
}
