/**
 * Garbage collection: mark and sweep over the storage tree, through the path mapper and the
 * write path's stores, so that it reads and writes CNCF distribution's tree as
 * `registry garbage-collect` does.
 *
 * Mark: every manifest revision of every repository is read; what a kept revision names is
 * marked (config and layers, the manifests an index lists). Without `deleteUntagged` every
 * revision is kept, as distribution keeps them. With it, the kept revisions are the tagged ones
 * and what they reach: the children of a kept index (distribution 2.8 deletes those, its
 * #3178, and breaks every multi-platform image it collects), and the referrers of a kept
 * manifest (a signature or SBOM lives as long as its subject). An untagged referrer whose
 * subject is not kept (deleted, or itself collected) is removed with it; a tagged one stays.
 * A referrer may be pushed before its subject, so without `deleteUntagged` nothing is removed
 * for lack of a subject.
 *
 * Sweep: untagged manifests that are not kept are deleted through the manifest store (their
 * tags, referrer entry and revision, as a client's DELETE removes them); then every blob of the
 * store that is not marked is removed, with the repository links (`_layers`) to it, and every
 * replica's caches forget it.
 *
 * Safe beside pushes (the online collector): a blob or an untagged manifest younger than
 * `delayMs` (by its storage modification time) is kept; a blob that the write path touched or
 * held during the run (a HEAD, a mount, an upload, a manifest PUT naming it) is kept; a removal
 * runs while no change holds the blob, so a manifest PUT and the sweep of a blob it names never
 * interleave (see ../storage/blob-use.ts). Across processes on one storage, one collector runs
 * at a time (./lease.ts); when holds are shared (../storage/shared-holds.ts) the holds of the
 * others are respected too, and `delayMs` keeps what they were sent but not yet named.
 */

import { randomUUID } from 'node:crypto'
import { isDigestString } from '../digest.js'
import { RegistryError } from '../errors.js'
import { readOnlyError } from '../policies.js'
import { recomputeUsage } from './usage.js'
import { isPathNotFound } from '../storage/driver.js'
import { digestParts, pathFor } from '../storage/paths.js'
import type { RegistryService } from '../storage/registry.js'
import type { RegistryEvent } from '../events.js'
import type { GcReport, RunTrigger } from './reports.js'
import type { Lease } from './lease.js'
import type { RemovalSession } from '../storage/shared-holds.js'

export interface GcRunOptions {
  /** Remove nothing; the report lists what a real run would remove. */
  dryRun?: boolean
  /** Remove manifests no tag points at (but children of kept indexes and referrers of kept manifests). */
  deleteUntagged?: boolean
  /** Keep blobs and untagged manifests younger than this, in ms (default 0). */
  delayMs?: number
  trigger?: RunTrigger
  /** Called as the run walks the store. */
  onProgress?: (progress: GcProgress) => void
}

export interface GcProgress {
  phase: 'mark' | 'sweep'
  repositories: number
  manifests: number
  blobs: number
  /** Bytes of blobs walked in the sweep so far. */
  bytes: number
}

export interface GcLogger {
  info: (object: Record<string, unknown>, message: string) => void
  warn: (object: Record<string, unknown>, message: string) => void
}

export interface GarbageCollectorOptions {
  log?: GcLogger
  /** Held for each run: one collector at a time across replicas. */
  lease?: Lease
  /** Reports kept for the admin API (default 10). */
  keepReports?: number
}

/** What one manifest names. */
export interface ManifestReferences {
  /** Config and layers (schema 1: its `fsLayers`). */
  blobs: string[]
  /** Manifests an index lists. */
  children: string[]
  subject?: string
}

/**
 * The digests a manifest names, read leniently: a collection must not miss a blob because a
 * manifest that was once accepted does not pass today's stricter parser. Throws on bytes that
 * are not JSON at all.
 */
