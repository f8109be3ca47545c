/**
 * The umbrella plugin a user registers. Encapsulated on purpose (not wrapped in
 * fastify-plugin): its error handler, parsers, hooks and decorators stay inside, so the host
 * app is untouched outside `/v2/`.
 */

import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { resolveOptions, type RegistryOptions } from '../lib/options.js'

export type { RegistryOptions } from '../lib/options.js'

const registry: FastifyPluginAsync<RegistryOptions> = async function registry (app: FastifyInstance, options: RegistryOptions) {
  resolveOptions(options)
  app.get('/v2/', async (_request, reply) => {
    reply.header('Docker-Distribution-API-Version', 'registry/2.0')
    return {}
  })
}

export default registry
export { registry }
