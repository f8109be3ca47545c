/**
 * The catalog's index: one small object per repository that holds something, in one flat
 * directory beside distribution's tree, so `GET /v2/_catalog` costs one listing instead of a
 * walk of every repository (distribution's #947). Replicas share it through storage.
 *
 * The write path keeps it current (an entry on `repository.created` and `manifest.pushed`, and
 * its removal once a delete leaves the repository empty); a server builds it from the tree when
 * it starts on a tree without one (the catalog walks the tree until then), and `reindex` rebuilds
 * it, so a tree written by distribution is found too. A tree changed by another program after
 * that is seen after the next `reindex`.
 */

import { isValidName } from '../reference.js'
import { compareLexically } from '../paging.js'
import { childNames, isPathNotFound, type StorageDriver } from '../storage/driver.js'
import { nameOfSegment, pathFor } from '../storage/paths.js'

export class CatalogIndex {
  /** Set once the built marker is seen: it is never removed. */
  private built = false
  /** The first build from the tree, shared by the requests that wait for it. */
  private building: Promise<string[]> | undefined

  constructor (
    private readonly driver: StorageDriver,
    /** Walks the tree: every repository that holds something. */
    private readonly walk: () => AsyncIterable<string>,
    /** Asks storage whether a repository holds something now. */
    private readonly holdsSomething: (name: string) => Promise<boolean>
  ) {}

  async add (name: string): Promise<void> {
    await this.driver.putContent(pathFor({ kind: 'catalogIndexEntry', name }), name)
  }

  /**
   * Writes a repository's entry unless it is there: a push to a known repository costs a stat,
   * not a write. Safe against a concurrent `removeIfEmpty` elsewhere: an entry seen here was
   * seen before that removal, whose second look then finds the change this call follows.
   */
  async ensure (name: string): Promise<void> {
    try {
      const info = await this.driver.stat(pathFor({ kind: 'catalogIndexEntry', name }))
      if (!info.isDir) return
    } catch (error) {
      if (!isPathNotFound(error)) throw error
    }
    await this.add(name)
  }

  /**
   * Removes a repository's entry when it holds nothing. Asked again after the removal: a push
   * that created it meanwhile either sees its entry removed before it writes its own, or is
   * seen here and the entry is written back.
   */
  async removeIfEmpty (name: string): Promise<void> {
    if (await this.holdsSomething(name)) return
    await this.remove(name)
    if (await this.holdsSomething(name)) await this.add(name)
  }

  private async remove (name: string): Promise<void> {
    try {
      await this.driver.delete(pathFor({ kind: 'catalogIndexEntry', name }))
    } catch (error) {
      if (!isPathNotFound(error)) throw error
    }
  }

  /**
   * Every repository, in lexical order: from the index, or, until it is built, from a walk of the
   * tree (a read never writes; `buildIfAbsent` and `rebuild` do).
   */
  async list (): Promise<string[]> {
    if (!await this.isBuilt()) {
      const found: string[] = []
      for await (const name of this.walk()) found.push(name)
      return found.sort(compareLexically)
    }
    return (await childNames(this.driver, pathFor({ kind: 'catalogIndexRoot' })))
      .map(nameOfSegment)
      .filter(isValidName)
      .sort(compareLexically)
  }

  /**
   * Builds the index when it never was (a server starting on a tree without one, e.g. written
   * by distribution). Resolves when it is built; concurrent callers share one build.
   */
  async buildIfAbsent (): Promise<void> {
    if (await this.isBuilt()) return
    this.building ??= this.rebuild().finally(() => { this.building = undefined })
    await this.building
  }

  private async isBuilt (): Promise<boolean> {
    if (this.built) return true
    try {
      await this.driver.stat(pathFor({ kind: 'catalogBuilt' }))
      this.built = true
    } catch (error) {
      if (!isPathNotFound(error)) throw error
    }
    return this.built
  }

  /**
   * Rebuilds the index from the tree: an entry for every repository found, none for the others
   * (asked again before removal, for a repository created while the walk ran). Returns the
   * repositories found.
   */
  async rebuild (): Promise<string[]> {
    const found: string[] = []
    for await (const name of this.walk()) {
      await this.add(name)
      found.push(name)
    }
    const kept = new Set(found)
    for (const segment of await childNames(this.driver, pathFor({ kind: 'catalogIndexRoot' }))) {
      const name = nameOfSegment(segment)
      if (!kept.has(name) && isValidName(name)) await this.removeIfEmpty(name)
    }
    await this.driver.putContent(pathFor({ kind: 'catalogBuilt' }), new Date().toISOString())
    this.built = true
    return found.sort(compareLexically)
  }
}
