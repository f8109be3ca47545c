/**
 * The catalog's index and the reverse index of tags: the catalog is one listing, kept by the
 * write path and shared by replicas on one storage; a tree written by another program is found
 * on the first catalog request and after `reindex` (the command line); deleting a manifest
 * reads only the tags that pointed at it once the reverse index is complete.
 */

import t from 'tap'
import { cp, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { build, tempDir, urls, pushBlob, prepareImage, putManifest } from '../helpers.js'
import { observeStorage, type StorageAction } from '../../lib/storage/base.js'
import { ROOT } from '../../lib/storage/paths.js'
import { reindexMain } from '../../examples/lifecycle-cli.js'
import type { FastifyInstance } from 'fastify'

async function catalog (app: FastifyInstance, query: { n?: number, last?: string } = {}): Promise<string[]> {
  const response = await app.inject({ method: 'GET', url: urls.catalog(query) })
  t.equal(response.statusCode, 200)
  return response.json().repositories
}

/** Counts the storage actions `run` causes, by action. */
async function counting (app: FastifyInstance, run: () => Promise<unknown>): Promise<{ actions: Map<StorageAction, number> }> {
  const actions = new Map<StorageAction, number>()
  const stop = observeStorage(app.ociRegistry.driver, (event) => { actions.set(event.action, (actions.get(event.action) ?? 0) + 1) })
  try {
    await run()
  } finally {
    stop()
  }
  return { actions }
}

function captured (): { output: { stdout: (text: string) => void, stderr: (text: string) => void }, out: string[], err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { output: { stdout: (text) => out.push(text), stderr: (text) => err.push(text) }, out, err }
}

t.test('the catalog is served from its index: one listing per request, kept by pushes and deletes', async (t) => {
  const app = await build(t, 'filesystem', { delete: true })
  t.same(await catalog(app), [])
  for (const name of ['b/c', 'a', 'a/b/c/d']) await pushBlob(app, name, Buffer.from(name))
  const image = await prepareImage(app, 'with/manifest')
  t.equal((await putManifest(app, 'with/manifest', 'v1', image.manifest)).statusCode, 201)
  const { actions } = await counting(app, async () => {
    t.same(await catalog(app), ['a', 'a/b/c/d', 'b/c', 'with/manifest'])
  })
  t.same([...actions], [['list', 1]], 'one listing of the index, no walk of the tree')
  t.same(await catalog(app, { n: 2 }), ['a', 'a/b/c/d'], 'paged as the spec says')
  t.same(await catalog(app, { n: 2, last: 'a/b/c/d' }), ['b/c', 'with/manifest'])

  t.equal((await app.inject({ method: 'DELETE', url: urls.manifest('with/manifest', image.digest) })).statusCode, 202)
  t.ok((await catalog(app)).includes('with/manifest'), 'a repository that still links blobs stays')
  for (const digest of [image.config, ...image.layers]) {
    t.equal((await app.inject({ method: 'DELETE', url: urls.blob('with/manifest', digest) })).statusCode, 202)
  }
  t.same(await catalog(app), ['a', 'a/b/c/d', 'b/c'], 'the repository emptied by deletes leaves the index')
})

t.test('replicas on one storage share the index', async (t) => {
  const root = await tempDir(t)
  const first = await build(t, 'filesystem', { root })
  const second = await build(t, 'filesystem', { root })
  t.same(await catalog(second), [])
  await pushBlob(first, 'pushed/on-first', Buffer.from('one'))
  t.same(await catalog(second), ['pushed/on-first'])
})

t.test('a tree written by another program: found on the first request, and by reindex after', async (t) => {
  const root = await tempDir(t)
  const writer = await build(t, 'filesystem', { root })
  await pushBlob(writer, 'old/one', Buffer.from('one'))
  const image = await prepareImage(writer, 'old/two')
  await putManifest(writer, 'old/two', 'latest', image.manifest)
  await writer.close()
  // What distribution's tree has: no records of this registry.
  await rm(join(root, ROOT, '_oci'), { recursive: true })

  const app = await build(t, 'filesystem', { root })
  t.same(await catalog(app), ['old/one', 'old/two'], 'walked from the tree while the index is built')
  await app.ociRegistry.catalogIndex.buildIfAbsent()
  t.same(await catalog(app), ['old/one', 'old/two'], 'built from the tree when the server started')

  // Another program adds a repository behind the registry's back: the index does not know it.
  await cp(join(root, ROOT, 'repositories/old/one'), join(root, ROOT, 'repositories/behind/back'), { recursive: true })
  t.same(await catalog(app), ['old/one', 'old/two'])

  const { output, out, err } = captured()
  t.equal(await reindexMain(['--storage', 'filesystem', '--root', root], {}, output), 0)
  t.match(out.join(''), /^reindexed 3 repositories, 1 tags, \d+ bytes stored in \d+ ms\n$/)
  t.match(err.join(''), /indexed behind\/back \(0 tags\)\nindexed old\/one \(0 tags\)\nindexed old\/two \(1 tags\)/)
  t.same(await catalog(app), ['behind/back', 'old/one', 'old/two'], 'found after reindex')
  const json = captured()
  t.equal(await reindexMain(['--json', '--storage', 'filesystem', '--root', root], {}, json.output), 0)
  t.match(JSON.parse(json.out.join('')), { repositories: 3, tags: 1, usage: { repositories: [{ repository: 'behind/back', sharedBytes: 3 }, { repository: 'old/one', sharedBytes: 3 }, { repository: 'old/two', sharedBytes: 0 }] } })
  const help = captured()
  t.equal(await reindexMain(['--help'], {}, help.output), 0)
  t.match(help.out.join(''), /Usage: fastify-oci-registry reindex/)
  const bad = captured()
  t.equal(await reindexMain(['--storage', 'nowhere'], {}, bad.output), 2, 'a bad storage setting is a usage error')
})

t.test('deleting a manifest reads only the tags that pointed at it once the reverse index is complete', async (t) => {
  const root = await tempDir(t)
  // A tree that starts empty has a complete reverse index from its first tag.
  const first = await build(t, 'filesystem', { root, delete: true })
  const many = await prepareImage(first, 'tags/many', { seed: 'many' })
  const manyTags = Array.from({ length: 30 }, (_, i) => `t${i}`)
  t.equal((await putManifest(first, 'tags/many', many.digest, many.manifest, undefined, { tag: manyTags })).statusCode, 201)
  const fresh = await prepareImage(first, 'tags/many', { seed: 'fresh' })
  t.equal((await putManifest(first, 'tags/many', 'zero', fresh.manifest)).statusCode, 201)
  const { actions: onFresh } = await counting(first, async () => {
    t.equal((await first.inject({ method: 'DELETE', url: urls.manifest('tags/many', fresh.digest) })).statusCode, 202)
  })
  t.ok((onFresh.get('get_content') ?? 0) <= 3, 'a tree that started empty: only the tag that pointed at it is read')
  await first.close()

  // Tags written by a program that keeps no reverse index (as distribution): the index is incomplete.
  await rm(join(root, ROOT, '_oci', 'manifesttags'), { recursive: true })
  const app = await build(t, 'filesystem', { root, delete: true })
  const reads = async (reference: string): Promise<number> => {
    const { actions } = await counting(app, async () => {
      t.equal((await app.inject({ method: 'DELETE', url: urls.manifest('tags/many', reference) })).statusCode, 202)
    })
    return actions.get('get_content') ?? 0
  }
  const pushOne = async (seed: string, tag: string): Promise<string> => {
    const image = await prepareImage(app, 'tags/many', { seed })
    t.equal((await putManifest(app, 'tags/many', tag, image.manifest)).statusCode, 201)
    return image.digest
  }

  // Before reindex the index may miss tags written by another program: every tag is read.
  const before = await pushOne('before', 'one')
  t.ok(await reads(before) >= 31, 'every tag read without a complete reverse index')

  const { output } = captured()
  t.equal(await reindexMain(['--storage', 'filesystem', '--root', root], {}, output), 0)
  const after = await pushOne('after', 'two')
  t.ok(await reads(after) <= 3, 'only the tag that pointed at it')
  t.same((await app.inject({ method: 'GET', url: urls.tags('tags/many') })).json().tags.length, 30)

  // A tag moved away is not removed with the manifest it left.
  const moved = await pushOne('moved-from', 'moving')
  await pushOne('moved-to', 'moving')
  t.equal((await app.inject({ method: 'DELETE', url: urls.manifest('tags/many', moved) })).statusCode, 202)
  t.equal((await app.inject({ method: 'GET', url: urls.manifest('tags/many', 'moving') })).statusCode, 200, 'the moved tag stays')
  t.equal((await app.inject({ method: 'DELETE', url: urls.manifest('tags/many', many.digest) })).statusCode, 202)
  t.same((await app.inject({ method: 'GET', url: urls.tags('tags/many') })).json().tags, ['moving'], 'every tag of the deleted manifest is gone')
})

t.test('a push to an indexed repository leaves its entry as it is; a missing entry is written again', async (t) => {
  const root = await tempDir(t)
  const app = await build(t, 'filesystem', { root })
  const entry = join(root, ROOT, '_oci', 'catalog', 'repositories', 'kept')
  const first = await prepareImage(app, 'kept', { seed: 'first' })
  t.equal((await putManifest(app, 'kept', 'v1', first.manifest)).statusCode, 201)
  const written = await stat(entry)
  const second = await prepareImage(app, 'kept', { seed: 'second' })
  t.equal((await putManifest(app, 'kept', 'v2', second.manifest)).statusCode, 201)
  const after = await stat(entry)
  t.same([after.ino, after.mtimeMs], [written.ino, written.mtimeMs], 'the entry was not rewritten')

  await rm(entry)
  const third = await prepareImage(app, 'kept', { seed: 'third' })
  t.equal((await putManifest(app, 'kept', 'v3', third.manifest)).statusCode, 201)
  t.same(await catalog(app), ['kept'], 'the next push writes it again')
})
