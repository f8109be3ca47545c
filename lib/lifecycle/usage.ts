/**
 * Storage usage: per repository, the bytes of its manifests and of the blobs it links, and how
 * many of those bytes it shares with other repositories; for the whole store, the bytes stored
 * once. Each repository's record (the digests it holds and their sizes) is kept in storage
 * beside distribution's tree, so every replica reads the same; shares and totals are worked out
 * from the records when asked.
 *
 * A record is recomputed from the repository's own links (never adjusted by deltas, which
 * replicas would race on): when write-path events touch the repository (`UsageTracker`),
 * and for every repository by `recomputeUsage`, which `reindex` runs and a collector's mark
 * phase can call to correct what the events missed (changes made by another program).
 */

import { compareLexically } from '../paging.js'
import { childNames, isPathNotFound } from '../storage/driver.js'
import { nameOfSegment, pathFor } from '../storage/paths.js'
import type { RegistryService } from '../storage/registry.js'
import type { RegistryEventType } from '../events.js'
import { isValidName } from '../reference.js'

/** What one repository holds, as stored: digests with their sizes. */
export interface UsageRecord {
  repository: string
  manifests: Record<string, number>
  blobs: Record<string, number>
  /** ISO 8601 time it was computed. */
  updatedAt: string
}

export interface RepositoryUsage {
  repository: string
  manifests: number
  manifestBytes: number
  blobs: number
  blobBytes: number
  /** Manifests and blobs together, each digest once. */
  totalBytes: number
  /** Of totalBytes, the bytes of digests another repository holds too. */
  sharedBytes: number
  updatedAt: string
}

export interface StoreUsage {
  repositories: RepositoryUsage[]
  /** Distinct manifests and blobs the repositories hold. */
  objects: number
  /** Bytes stored once, whatever the number of repositories holding them. */
  totalBytes: number
  /** What the repositories' totals add up to, shared bytes counted in each. */
  repositoryBytes: number
}

/** Digests under a `<alg>/<hex>` directory (revisions, layer links). */
async function digestsUnder (registry: RegistryService, root: string): Promise<string[]> {
  const digests: string[] = []
  for (const algorithm of await childNames(registry.driver, root)) {
    for (const hex of await childNames(registry.driver, `${root}/${algorithm}`)) digests.push(`${algorithm}:${hex}`)
  }
  return digests
}

/** Sizes of the digests whose data is stored (a link to data that is gone holds nothing). */
async function sizesOf (registry: RegistryService, digests: readonly string[]): Promise<Record<string, number>> {
  const sizes: Record<string, number> = {}
  for (const digest of digests) {
    const stat = await registry.blobs.stat(digest)
    if (stat !== undefined) sizes[digest] = stat.size
  }
  return sizes
}

/** Works out a repository's record from its links; undefined when it holds nothing. */
export async function computeRecord (registry: RegistryService, name: string): Promise<UsageRecord | undefined> {
  const manifests = await sizesOf(registry, await digestsUnder(registry, pathFor({ kind: 'manifestRevisionsRoot', name })))
  const blobs = await sizesOf(registry, await digestsUnder(registry, pathFor({ kind: 'layersRoot', name })))
  if (Object.keys(manifests).length === 0 && Object.keys(blobs).length === 0) return undefined
  return { repository: name, manifests, blobs, updatedAt: new Date().toISOString() }
}

/** Recomputes one repository's stored record (removes it when the repository holds nothing). */
export async function updateRecord (registry: RegistryService, name: string): Promise<UsageRecord | undefined> {
  const record = await computeRecord(registry, name)
  const path = pathFor({ kind: 'usageRecord', name })
  if (record !== undefined) {
    await registry.driver.putContent(path, JSON.stringify(record))
    return record
  }
  try {
    await registry.driver.delete(path)
  } catch (error) {
    if (!isPathNotFound(error)) throw error
  }
  return undefined
}

async function readRecords (registry: RegistryService): Promise<UsageRecord[]> {
  const records: UsageRecord[] = []
  for (const segment of await childNames(registry.driver, pathFor({ kind: 'usageRoot' }))) {
    const name = nameOfSegment(segment)
    if (!isValidName(name)) continue
    try {
      records.push(JSON.parse((await registry.driver.getContent(pathFor({ kind: 'usageRecord', name }))).toString('utf8')) as UsageRecord)
    } catch (error) {
      // Removed since the listing, or cut short by a crash: the next recomputation writes it again.
      if (!isPathNotFound(error) && !(error instanceof SyntaxError)) throw error
    }
  }
  return records
}