export function referencesOf (content: Buffer): ManifestReferences {
  const json: unknown = JSON.parse(content.toString('utf8'))
  const digestAt = (value: unknown, key = 'digest'): string | undefined => {
    if (typeof value !== 'object' || value === null) return undefined
    const digest = (value as Record<string, unknown>)[key]
    return typeof digest === 'string' && isDigestString(digest) ? digest : undefined
  }
  const listed = (value: unknown, key = 'digest'): string[] =>
    Array.isArray(value) ? value.flatMap((entry) => { const digest = digestAt(entry, key); return digest === undefined ? [] : [digest] }) : []
  if (typeof json !== 'object' || json === null) return { blobs: [], children: [] }
  const manifest = json as Record<string, unknown>
  const config = digestAt(manifest.config)
  const blobs = [...(config === undefined ? [] : [config]), ...listed(manifest.layers), ...listed(manifest.fsLayers, 'blobSum')]
  const subject = digestAt(manifest.subject)
  return { blobs: [...new Set(blobs)], children: [...new Set(listed(manifest.manifests))], ...(subject === undefined ? {} : { subject }) }
}

/** A run is going on already, here or (through the lease) in another replica. */
export class GcBusyError extends RegistryError {
  constructor (where: 'here' | 'elsewhere') {
    super('UNAVAILABLE', { reason: where === 'here' ? 'a garbage collection is running' : 'a garbage collection is running in another replica' }, { statusCode: 409 })
  }
}

interface RepositoryMark {
  name: string
  revisions: Map<string, ManifestReferences>
  /** Revisions to remove (untagged and not reached), before the sweep looks again. */
  unkept: Set<string>
  /** Blobs the repository links. */
  links: string[]
}

const DEFAULT_KEPT_REPORTS = 10
/** Blobs announced and removed together. */
const REMOVAL_BATCH = 100

export class GarbageCollector {
  private current: Promise<GcReport> | undefined
  private stopping = false
  private readonly kept: GcReport[] = []

  constructor (readonly registry: RegistryService, private readonly options: GarbageCollectorOptions = {}) {}

  get running (): boolean {
    return this.current !== undefined
  }

  /** The last runs' reports, newest first. */
  reports (): GcReport[] {
    return [...this.kept]
  }

  /** Runs a collection; GcBusyError when one runs already (here, or elsewhere through the lease). */
  async run (options: GcRunOptions = {}): Promise<GcReport> {
    return await (await this.start(options)).done
  }

  /**
   * Starts a collection: resolves once it has started (GcBusyError when one runs already, here
   * or elsewhere through the lease), with the promise of its report.
   */
  async start (options: GcRunOptions = {}): Promise<{ done: Promise<GcReport> }> {
    // A dry run changes nothing, so it may run while the registry is read-only.
    if (this.registry.readOnly && options.dryRun !== true) throw readOnlyError('gc')
    if (this.current !== undefined) throw new GcBusyError('here')
    let began!: (error?: unknown) => void
    const started = new Promise<void>((resolve, reject) => { began = (error) => { if (error === undefined) resolve(); else reject(error) } })
    const run = this.leased(options, began)
    this.current = run
    const done = run.finally(() => { if (this.current === run) this.current = undefined })
    // The run's failure reaches whoever awaits `done`; before it began, it rejects `start`.
    done.catch(() => {})
    await started
    return { done }
  }

  /** Stops a run between two steps (the registry is closing); resolves once it has stopped. */
  async stop (): Promise<void> {
    this.stopping = true
    await this.current?.catch(() => {})
    this.stopping = false
  }

  private async leased (options: GcRunOptions, began: (error?: unknown) => void): Promise<GcReport> {
    const lease = this.options.lease
    try {
      if (lease !== undefined && !await lease.acquire()) throw new GcBusyError('elsewhere')
    } catch (error) {
      began(error)
      throw error
    }
    began()
    let result: { report: GcReport, events: RegistryEvent[] }
    try {
      result = await this.collect(options)
      this.kept.unshift(result.report)
      this.kept.splice(this.options.keepReports ?? DEFAULT_KEPT_REPORTS)
    } finally {
      await lease?.release()
      this.current = undefined
    }
    // Once the run is over: a listener that starts another run, or reads the reports, can.
    await this.registry.events.emit(...result.events, { type: 'gc.completed', time: new Date(), origin: {}, report: result.report })
    return result.report
  }

