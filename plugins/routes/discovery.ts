/** Discovery: tags list, catalog and referrers, each paged with `n` and `last`. */

import type { FastifyReply } from 'fastify'
import { paginate, parsePageSize, type Page } from '../../lib/paging.js'
import { MediaTypes } from '../../lib/manifest/media-types.js'
import { repositoryOf, type RouteHandlers } from './types.js'

/** Default page size of the catalog, as CNCF distribution's. */
const CATALOG_PAGE = 100

function sendPage<T> (reply: FastifyReply, page: Page<T>, nextUrl: (last: string) => string, body: unknown, contentType = 'application/json; charset=utf-8'): FastifyReply {
  if (page.next !== undefined) reply.header('link', `<${nextUrl(page.next)}>; rel="next"`)
  // A Buffer, so that Fastify adds no charset to the OCI index media type.
  return reply.code(200).header('content-type', contentType).send(Buffer.from(JSON.stringify(body)))
}

export const discoveryHandlers: RouteHandlers = {
  tags: {
    GET: async (request, reply) => {
      const repository = repositoryOf(request.ociContext)
      const query = request.query
      const n = parsePageSize(query.n)
      const tags = await repository.listTags()
      const page = paginate(tags, (tag) => tag, { ...(n === undefined ? {} : { n }), ...(query.last === undefined ? {} : { last: query.last }) })
      return sendPage(reply, page, (last) => request.ociContext.urls.tags(repository.name, { ...(n === undefined ? {} : { n }), last }),
        { name: repository.name, tags: page.items })
    }
  },
  catalog: {
    GET: async (request, reply) => {
      const query = request.query
      const n = parsePageSize(query.n) ?? CATALOG_PAGE
      const page = paginate(await request.server.ociRegistry.catalog(), (name) => name, { n, ...(query.last === undefined ? {} : { last: query.last }) })
      return sendPage(reply, page, (last) => request.ociContext.urls.catalog({ n, last }), { repositories: page.items })
    }
  },
  referrers: {
    GET: async (request, reply) => {
      const repository = repositoryOf(request.ociContext)
      const subject = request.params.digest
      const query = request.query
      const n = parsePageSize(query.n)
      let descriptors = await repository.referrers(subject)
      if (query.artifactType !== undefined) {
        descriptors = descriptors.filter((descriptor) => descriptor.artifactType === query.artifactType)
        reply.header('oci-filters-applied', 'artifactType')
      }
      const page = paginate(descriptors, (descriptor) => descriptor.digest, { ...(n === undefined ? {} : { n }), ...(query.last === undefined ? {} : { last: query.last }) })
      const nextUrl = (last: string): string => request.ociContext.urls.referrers(repository.name, subject, {
        ...(query.artifactType === undefined ? {} : { artifactType: query.artifactType }),
        ...(n === undefined ? {} : { n }),
        last
      })
      return sendPage(reply, page, nextUrl, { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: page.items }, MediaTypes.ociIndex)
    }
  }
}
