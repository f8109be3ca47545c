/**
 * The registry's storage services over one driver: the global blob store, the catalog, the
 * write path's policy hooks and events, and, per repository, the write path itself
 * (repository.ts) over its linked blobs, uploads, manifests, tags and referrers.
 */

import { RegistryError } from '../errors.js'
import { assertName, isValidName } from '../reference.js'
import { childNames, type StorageDriver } from './driver.js'
import { wrapDriver, type StorageBase } from './base.js'
import { ROOT, pathFor } from './paths.js'
import { BlobStore } from './blobs.js'
import { UploadSessions } from './uploads.js'
import type { Schema1Verifier } from './manifests.js'
import { RegistryCache } from './cache.js'
import { Repository } from './repository.js'
import { RegistryEvents } from '../events.js'
import { Policies, readOnlyPolicy } from '../policies.js'
import { CatalogIndex } from '../lifecycle/catalog-index.js'
import { BlobUse } from './blob-use.js'

export { Repository }

export interface RegistryServiceOptions {
  /** Whether manifests, tags and blobs may be deleted. */
  deleteEnabled?: boolean
  /** Most tags one manifest PUT may set. */
  maxTagsPerRequest?: number
  /** Verifies schema 1 manifests; without it they are refused. */
  schema1?: Schema1Verifier
  /** Caches in front of storage (default: manifests and blob sizes in process memory, no shared cache). */
  cache?: RegistryCache
  /** Honour a mount without `from` by finding the blob in any repository (default false). */
  mountWithoutFrom?: boolean
  /** Refuse every change (distribution's read-only maintenance mode); switchable with `readOnly`. */
  readOnly?: boolean
}

const MAX_KEPT_REPOSITORIES = 1000

export class RegistryService {
  readonly blobs: BlobStore
  readonly uploadSessions = new UploadSessions()
  readonly deleteEnabled: boolean
  readonly mountWithoutFrom: boolean
  readonly cache: RegistryCache
  /** Typed events after each committed change, and for pulls. */
  readonly events = new RegistryEvents()
  /** Hooks that may refuse a change before it is committed. */
  readonly policies = new Policies()
  /** Blobs the write path is using now: what a collector must not remove from under it. */
  readonly blobUse = new BlobUse()
  /** Read-only mode: every change is refused while true. */
  readOnly: boolean
  /** Repositories this process has seen hold something: `repository.created` is not asked of storage again. */
  readonly knownRepositories = new Set<string>()

  /** The driver behind the base layer: paths checked, errors normalised, actions timed. */
  readonly driver: StorageBase
  /** The catalog's index of repositories, kept by the write path's events (see catalog-index.ts). */
  readonly catalogIndex: CatalogIndex

  constructor (driver: StorageDriver, readonly options: RegistryServiceOptions = {}) {
    this.driver = wrapDriver(driver)
    this.cache = options.cache ?? new RegistryCache()
    this.blobs = new BlobStore(this.driver, this.cache)
    this.deleteEnabled = options.deleteEnabled ?? false
    this.mountWithoutFrom = options.mountWithoutFrom ?? false
    this.readOnly = options.readOnly ?? false
    this.policies.add(readOnlyPolicy(() => this.readOnly))
    this.catalogIndex = new CatalogIndex(this.driver, () => this.walkRepositories(), async (name) => await this.repository(name).manifests.repositoryExists())
    // Awaited before the change answers: a client that pushed, then asks the catalog, finds it.
    const indexed = async ({ repository }: { repository: string }): Promise<void> => { await this.catalogIndex.ensure(repository) }
    const emptied = async ({ repository }: { repository: string }): Promise<void> => { await this.catalogIndex.removeIfEmpty(repository) }
    this.events.on('repository.created', indexed, { wait: true })
    this.events.on('manifest.pushed', indexed, { wait: true })
    this.events.on('manifest.deleted', emptied, { wait: true })
    this.events.on('blob.deleted', emptied, { wait: true })
  }

  rememberRepository (name: string): void {
    if (this.knownRepositories.size >= MAX_KEPT_REPOSITORIES) this.knownRepositories.clear()
    this.knownRepositories.add(name)
  }

  /** Repositories are stateless views: kept by name so a request does not build five objects. */
  private readonly repositories = new Map<string, Repository>()

  repository (name: string): Repository {
    let repository = this.repositories.get(name)
    if (repository === undefined) {
      repository = new Repository(this, assertName(name))
      if (this.repositories.size >= MAX_KEPT_REPOSITORIES) this.repositories.delete(this.repositories.keys().next().value as string)
      this.repositories.set(name, repository)
    }
    return repository
  }

  /** Throws UNSUPPORTED (405) unless deletes are enabled. */
  assertDeleteEnabled (): void {
    if (!this.deleteEnabled) throw new RegistryError('UNSUPPORTED', { reason: 'deletes are disabled on this registry' })
  }

  /**
   * Every repository directory in storage with the names of its children, depth first, walked
   * from the tree itself (a collection and the catalog's rebuild must find every one).
   */
  async * repositoryDirectories (): AsyncGenerator<{ name: string, children: string[] }> {
    const pending: Array<{ path: string, name: string }> = [{ path: pathFor({ kind: 'repositoriesRoot' }), name: '' }]
    while (pending.length > 0) {
      const { path, name } = pending.pop() as { path: string, name: string }
      const children = await childNames(this.driver, path)
      if (name !== '' && isValidName(name)) yield { name, children }
      for (const child of children) {
        if (!child.startsWith('_')) pending.push({ path: `${path}/${child}`, name: name === '' ? child : `${name}/${child}` })
      }
    }
  }

  /** Walks the tree: every repository that holds a manifest or a blob link, depth first. */
  async * walkRepositories (): AsyncGenerator<string> {
    for await (const { name, children } of this.repositoryDirectories()) {
      if ((children.includes('_manifests') || children.includes('_layers')) && await this.repository(name).manifests.repositoryExists()) {
        yield name
      }
    }
  }

  /** Whether the tree has any repository directory (a cheap look: one listing). */
  async holdsRepositories (): Promise<boolean> {
    return (await childNames(this.driver, pathFor({ kind: 'repositoriesRoot' }))).length > 0
  }

  /** Names of every repository that holds a manifest or a blob link, in lexical order, from the catalog's index. */
  async catalog (): Promise<string[]> {
    return await this.catalogIndex.list()
  }

  /**
   * Removes uploads started before `olderThan` (abandoned by their clients). Returns what it
   * removed. Safe beside running uploads: only old ones go.
   */
  async purgeUploads (olderThan: Date): Promise<Array<{ name: string, uuid: string, startedAt: Date }>> {
    const purged: Array<{ name: string, uuid: string, startedAt: Date }> = []
    for await (const { name, children } of this.repositoryDirectories()) {
      if (!children.includes('_uploads')) continue
      const uploads = this.repository(name).uploads
      for (const uuid of await childNames(this.driver, pathFor({ kind: 'uploadsRoot', name }))) {
        const startedAt = await uploads.startedAt(uuid)
        if (startedAt.getTime() < olderThan.getTime()) {
          await this.driver.delete(pathFor({ kind: 'upload', name, uuid }))
          purged.push({ name, uuid, startedAt })
        }
      }
    }
    // Temporary files of atomic writes cut short by a crash, as old as the uploads purged.
    await this.driver.removeTemporaryFiles?.(ROOT, olderThan)
    return purged
  }

  async close (): Promise<void> {
    await this.cache.close()
    await this.driver.close?.()
  }
}