/** Usage per repository and for the store, from the stored records. */
export function summarize (records: readonly UsageRecord[]): StoreUsage {
  const holders = new Map<string, number>()
  const sizes = new Map<string, number>()
  const digestsOf = (record: UsageRecord): Map<string, number> => new Map([...Object.entries(record.manifests), ...Object.entries(record.blobs)])
  for (const record of records) {
    for (const [digest, size] of digestsOf(record)) {
      holders.set(digest, (holders.get(digest) ?? 0) + 1)
      sizes.set(digest, size)
    }
  }
  const sum = (values: Iterable<number>): number => { let total = 0; for (const value of values) total += value; return total }
  const repositories = records.map((record): RepositoryUsage => {
    const all = digestsOf(record)
    return {
      repository: record.repository,
      manifests: Object.keys(record.manifests).length,
      manifestBytes: sum(Object.values(record.manifests)),
      blobs: Object.keys(record.blobs).length,
      blobBytes: sum(Object.values(record.blobs)),
      totalBytes: sum(all.values()),
      sharedBytes: sum([...all].filter(([digest]) => (holders.get(digest) ?? 0) > 1).map(([, size]) => size)),
      updatedAt: record.updatedAt
    }
  }).sort((a, b) => compareLexically(a.repository, b.repository))
  return {
    repositories,
    objects: sizes.size,
    totalBytes: sum(sizes.values()),
    repositoryBytes: sum(repositories.map((repository) => repository.totalBytes))
  }
}

/** Usage as the stored records have it. */
export async function readUsage (registry: RegistryService): Promise<StoreUsage> {
  return summarize(await readRecords(registry))
}

/**
 * Recomputes every repository's record from the tree (the repositories of the catalog's index,
 * or `repositories` when given) and removes records of repositories that hold nothing now.
 */
export async function recomputeUsage (registry: RegistryService, repositories?: readonly string[]): Promise<StoreUsage> {
  const names = repositories ?? await registry.catalog()
  const records: UsageRecord[] = []
  for (const name of names) {
    const record = await updateRecord(registry, name)
    if (record !== undefined) records.push(record)
  }
  const kept = new Set(records.map((record) => record.repository))
  for (const segment of await childNames(registry.driver, pathFor({ kind: 'usageRoot' }))) {
    const name = nameOfSegment(segment)
    if (isValidName(name) && !kept.has(name)) await updateRecord(registry, name)
  }
  return summarize(records)
}

/** Write-path events that change what a repository holds. */
const CHANGES: readonly RegistryEventType[] = ['blob.pushed', 'blob.mounted', 'blob.deleted', 'manifest.pushed', 'manifest.deleted']

export interface UsageLogger {
  error: (object: Record<string, unknown>, message: string) => void
}

/**
 * Keeps the records current from the write path. A repository touched by events is recomputed
 * after the change answers (a listing of its links; blob sizes come from the cache), one
 * computation at a time per repository: events that arrive during one are folded into a single
 * next one, so a push of many layers costs two computations, not one per layer, and never adds to
 * the push's latency. A record is never written back by an older computation in this process.
 * Readers that need this process's latest changes call `flush()` first (the admin API does); a
 * crash before a computation leaves the record stale until the next collection recomputes it.
 */
export class UsageTracker {
  /** Repositories with a computation running, and the promise of its end. */
  private readonly running = new Map<string, Promise<void>>()
  /** Repositories changed since their running computation started. */
  private readonly dirty = new Set<string>()
  private readonly unsubscribe: Array<() => void>

  constructor (private readonly registry: RegistryService, private readonly options: { log?: UsageLogger } = {}) {
    this.unsubscribe = CHANGES.map((type) => registry.events.on(type, (event) => {
      if ('repository' in event) this.schedule(event.repository)
    }))
  }

  private schedule (name: string): void {
    this.dirty.add(name)
    if (this.running.has(name)) return
    this.running.set(name, this.recompute(name))
  }

  private async recompute (name: string): Promise<void> {
    while (this.dirty.delete(name)) {
      try {
        await updateRecord(this.registry, name)
      } catch (error) {
        this.options.log?.error({ err: error, repository: name }, 'usage: could not update a repository\'s record')
      }
    }
    // In the same synchronous step as the last check of `dirty`: a change cannot slip between.
    this.running.delete(name)
  }

  /** Resolves once every record changed so far is written. */
  async flush (): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running.values())
  }

  /** Stops listening, after writing what is pending. */
  async close (): Promise<void> {
    for (const unsubscribe of this.unsubscribe) unsubscribe()
    await this.flush()
  }
}
