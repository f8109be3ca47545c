/**
 * Content management: deleting tags, manifests and blobs, and what can be read afterwards. A
 * registry may refuse deletes (405); the checks that depend on a delete then report it unsupported.
 */

import { randomBytes } from 'node:crypto'
import { image } from './data.js'
import { MANIFEST_ACCEPT, cleanUp, deleteResource, expectNotFound, pushBlob, pushManifest, send, verifyManifest, type CheckDefinition, type Context } from './common.js'
import { Unsupported, expectEqual, expectStatus, jsonOf } from './expect.js'

export function managementChecks (): CheckDefinition[] {
  const pushed = image()
  const suffix = randomBytes(3).toString('hex')
  const tagToDelete = `delete-me-${suffix}`
  const tagToKeep = `keep-${suffix}`
  let tagsBefore: string[] = []
  let tagDeleted = false
  let manifestDeleted = false
  let blobsDeleted = false

  const tagList = async (context: Context): Promise<string[] | undefined> => {
    const response = await send(context, { method: 'GET', url: context.client.urls.tags(context.repo) })
    expectStatus(response, 200, 404)
    return response.status === 404 ? undefined : (jsonOf<{ tags: string[] | null }>(response).tags ?? [])
  }
  const requires = (done: boolean, what: string): void => {
    if (!done) throw new Unsupported(`depends on ${what}, which the registry does not support`)
  }

  return [
    {
      name: 'setup: push a manifest under two tags',
      run: async (context) => {
        for (const item of pushed.blobs) await pushBlob(context, context.repo, item)
        await pushManifest(context, context.repo, tagToDelete, pushed.manifest)
        await pushManifest(context, context.repo, tagToKeep, pushed.manifest)
        tagsBefore = await tagList(context) ?? []
      }
    },
    {
      name: 'DELETE of a tag: 202 (or 400/405 UNSUPPORTED where tags cannot be deleted)',
      run: async (context) => {
        const response = await send(context, { method: 'DELETE', url: context.client.urls.manifest(context.repo, tagToDelete) })
        expectStatus(response, 202, 400, 405)
        if (response.status !== 202) {
          const code = (jsonOf<{ errors?: Array<{ code: string }> }>(response).errors ?? [])[0]?.code
          if (response.status === 400) expectEqual(code, 'UNSUPPORTED', 'the error code of a refused tag delete')
          throw new Unsupported(`tag deletion refused with ${response.status}`)
        }
        tagDeleted = true
      }
    },
    {
      name: 'after DELETE of a tag: the tag is 404, the manifest and the other tag remain',
      run: async (context) => {
        requires(tagDeleted, 'deleting a tag')
        expectNotFound(await send(context, { method: 'HEAD', url: context.client.urls.manifest(context.repo, tagToDelete), headers: { accept: MANIFEST_ACCEPT } }))
        await verifyManifest(context, context.repo, pushed.manifest.digest, pushed.manifest)
        await verifyManifest(context, context.repo, tagToKeep, pushed.manifest)
        expectEqual(await tagList(context), tagsBefore.filter((tag) => tag !== tagToDelete), 'the tags')
      }
    },
    {
      name: 'DELETE of a manifest by digest: 202',
      run: async (context) => {
        await deleteResource(context, context.client.urls.manifest(context.repo, pushed.manifest.digest))
        manifestDeleted = true
      }
    },
    {
      name: 'after DELETE of a manifest: GET and HEAD by digest are 404, and so are its tags',
      run: async (context) => {
        requires(manifestDeleted, 'deleting a manifest')
        expectNotFound(await send(context, { method: 'GET', url: context.client.urls.manifest(context.repo, pushed.manifest.digest), headers: { accept: MANIFEST_ACCEPT } }), ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN'])
        expectStatus(await send(context, { method: 'HEAD', url: context.client.urls.manifest(context.repo, pushed.manifest.digest), headers: { accept: MANIFEST_ACCEPT } }), 404)
        expectStatus(await send(context, { method: 'GET', url: context.client.urls.manifest(context.repo, tagToKeep), headers: { accept: MANIFEST_ACCEPT } }), 404)
      }
    },
    {
      name: 'after DELETE of a manifest: the tag list no longer has its tags',
      run: async (context) => {
        requires(manifestDeleted, 'deleting a manifest')
        const list = await tagList(context)
        const remaining = tagsBefore.filter((tag) => tag !== tagToDelete && tag !== tagToKeep)
        if (list === undefined) expectEqual(remaining, [], 'the tags of a repository the registry no longer knows')
        else expectEqual(list, remaining, 'the tags')
      }
    },
    {
      name: 'DELETE of a manifest that is gone: 404',
      run: async (context) => {
        requires(manifestDeleted, 'deleting a manifest')
        expectNotFound(await send(context, { method: 'DELETE', url: context.client.urls.manifest(context.repo, pushed.manifest.digest) }), ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN'])
      }
    },
    {
      name: 'DELETE of a blob: 202',
      run: async (context) => {
        for (const item of pushed.blobs) await deleteResource(context, context.client.urls.blob(context.repo, item.digest))
        blobsDeleted = true
      }
    },
    {
      name: 'after DELETE of a blob: GET and HEAD are 404, DELETE again is 404',
      run: async (context) => {
        requires(blobsDeleted, 'deleting a blob')
        for (const item of pushed.blobs) {
          expectNotFound(await send(context, { method: 'GET', url: context.client.urls.blob(context.repo, item.digest) }), ['BLOB_UNKNOWN'])
          const head = await send(context, { method: 'HEAD', url: context.client.urls.blob(context.repo, item.digest) })
          expectStatus(head, 404)
          expectNotFound(await send(context, { method: 'DELETE', url: context.client.urls.blob(context.repo, item.digest) }), ['BLOB_UNKNOWN'])
        }
      }
    },
    {
      name: 'teardown: delete what is left',
      run: async (context) => { await cleanUp(context, context.repo, [pushed.manifest], pushed.blobs) }
    }
  ]
}