  private checkStopping (): void {
    if (this.stopping) throw new Error('garbage collection stopped: the registry is closing')
  }

  private async collect (options: GcRunOptions): Promise<{ report: GcReport, events: RegistryEvent[] }> {
    const { registry } = this
    const started = new Date()
    const dryRun = options.dryRun ?? false
    const deleteUntagged = options.deleteUntagged ?? false
    const delayMs = options.delayMs ?? 0
    const youngSince = started.getTime() - delayMs
    const progress: GcProgress = { phase: 'mark', repositories: 0, manifests: 0, blobs: 0, bytes: 0 }
    const report = (): void => options.onProgress?.({ ...progress })

    // Touches from now on, and the holds of changes already going on, keep their blobs.
    const touched = new Set<string>()
    const stopTouching = registry.blobUse.onTouch((digests) => { for (const digest of digests) touched.add(digest) })
    for (const digest of registry.blobUse.held()) touched.add(digest)
    const session = registry.blobUse.shared?.session(started.getTime())
    try {
      // Mark.
      const marked = new Set<string>()
      const repositories: RepositoryMark[] = []
      for await (const { name, children } of registry.repositoryDirectories()) {
        if (!children.includes('_manifests') && !children.includes('_layers')) continue
        this.checkStopping()
        const mark = await this.markRepository(name, deleteUntagged, delayMs > 0 ? youngSince : undefined, touched)
        for (const [digest, references] of mark.revisions) {
          if (mark.unkept.has(digest)) continue
          markReferences(marked, digest, references)
        }
        repositories.push(mark)
        progress.repositories++
        progress.manifests += mark.revisions.size
        report()
      }
      let manifestsMarked = repositories.reduce((sum, mark) => sum + mark.revisions.size - mark.unkept.size, 0)

      // Sweep manifests: each removal waits for changes holding it and skips one touched meanwhile.
      progress.phase = 'sweep'
      const removedManifests: string[] = []
      const deletedEvents: RegistryEvent[] = []
      for (const mark of repositories) {
        const manifests = registry.repository(mark.name).manifests
        const { held, end } = await this.beginRemoval(session, dryRun ? [] : [...mark.unkept].filter((digest) => !touched.has(digest)))
        try {
          for (const digest of mark.unkept) {
            this.checkStopping()
            const references = mark.revisions.get(digest) as ManifestReferences
            const wanted = (): boolean => touched.has(digest) || held.has(digest) || references.children.some((child) => touched.has(child) || held.has(child))
            const keep = (): void => {
              markReferences(marked, digest, references)
              manifestsMarked++
            }
            if (wanted()) {
              keep()
              continue
            }
            await registry.blobUse.exclusive(digest, async () => {
              if (wanted()) {
                keep()
                return
              }
              removedManifests.push(`${mark.name}@${digest}`)
              if (dryRun) return
              try {
                const tags = await manifests.delete(digest)
                deletedEvents.push({ type: 'manifest.deleted', repository: mark.name, time: new Date(), origin: {}, digest, tags })
              } catch (error) {
                // Deleted meanwhile by a client: nothing left to do.
                if (!(error instanceof RegistryError)) throw error
              }
            })
          }
        } finally {
          await end()
        }
      }

      // Sweep blobs: walk the store first, then remove (a tree is not changed while walked).
      const candidates: Array<{ digest: string, size: number }> = []
      const blobsRoot = pathFor({ kind: 'blobsRoot' })
      try {
        for await (const info of registry.driver.walk(blobsRoot)) {
          if (info.isDir || !info.path.endsWith('/data')) continue
          const digest = digestOfDataPath(info.path)
          if (digest === undefined) continue
          progress.blobs++
          progress.bytes += info.size
          if (progress.blobs % 100 === 0) report()
          if (marked.has(digest) || info.modTime.getTime() > youngSince) continue
          candidates.push({ digest, size: info.size })
        }
      } catch (error) {
        if (!isPathNotFound(error)) throw error
      }
      report()
      const linkedBy = new Map<string, string[]>()
      for (const mark of repositories) {
        for (const digest of mark.links) linkedBy.set(digest, [...(linkedBy.get(digest) ?? []), mark.name])
      }
      const removedBlobs: string[] = []
      let bytesFreed = 0
      for (let start = 0; start < candidates.length; start += REMOVAL_BATCH) {
        this.checkStopping()
        // Touched already: kept without waiting for whoever holds it.
        const batch = candidates.slice(start, start + REMOVAL_BATCH).filter(({ digest }) => !touched.has(digest))
        const { held, end } = await this.beginRemoval(session, dryRun ? [] : batch.map(({ digest }) => digest))
        try {
          for (const { digest, size } of batch) {
            if (held.has(digest)) continue
            await registry.blobUse.exclusive(digest, async () => {
              if (touched.has(digest)) return
              removedBlobs.push(digest)
              bytesFreed += size
              if (dryRun) return
              await deleteIfPresent(registry, pathFor({ kind: 'blobDir', ...digestParts(digest) }))
              for (const name of linkedBy.get(digest) ?? []) {
                try {
                  await registry.repository(name).blobs.unlink(digest)
                } catch (error) {
                  if (!(error instanceof RegistryError)) throw error
                }
              }
            })
          }
        } finally {
          await end()
        }
      }
      if (!dryRun) await registry.cache.blobsRemoved(removedBlobs)
      await session?.finish()
      // Storage usage, kept by the write path, is corrected from the tree as the sweep left it.
      if (!dryRun) {
        await recomputeUsage(registry, repositories.map((mark) => mark.name)).catch((error: unknown) => {
          this.options.log?.warn({ err: error }, 'garbage collection: could not correct storage usage')
        })
      }

      const gcReport: GcReport = {
        id: randomUUID(),
        trigger: options.trigger ?? 'cli',
        startedAt: started.toISOString(),
        durationMs: Date.now() - started.getTime(),
        dryRun,
        deleteUntagged,
        repositories: repositories.length,
        manifestsMarked,
        blobsMarked: marked.size,
        manifestsSwept: removedManifests.length,
        blobsSwept: removedBlobs.length,
        bytesFreed,
        removed: { blobs: removedBlobs.sort(), manifests: removedManifests.sort() }
      }
      const { removed: _removed, ...summary } = gcReport
      this.options.log?.info(summary, dryRun ? 'garbage collection dry run finished' : 'garbage collection finished')
      return { report: gcReport, events: deletedEvents }
    } finally {
      stopTouching()
    }
  }

