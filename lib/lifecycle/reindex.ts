/**
 * Rebuilds the registry's own records from distribution's tree: the catalog's index, the reverse
 * index of tags (which tags point at a manifest, so that deleting a manifest reads only those)
 * and the usage records. Run it on a tree written by distribution, or after another program
 * changed the tree; the write path keeps all three current otherwise.
 */

import { childNames, isPathNotFound } from '../storage/driver.js'
import { pathFor } from '../storage/paths.js'
import type { RegistryService } from '../storage/registry.js'
import { recomputeUsage, type StoreUsage } from './usage.js'

export interface ReindexReport {
  repositories: number
  tags: number
  durationMs: number
  usage: StoreUsage
}

/** Reports each repository as it is indexed (a command line prints it). */
export type ReindexProgress = (step: { repository: string, tags: number }) => void

async function readLink (registry: RegistryService, path: string): Promise<string | undefined> {
  try {
    return (await registry.driver.getContent(path)).toString('utf8').trim()
  } catch (error) {
    if (isPathNotFound(error)) return undefined
    throw error
  }
}

/**
 * Marks the reverse index of tags complete on a tree that holds no repository yet: there is no
 * tag to index, and every tag written from now on records its reverse entry first.
 */
export async function markEmptyTreeIndexed (registry: RegistryService): Promise<void> {
  await registry.driver.putContent(pathFor({ kind: 'manifestTagsBuilt' }), new Date().toISOString())
}

export async function reindex (registry: RegistryService, progress?: ReindexProgress): Promise<ReindexReport> {
  const started = performance.now()
  const repositories = await registry.catalogIndex.rebuild()
  let tags = 0
  for (const name of repositories) {
    const store = registry.repository(name).manifests.tags
    let count = 0
    for (const tag of await childNames(registry.driver, pathFor({ kind: 'tagsRoot', name }))) {
      const digest = await readLink(registry, pathFor({ kind: 'tagCurrentLink', name, tag }))
      if (digest === undefined) continue
      await store.recordReverse(tag, digest)
      count++
    }
    tags += count
    progress?.({ repository: name, tags: count })
  }
  await registry.driver.putContent(pathFor({ kind: 'manifestTagsBuilt' }), new Date().toISOString())
  const usage = await recomputeUsage(registry, repositories)
  return { repositories: repositories.length, tags, durationMs: Math.round(performance.now() - started), usage }
}
