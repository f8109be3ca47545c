import type { FastifyRequest } from 'fastify'
import type { EventOrigin } from '../../lib/events.js'

/** Who makes this request and how, for the write path's policy hooks and events. */
export function originOf (request: FastifyRequest): EventOrigin {
  const userAgent = request.headers['user-agent']
  return {
    ...(request.ociContext.user === undefined ? {} : { actor: request.ociContext.user }),
    request: {
      id: String(request.id),
      addr: request.ip,
      ...(request.headers.host === undefined ? {} : { host: request.headers.host }),
      method: request.method,
      ...(userAgent === undefined ? {} : { userAgent })
    }
  }
}
