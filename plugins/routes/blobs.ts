/** GET, HEAD and DELETE of blobs. */

import type { FastifyReply } from 'fastify'
import { RegistryError } from '../../lib/errors.js'
import { parseDigest } from '../../lib/digest.js'
import type { ByteRange } from '../../lib/storage/blobs.js'
import type { routesByName } from '../../lib/routes.js'
import { repositoryOf, type RouteHandlers, type RouteRequest } from './types.js'
import { originOf } from './origin.js'

/**
 * Parses a `Range` header against a blob's size: undefined to serve it whole, a range to serve
 * 206, RANGE_INVALID (416) when malformed or unsatisfiable. Several ranges are served whole,
 * which RFC 9110 allows.
 */
export function parseRange (header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined || size === 0) return undefined
  const unsatisfiable = (): RegistryError => new RegistryError('RANGE_INVALID', { range: header, size }, {
    headers: { 'Content-Range': `bytes */${size}` }
  })
  const match = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header)
  if (match === null) {
    if (/^bytes=[\d\s,-]+$/.test(header) && header.includes(',')) return undefined
    throw unsatisfiable()
  }
  const [, first = '', last = ''] = match
  if (first === '' && last === '') throw unsatisfiable()
  if (first === '') {
    const suffix = Number(last)
    if (suffix === 0) throw unsatisfiable()
    return { start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(first)
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1)
  if (start >= size || (last !== '' && Number(last) < start)) throw unsatisfiable()
  return { start, end }
}

async function serveBlob (request: RouteRequest<typeof routesByName.blob, 'GET' | 'HEAD'>, reply: FastifyReply, withBody: boolean): Promise<unknown> {
  const repository = repositoryOf(request.ociContext)
  const digest = request.params.digest
  parseDigest(digest)
  const blob = await repository.statBlob(digest)
  reply.headers({
    'docker-content-digest': digest,
    etag: `"${digest}"`,
    'cache-control': 'max-age=31536000'
  })
  const ifNoneMatch = request.headers['if-none-match']
  if (ifNoneMatch !== undefined && ifNoneMatch.split(',').some((tag) => tag.trim() === `"${digest}"` || tag.trim() === '*')) {
    // A 304 carries the validators, not the representation's metadata (RFC 9110, 15.4.5).
    return await reply.code(304).send()
  }
  reply.headers({ 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' })
  const range = parseRange(request.headers.range, blob.size)
  if (!withBody) {
    // A HEAD is answered here, whatever the driver's redirects: it reads nothing.
    const length = range === undefined ? blob.size : range.end - range.start + 1
    return await reply.code(range === undefined ? 200 : 206).header('content-length', length).send()
  }
  const served = await repository.pullBlob(blob, range, originOf(request))
  if ('redirect' in served) return await reply.code(307).header('location', served.redirect).send()
  const length = range === undefined ? blob.size : range.end - range.start + 1
  reply.code(range === undefined ? 200 : 206).header('content-length', length)
  if (range !== undefined) reply.header('content-range', `bytes ${range.start}-${range.end}/${blob.size}`)
  return await reply.send(served.stream)
}

export const blobHandlers: RouteHandlers = {
  blob: {
    GET: async (request, reply) => await serveBlob(request, reply, true),
    HEAD: async (request, reply) => await serveBlob(request, reply, false),
    DELETE: async (request, reply) => {
      const repository = repositoryOf(request.ociContext)
      const digest = request.params.digest
      await repository.deleteBlob(digest, originOf(request))
      return await reply.code(202).headers({ 'docker-content-digest': digest, 'content-length': 0 }).send()
    }
  }
}
