/**
 * Storage usage: per repository (manifests, linked blobs, bytes shared with others) and for the
 * store, kept current by the write path, recomputed whole by recomputeUsage, served to admins.
 */

import t from 'tap'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { urls, pushBlob, prepareImage, putManifest } from '../helpers.js'
import { ROOT } from '../../lib/storage/paths.js'
import { readUsage, recomputeUsage, type StoreUsage } from '../../lib/lifecycle/usage.js'
import { adminApp, USER } from './admin.js'
import type { FastifyInstance } from 'fastify'

async function usage (app: FastifyInstance): Promise<StoreUsage> {
  const response = await app.inject({ method: 'GET', url: '/v2/_oci/admin/usage' })
  t.equal(response.statusCode, 200, response.body)
  return response.json()
}

t.test('usage per repository and for the store, kept by pushes, mounts and deletes', async (t) => {
  const { app, root } = await adminApp(t)
  t.same(await usage(app), { repositories: [], objects: 0, totalBytes: 0, repositoryBytes: 0 })

  const image = await prepareImage(app, 'team/app', { seed: 'app' })
  t.equal((await putManifest(app, 'team/app', 'v1', image.manifest)).statusCode, 201)
  const sizeOf = async (name: string, digest: string): Promise<number> =>
    Number((await app.inject({ method: 'HEAD', url: urls.blob(name, digest) })).headers['content-length'])
  const configSize = await sizeOf('team/app', image.config)
  const layerSizes = await Promise.all(image.layers.map(async (digest) => await sizeOf('team/app', digest)))
  const blobBytes = configSize + layerSizes[0]! + layerSizes[1]!
  const manifestBytes = image.manifest.length

  // Another repository mounts the first layer and has a blob of its own.
  const mounted = await app.inject({ method: 'POST', url: `${urls.blobUpload('team/tool')}?mount=${image.layers[0]}&from=team/app` })
  t.equal(mounted.statusCode, 201)
  await pushBlob(app, 'team/tool', Buffer.from('tool only'))

  const seen = await usage(app)
  t.same(seen.repositories.map((repository) => repository.repository), ['team/app', 'team/tool'])
  t.match(seen.repositories[0], { repository: 'team/app', manifests: 1, manifestBytes, blobs: 3, blobBytes, totalBytes: manifestBytes + blobBytes, sharedBytes: layerSizes[0] })
  t.match(seen.repositories[1], { repository: 'team/tool', manifests: 0, manifestBytes: 0, blobs: 2, blobBytes: layerSizes[0]! + 9, sharedBytes: layerSizes[0] })
  t.equal(seen.objects, 5)
  t.equal(seen.totalBytes, manifestBytes + blobBytes + 9, 'the shared layer is counted once for the store')
  t.equal(seen.repositoryBytes, manifestBytes + blobBytes + layerSizes[0]! + 9)

  t.equal((await app.inject({ method: 'DELETE', url: urls.blob('team/tool', image.layers[0]!) })).statusCode, 202)
  t.equal((await app.inject({ method: 'DELETE', url: urls.manifest('team/app', image.digest) })).statusCode, 202)
  const after = await usage(app)
  t.match(after.repositories[0], { repository: 'team/app', manifests: 0, blobs: 3, sharedBytes: 0 })
  t.match(after.repositories[1], { repository: 'team/tool', blobs: 1, blobBytes: 9, sharedBytes: 0 })

  // Records lost (or a tree written elsewhere): recomputeUsage rebuilds the same numbers.
  await rm(join(root, ROOT, '_oci', 'usage'), { recursive: true })
  t.same((await readUsage(app.ociRegistry)).repositories, [])
  const recomputed = await recomputeUsage(app.ociRegistry)
  t.same(recomputed.repositories.map(({ updatedAt: _, ...rest }) => rest), after.repositories.map(({ updatedAt: _, ...rest }) => rest))
  t.same((await usage(app)).totalBytes, after.totalBytes)
})

t.test('usage is for administrators', async (t) => {
  const { app } = await adminApp(t)
  const denied = await app.inject({ method: 'GET', url: '/v2/_oci/admin/usage', headers: { authorization: USER } })
  t.equal(denied.statusCode, 403)
})