  /**
   * Announces removals to the other processes on the storage, when holds are shared: those
   * they hold are returned, to keep. Nothing to announce in a dry run.
   */
  private async beginRemoval (session: RemovalSession | undefined, digests: string[]): Promise<{ held: Set<string>, end: () => Promise<void> }> {
    if (session === undefined || digests.length === 0) return { held: new Set(), end: async () => {} }
    return await session.beginRemoval(digests)
  }

  /** Reads a repository's revisions, tags and links, and decides which revisions are kept. */
  private async markRepository (name: string, deleteUntagged: boolean, youngSince: number | undefined, touched: ReadonlySet<string>): Promise<RepositoryMark> {
    const { registry } = this
    const repository = registry.repository(name)
    const revisions = new Map<string, ManifestReferences>()
    for (const digest of await listDigests(registry, pathFor({ kind: 'manifestRevisionsRoot', name }))) {
      revisions.set(digest, await this.readReferences(name, digest))
    }
    const links = await listDigests(registry, pathFor({ kind: 'layersRoot', name }))
    if (!deleteUntagged) return { name, revisions, unkept: new Set(), links }

    const roots = new Set<string>()
    for (const tag of await repository.manifests.tags.list()) {
      const digest = await repository.manifests.tags.get(tag)
      if (digest !== undefined && revisions.has(digest)) roots.add(digest)
    }
    for (const digest of revisions.keys()) {
      if (roots.has(digest)) continue
      if (touched.has(digest) || (youngSince !== undefined && await this.revisionTime(name, digest) > youngSince)) roots.add(digest)
    }
    const kept = reach(revisions, roots)
    return { name, revisions, unkept: new Set([...revisions.keys()].filter((digest) => !kept.has(digest))), links }
  }

