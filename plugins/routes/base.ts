import type { RouteHandlers } from './types.js'

export const baseHandlers: RouteHandlers = {
  base: {
    GET: async (_request, reply) => {
      return await reply.header('content-type', 'application/json; charset=utf-8').send('{}')
    }
  }
}
