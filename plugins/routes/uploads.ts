/** Blob uploads: start (monolithic, mount, or a session), chunks, completion, status, cancel. */

import type { Static } from '@sinclair/typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { RegistryError } from '../../lib/errors.js'
import { parseAlgorithm, parseDigest, DEFAULT_ALGORITHM, type Algorithm } from '../../lib/digest.js'
import type { schemas } from '../../lib/routes.js'
import { uploadRange, type UploadState } from '../../lib/storage/uploads.js'
import type { Repository } from '../../lib/storage/registry.js'
import { originOf } from './origin.js'
import { bodyOf, hasBody, repositoryOf, type RouteHandlers } from './types.js'

type ChunkHeaders = Static<typeof schemas.uploadChunkHeaders>

/** The chunk's `Content-Range` (`a-b`, inclusive), checked against its `Content-Length`. */
export function parseContentRange (headers: ChunkHeaders): { start: number, end: number } | undefined {
  const header = headers['content-range']
  if (header === undefined) return undefined
  const [first = '', last = ''] = header.replace(/^bytes=/, '').split('-')
  const start = Number(first)
  const end = Number(last)
  if (end < start) throw new RegistryError('RANGE_INVALID', { contentRange: header, reason: 'end before start' })
  const length = headers['content-length']
  if (length !== undefined && Number(length) !== end - start + 1) {
    throw new RegistryError('RANGE_INVALID', { contentRange: header, contentLength: Number(length), reason: 'Content-Range and Content-Length disagree' })
  }
  return { start, end }
}

function replyInProgress (request: FastifyRequest, reply: FastifyReply, repository: Repository, state: UploadState, status: number): FastifyReply {
  reply.code(status).headers({
    location: request.ociContext.urls.blobUploadChunk(repository.name, state.uuid),
    range: uploadRange(state.offset),
    'docker-upload-uuid': state.uuid
  })
  // RFC 9110 forbids Content-Length on a 204.
  if (status !== 204) reply.header('content-length', 0)
  return reply.send()
}

function replyCreated (request: FastifyRequest, reply: FastifyReply, repository: Repository, digest: string): FastifyReply {
  return reply.code(201).headers({
    location: request.ociContext.urls.blob(repository.name, digest),
    'docker-content-digest': digest,
    'content-length': 0
  }).send()
}

export function uploadHandlers (): RouteHandlers {
  return {
    'blob-upload': {
      POST: async (request, reply) => {
        const repository = repositoryOf(request.ociContext)
        const query = request.query
        const origin = originOf(request)
        if (query.mount !== undefined) {
          const { access } = request.ociContext
          const mounted = await repository.mountBlob(query.mount, query.from, {
            mayPull: (name) => access.allows('repository', name, 'pull'),
            unrestricted: access.unrestricted
          }, origin)
          if (mounted !== undefined) {
            request.ociContext.log.debug({ digest: mounted.digest, from: query.from }, 'blob mounted')
            return replyCreated(request, reply, repository, mounted.digest)
          }
        }
        let algorithm: Algorithm = DEFAULT_ALGORITHM
        if (query['digest-algorithm'] !== undefined) algorithm = parseAlgorithm(query['digest-algorithm'])
        if (query.digest !== undefined) {
          const parsed = parseDigest(query.digest)
          if (query['digest-algorithm'] !== undefined && parsed.algorithm !== algorithm) {
            throw new RegistryError('DIGEST_INVALID', { digest: query.digest, reason: `digest-algorithm is ${algorithm}` })
          }
          const blob = await repository.pushBlob(query.digest, bodyOf(request), origin)
          return replyCreated(request, reply, repository, blob.digest)
        }
        const state = await repository.startUpload(algorithm, origin)
        const minChunk = repository.service.driver.minChunkSize
        if (minChunk !== undefined) reply.header('oci-chunk-min-length', minChunk)
        return replyInProgress(request, reply, repository, state, 202)
      }
    },
    'blob-upload-chunk': {
      GET: async (request, reply) => {
        const repository = repositoryOf(request.ociContext)
        const state = await repository.uploadStatus(request.params.uuid)
        return replyInProgress(request, reply, repository, state, 204)
      },
      PATCH: async (request, reply) => {
        const repository = repositoryOf(request.ociContext)
        const uuid = request.params.uuid
        const range = parseContentRange(request.headers)
        const state = await repository.appendUpload(uuid, bodyOf(request), range?.start, originOf(request))
        return replyInProgress(request, reply, repository, state, 202)
      },
      PUT: async (request, reply) => {
        const repository = repositoryOf(request.ociContext)
        const uuid = request.params.uuid
        const query = request.query
        const range = parseContentRange(request.headers)
        const descriptor = await repository.completeUpload(uuid, query.digest, {
          ...(query.size === undefined ? {} : { size: Number(query.size) }),
          ...(hasBody(request) ? { body: bodyOf(request) } : {}),
          ...(range === undefined ? {} : { start: range.start })
        }, originOf(request))
        return replyCreated(request, reply, repository, descriptor.digest)
      },
      DELETE: async (request, reply) => {
        const repository = repositoryOf(request.ociContext)
        await repository.cancelUpload(request.params.uuid, originOf(request))
        return await reply.code(204).send()
      }
    }
  }
}
