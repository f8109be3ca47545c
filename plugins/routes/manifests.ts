/** Manifests: PUT with validation and multiple tags, GET and HEAD with ETag, DELETE by digest or tag. */

import type { FastifyReply, FastifyRequest } from 'fastify'
import { RegistryError } from '../../lib/errors.js'
import { parseReference } from '../../lib/reference.js'
import type { routesByName } from '../../lib/routes.js'
import { bodyOf, repositoryOf, type RouteHandlers, type RouteRequest } from './types.js'
import { originOf } from './origin.js'

type ManifestRoute = typeof routesByName.manifest

/** Reads a manifest body, refusing one over `limit` bytes with 413 before reading it all. */
export async function readLimited (request: FastifyRequest, limit: number): Promise<Buffer> {
  const tooLarge = (): RegistryError => new RegistryError('MANIFEST_INVALID', { reason: `manifest larger than ${limit} bytes` }, { statusCode: 413 })
  const declared = Number(request.headers['content-length'])
  if (Number.isFinite(declared) && declared > limit) throw tooLarge()
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of bodyOf(request)) {
    size += chunk.byteLength
    if (size > limit) throw tooLarge()
    chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
  }
  return Buffer.concat(chunks, size)
}

async function serveManifest (request: RouteRequest<ManifestRoute, 'GET' | 'HEAD'>, reply: FastifyReply, withBody: boolean): Promise<unknown> {
  const repository = repositoryOf(request.ociContext)
  const reference = parseReference(request.params.reference)
  const manifest = withBody ? await repository.pullManifest(reference, originOf(request)) : await repository.getManifest(reference)
  reply.headers({
    'docker-content-digest': manifest.digest,
    etag: `"${manifest.digest}"`
  })
  const ifNoneMatch = request.headers['if-none-match']
  if (ifNoneMatch !== undefined && ifNoneMatch.split(',').some((tag) => tag.trim() === `"${manifest.digest}"`)) {
    // A 304 carries the validators, not the representation's metadata (RFC 9110, 15.4.5).
    return await reply.code(304).send()
  }
  reply.headers({ 'content-type': manifest.mediaType, 'content-length': manifest.content.length })
  return await reply.code(200).send(withBody ? manifest.content : undefined)
}

export function manifestHandlers (options: { manifestBodyLimit: number }): RouteHandlers {
  return {
    manifest: {
      GET: async (request, reply) => await serveManifest(request, reply, true),
      HEAD: async (request, reply) => await serveManifest(request, reply, false),
      PUT: async (request, reply) => {
        const repository = repositoryOf(request.ociContext)
        const reference = parseReference(request.params.reference)
        const query = request.query
        const extraTags = query.tag === undefined ? [] : Array.isArray(query.tag) ? query.tag : [query.tag]
        const body = await readLimited(request, options.manifestBodyLimit)
        const result = await repository.putManifest(body, request.headers['content-type'], reference, extraTags, originOf(request))
        reply.code(201).headers({
          location: request.ociContext.urls.manifest(repository.name, result.digest),
          'docker-content-digest': result.digest,
          'content-length': 0
        })
        if (result.subject !== undefined) reply.header('oci-subject', result.subject)
        if (extraTags.length > 0) reply.header('oci-tag', result.tags)
        return await reply.send()
      },
      DELETE: async (request, reply) => {
        const repository = repositoryOf(request.ociContext)
        await repository.deleteManifest(parseReference(request.params.reference), originOf(request))
        return await reply.code(202).header('content-length', 0).send()
      }
    }
  }
}