  private async readReferences (name: string, digest: string): Promise<ManifestReferences> {
    let content: Buffer
    try {
      content = await this.registry.blobs.getContent(digest)
    } catch (error) {
      if (!(error instanceof RegistryError)) throw error
      // A revision without content names nothing that can be marked.
      this.options.log?.warn({ repository: name, digest }, 'garbage collection: a manifest revision has no content')
      return { blobs: [], children: [] }
    }
    try {
      return referencesOf(content)
    } catch (error) {
      // Unreadable, so what it names is unknown: stop rather than sweep blobs it may need.
      throw new Error(`garbage collection stopped: manifest ${name}@${digest} is not JSON`, { cause: error })
    }
  }

  private async revisionTime (name: string, digest: string): Promise<number> {
    try {
      return (await this.registry.driver.stat(pathFor({ kind: 'manifestRevisionLink', name, ...digestParts(digest) }))).modTime.getTime()
    } catch (error) {
      if (isPathNotFound(error)) return 0
      throw error
    }
  }
}

/** Revisions reached from the roots: children of an index, referrers of a subject. */
function reach (revisions: ReadonlyMap<string, ManifestReferences>, roots: ReadonlySet<string>): Set<string> {
  const referrers = new Map<string, string[]>()
  for (const [digest, references] of revisions) {
    if (references.subject !== undefined) referrers.set(references.subject, [...(referrers.get(references.subject) ?? []), digest])
  }
  const kept = new Set(roots)
  const pending = [...roots]
  while (pending.length > 0) {
    const digest = pending.pop() as string
    for (const next of [...(revisions.get(digest)?.children ?? []), ...(referrers.get(digest) ?? [])]) {
      if (revisions.has(next) && !kept.has(next)) {
        kept.add(next)
        pending.push(next)
      }
    }
  }
  return kept
}

function markReferences (marked: Set<string>, digest: string, references: ManifestReferences): void {
  marked.add(digest)
  for (const blob of references.blobs) marked.add(blob)
  for (const child of references.children) marked.add(child)
}

/**
 * `alg:hex` of the link files `<root>/<alg>/<hex>/link` (revisions, blob links). A directory
 * without its link is not one: distribution's deletes leave them behind.
 */
async function listDigests (registry: RegistryService, root: string): Promise<string[]> {
  const digests: string[] = []
  try {
    for await (const info of registry.driver.walk(root)) {
      if (info.isDir) continue
      const parts = info.path.slice(root.length + 1).split('/')
      if (parts.length !== 3 || parts[2] !== 'link') continue
      const digest = `${parts[0] as string}:${parts[1] as string}`
      if (isDigestString(digest)) digests.push(digest)
    }
  } catch (error) {
    if (!isPathNotFound(error)) throw error
  }
  return digests
}

/** The digest of a blob's data path (`.../blobs/<alg>/<xx>/<hex>/data`), if it is one. */
function digestOfDataPath (path: string): string | undefined {
  const parts = path.split('/')
  const hex = parts.at(-2)
  const algorithm = parts.at(-4)
  if (hex === undefined || algorithm === undefined) return undefined
  const digest = `${algorithm}:${hex}`
  return isDigestString(digest) && pathFor({ kind: 'blobData', ...digestParts(digest) }) === path ? digest : undefined
}

async function deleteIfPresent (registry: RegistryService, path: string): Promise<void> {
  try {
    await registry.driver.delete(path)
  } catch (error) {
    if (!isPathNotFound(error)) throw error
  }
}
