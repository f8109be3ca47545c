/**
 * Manifests, tags and referrers of one repository. A manifest's bytes are stored once in the
 * blob store under their digest (as CNCF distribution stores them) and linked as a revision of
 * the repository; tags point at revisions; a manifest with a subject is indexed as a referrer
 * of that subject.
 */

import { RegistryError } from '../errors.js'
import { digestOf, parseDigest, type Algorithm } from '../digest.js'
import { assertTag, type Reference } from '../reference.js'
import { compareLexically } from '../paging.js'
import { EMPTY_BLOB_DIGEST } from '../manifest/media-types.js'
import { mediaTypeOf, parseManifest, type Descriptor } from '../manifest/parse.js'
import { childNames, isPathNotFound, type StorageDriver } from './driver.js'
import { digestParts, pathFor } from './paths.js'
import type { BlobStore, LinkedBlobStore } from './blobs.js'
import { cacheKeys, type CachedManifest, type RegistryCache } from './cache.js'

export interface StoredManifest {
  digest: string
  mediaType: string
  content: Buffer
}

/** A manifest validated for storing, with what it names. */
export interface PreparedManifest {
  bytes: Buffer
  digest: string
  mediaType: string
  /** Tags to point at it: the reference's and every `?tag=`. */
  tags: string[]
  /** Blobs it references (config and layers), without repeats. */
  blobs: string[]
  /** Manifests an index lists. */
  children: string[]
  subject?: string
}

/** Reference checks of one manifest PUT run at most this many storage calls at a time. */
const REFERENCE_CHECKS_AT_ONCE = 8

export interface PutManifestResult {
  digest: string
  subject?: string
  tags: string[]
}

/** Verifies a schema 1 manifest; returns the digest it is known by, its name, tag and the blobs it needs. */
export type Schema1Verifier = (bytes: Buffer) => { digest: string, name: string, tag: string, blobs: string[] }

async function readLink (driver: StorageDriver, path: string): Promise<string | undefined> {
  try {
    return (await driver.getContent(path)).toString('utf8').trim()
  } catch (error) {
    if (isPathNotFound(error)) return undefined
    throw error
  }
}

async function deleteIfPresent (driver: StorageDriver, path: string): Promise<boolean> {
  try {
    await driver.delete(path)
    return true
  } catch (error) {
    if (isPathNotFound(error)) return false
    throw error
  }
}

/** Drivers whose reverse tag index was seen complete: the marker is never removed. */
const reverseIndexSeen = new WeakSet<StorageDriver>()

/** Tags read at once when a manifest delete checks which of them point at it. */
const TAG_READS_AT_ONCE = 8

export class TagStore {
  /** The last listing and its sorted names: a tags page reads the same listing again and again. */
  private lastListing: { paths: string[], names: string[] } | undefined

  constructor (private readonly driver: StorageDriver, private readonly name: string, private readonly cache: RegistryCache) {}

  /** The digest a tag points at, or undefined. */
  async get (tag: string): Promise<string | undefined> {
    return await this.cache.lookup(cacheKeys.tag(this.name, tag), async () =>
      await readLink(this.driver, pathFor({ kind: 'tagCurrentLink', name: this.name, tag })))
  }

  async set (tag: string, digest: string): Promise<void> {
    await this.cache.invalidate(cacheKeys.tag(this.name, tag))
    // The reverse entry before the link: a set stopped half way leaves at most an entry that
    // names a tag pointing elsewhere, which readers of the reverse index check anyway.
    await this.driver.putContent(this.reverseEntry(tag, digest), tag)
    // The current link first: a tag's directory exists only once it points somewhere, so a set
    // stopped half way never lists a tag that resolves to nothing. The index is history.
    await this.driver.putContent(pathFor({ kind: 'tagCurrentLink', name: this.name, tag }), digest)
    await this.driver.putContent(pathFor({ kind: 'tagIndexEntry', name: this.name, tag, ...digestParts(digest) }), digest)
  }

  /** Removes a tag; false when there was none. */
  async delete (tag: string): Promise<boolean> {
    await this.cache.invalidate(cacheKeys.tag(this.name, tag))
    return await deleteIfPresent(this.driver, pathFor({ kind: 'tag', name: this.name, tag }))
  }

  private reverseEntry (tag: string, digest: string): string {
    return pathFor({ kind: 'tagOfManifest', name: this.name, tag, ...digestParts(digest) })
  }

  /** Forgets that a tag pointed at a manifest (it was moved or removed). */
  async forgetReverse (tag: string, digest: string): Promise<void> {
    await deleteIfPresent(this.driver, this.reverseEntry(tag, digest))
  }

  /** Records that a tag points at a manifest (reindex: tags written by another program). */
  async recordReverse (tag: string, digest: string): Promise<void> {
    await this.driver.putContent(this.reverseEntry(tag, digest), tag)
  }

  /**
   * The tags that may point at a manifest: those the reverse index names when it is complete
   * (built by reindex and kept since by every tag change), else every tag. Callers check each.
   */
  async candidatesFor (digest: string): Promise<string[]> {
    if (!await this.reverseIndexBuilt()) return await this.list()
    return await childNames(this.driver, pathFor({ kind: 'tagsOfManifest', name: this.name, ...digestParts(digest) }))
  }

  /** Removes a manifest's reverse entries (it is deleted). */
  async forgetManifest (digest: string): Promise<void> {
    await deleteIfPresent(this.driver, pathFor({ kind: 'tagsOfManifest', name: this.name, ...digestParts(digest) }))
  }

  private async reverseIndexBuilt (): Promise<boolean> {
    if (reverseIndexSeen.has(this.driver)) return true
    try {
      await this.driver.stat(pathFor({ kind: 'manifestTagsBuilt' }))
    } catch (error) {
      if (isPathNotFound(error)) return false
      throw error
    }
    reverseIndexSeen.add(this.driver)
    return true
  }

  /** Every tag, in lexical order. */
  async list (): Promise<string[]> {
    let paths: string[]
    try {
      paths = await this.driver.list(pathFor({ kind: 'tagsRoot', name: this.name }))
    } catch (error) {
      if (isPathNotFound(error)) return []
      throw error
    }
    const last = this.lastListing
    if (last === undefined || last.paths.length !== paths.length || !last.paths.every((path, i) => path === paths[i])) {
      this.lastListing = { paths, names: paths.map((path) => path.slice(path.lastIndexOf('/') + 1)).sort(compareLexically) }
    }
    return (this.lastListing as { names: string[] }).names.slice()
  }
}

export class ReferrerStore {
  constructor (private readonly driver: StorageDriver, private readonly name: string) {}

  async add (subject: string, digest: string): Promise<void> {
    const s = digestParts(subject)
    await this.driver.putContent(pathFor({ kind: 'referrerLink', name: this.name, subjectAlgorithm: s.algorithm, subjectHex: s.hex, ...digestParts(digest) }), digest)
  }

  async remove (subject: string, digest: string): Promise<void> {
    const s = digestParts(subject)
    await deleteIfPresent(this.driver, pathFor({ kind: 'referrer', name: this.name, subjectAlgorithm: s.algorithm, subjectHex: s.hex, ...digestParts(digest) }))
  }

  /** Digests of the manifests recorded as referrers of `subject`, sorted. */
  async list (subject: string): Promise<string[]> {
    const root = pathFor({ kind: 'referrersOfSubject', name: this.name, ...digestParts(subject) })
    const digests: string[] = []
    for (const algorithm of await childNames(this.driver, root)) {
      for (const hex of await childNames(this.driver, `${root}/${algorithm}`)) digests.push(`${algorithm}:${hex}`)
    }
    return digests.sort(compareLexically)
  }
}

export interface ManifestStoreOptions {
  maxTagsPerRequest: number
  schema1?: Schema1Verifier
}

export class ManifestStore {
  constructor (
    private readonly driver: StorageDriver,
    private readonly blobs: BlobStore,
    private readonly linked: LinkedBlobStore,
    readonly tags: TagStore,
    readonly referrers: ReferrerStore,
    private readonly name: string,
    private readonly options: ManifestStoreOptions,
    private readonly cache: RegistryCache
  ) {}

  private revisionLink (digest: string): string {
    return pathFor({ kind: 'manifestRevisionLink', name: this.name, ...digestParts(digest) })
  }

  /** True when the repository holds this manifest revision. */
  async exists (digest: string): Promise<boolean> {
    return await this.cache.lookup(cacheKeys.revision(this.name, digest), async () => {
      try {
        return (await this.driver.stat(this.revisionLink(digest))).isDir ? undefined : '1'
      } catch (error) {
        if (isPathNotFound(error)) return undefined
        throw error
      }
    }) !== undefined
  }

  /** A manifest's bytes and media type: immutable under their digest, so kept in memory once read. */
  private async content (digest: string): Promise<CachedManifest> {
    return await this.cache.manifest(digest, async () => {
      const content = await this.blobs.getContent(digest)
      return { mediaType: mediaTypeOf(content), content }
    })
  }

  /** True when the repository holds anything: a manifest revision or a blob link. */
  async repositoryExists (): Promise<boolean> {
    for (const root of [pathFor({ kind: 'manifestRevisionsRoot', name: this.name }), pathFor({ kind: 'layersRoot', name: this.name })]) {
      for (const algorithm of await childNames(this.driver, root)) {
        if ((await childNames(this.driver, `${root}/${algorithm}`)).length > 0) return true
      }
    }
    return false
  }

  private async unknown (detail: Record<string, string>): Promise<RegistryError> {
    if (!await this.repositoryExists()) return new RegistryError('NAME_UNKNOWN', { name: this.name })
    return new RegistryError('MANIFEST_UNKNOWN', detail)
  }

  /** The digest a reference names in this repository; MANIFEST_UNKNOWN / NAME_UNKNOWN when none. */
  async resolve (reference: Reference): Promise<string> {
    if (reference.kind === 'tag') {
      const digest = await this.tags.get(reference.tag)
      if (digest !== undefined && await this.exists(digest)) return digest
      throw await this.unknown({ tag: reference.tag })
    }
    if (await this.exists(reference.digest)) return reference.digest
    throw await this.unknown({ digest: reference.digest })
  }

  async get (reference: Reference): Promise<StoredManifest> {
    const digest = await this.resolve(reference)
    const { mediaType, content } = await this.content(digest)
    return { digest, mediaType, content }
  }

  /**
   * Validates a manifest for `reference` and every tag in `extraTags`: its grammar, digest and
   * that everything it references is stored. Writes nothing.
   */
  async prepare (bytes: Buffer, contentType: string | undefined, reference: Reference, extraTags: readonly string[] = []): Promise<PreparedManifest> {
    const manifest = this.parse(bytes, contentType, reference, extraTags)
    await this.verifyReferences(manifest)
    return manifest
  }

  /** Checks that everything a parsed manifest references is stored (see `checkReferences`). */
  async verifyReferences (manifest: PreparedManifest): Promise<void> {
    await this.checkReferences(manifest.blobs, [...new Set(manifest.children)])
  }

  /** `prepare` without the reference check: grammar, digest and tags only. Reads nothing. */
  parse (bytes: Buffer, contentType: string | undefined, reference: Reference, extraTags: readonly string[] = []): PreparedManifest {
    const tags = [...new Set([...(reference.kind === 'tag' ? [reference.tag] : []), ...extraTags])]
    if (tags.length > this.options.maxTagsPerRequest) {
      throw new RegistryError('TAG_INVALID', { reason: `more than ${this.options.maxTagsPerRequest} tags in one request` }, { statusCode: 414 })
    }
    for (const tag of tags) assertTag(tag)
    const parsed = parseManifest(bytes, contentType)
    const algorithm: Algorithm = reference.kind === 'digest' ? parseDigest(reference.digest).algorithm : 'sha256'
    let digest = digestOf(bytes, algorithm)
    let blobs = parsed.blobs.map((blob) => blob.digest)
    if (parsed.kind === 'schema1') {
      if (this.options.schema1 === undefined) {
        throw new RegistryError('MANIFEST_INVALID', { reason: 'schema 1 manifests are not accepted by this registry', mediaType: parsed.mediaType })
      }
      const verified = this.options.schema1(bytes)
      if (verified.name !== this.name) {
        throw new RegistryError('NAME_INVALID', { name: verified.name, reason: 'the manifest names another repository' })
      }
      if (reference.kind === 'tag' && verified.tag !== reference.tag) {
        throw new RegistryError('TAG_INVALID', { tag: verified.tag, reason: 'the manifest names another tag' })
      }
      digest = verified.digest
      blobs = verified.blobs
    }
    if (reference.kind === 'digest' && reference.digest !== digest) {
      throw new RegistryError('DIGEST_INVALID', { digest: reference.digest, computed: digest, reason: 'the manifest does not match the digest in the URL' })
    }
    const children = parsed.manifests.map((manifest: Descriptor) => manifest.digest)
    return {
      bytes,
      digest,
      mediaType: parsed.mediaType,
      tags,
      blobs: [...new Set(blobs)],
      children,
      ...(parsed.subject === undefined ? {} : { subject: parsed.subject.digest })
    }
  }

  /**
   * Stores a prepared manifest: its bytes, the revision link, its referrer entry, then its tags.
   * Returns what each tag pointed at before (undefined for a new tag).
   */
  async commit (manifest: PreparedManifest): Promise<Map<string, string | undefined>> {
    const previous = new Map<string, string | undefined>()
    await Promise.all(manifest.tags.map(async (tag) => { previous.set(tag, await this.tags.get(tag)) }))
    await this.blobs.putContent(manifest.digest, manifest.bytes)
    await this.driver.putContent(this.revisionLink(manifest.digest), manifest.digest)
    if (manifest.subject !== undefined) await this.referrers.add(manifest.subject, manifest.digest)
    await Promise.all(manifest.tags.map(async (tag) => { await this.tags.set(tag, manifest.digest) }))
    await Promise.all([...previous].map(async ([tag, before]) => {
      if (before !== undefined && before !== manifest.digest) await this.tags.forgetReverse(tag, before)
    }))
    return previous
  }

  /**
   * Checks that every blob and child manifest a manifest names is stored, asking storage (never
   * a cache: a cached answer may outlive data removed by a collection or by hand). At most
   * REFERENCE_CHECKS_AT_ONCE at a time, stopping at the first missing one: the work is bounded
   * by that, not by how many the manifest names.
   */
  private async checkReferences (blobs: readonly string[], children: readonly string[]): Promise<void> {
    const checks: Array<{ digest: string, present: () => Promise<boolean> }> = [
      ...blobs.filter((digest) => digest !== EMPTY_BLOB_DIGEST).map((digest) => ({ digest, present: async () => await this.linked.isStoredHere(digest) })),
      ...children.map((digest) => ({ digest, present: async () => await this.revisionStored(digest) }))
    ]
    // Checks are taken in order, so every one before a missing one is finished too when the
    // workers stop: sorted by position, the first reported is the manifest's first missing.
    const found: Array<{ position: number, digest: string }> = []
    let next = 0
    const worker = async (): Promise<void> => {
      while (found.length === 0 && next < checks.length) {
        const position = next++
        const check = checks[position] as { digest: string, present: () => Promise<boolean> }
        if (!await check.present()) found.push({ position, digest: check.digest })
      }
    }
    await Promise.all(Array.from({ length: Math.min(REFERENCE_CHECKS_AT_ONCE, checks.length) }, worker))
    const missing = found.sort((a, b) => a.position - b.position).map((entry) => entry.digest)
    if (missing.length > 0) {
      throw new RegistryError('MANIFEST_BLOB_UNKNOWN', {
        digest: missing[0],
        missing: missing.slice(0, 10),
        reason: `${missing.length === 1 ? 'a reference is' : 'references are'} not stored in this repository; checking stopped at the first missing`
      })
    }
  }

  /** Whether the revision link is in storage, asked of storage itself. */
  private async revisionStored (digest: string): Promise<boolean> {
    try {
      return !(await this.driver.stat(this.revisionLink(digest))).isDir
    } catch (error) {
      if (isPathNotFound(error)) return false
      throw error
    }
  }

  /** Deletes a revision, every tag pointing at it and its referrer entry; returns the tags removed. */
  async delete (digest: string): Promise<string[]> {
    if (!await this.exists(digest)) throw await this.unknown({ digest })
    let subject: string | undefined
    try {
      subject = parseManifest((await this.content(digest)).content, undefined).subject?.digest
    } catch {
      subject = undefined
    }
    // The revision goes last: a delete stopped half way (a crash, a failed call) still finds
    // the manifest, and its retry removes what is left instead of leaving tags on nothing.
    // Only the tags the reverse index names (every tag when it is not complete), read a few at
    // a time: a repository with many tags is not read whole for each delete.
    const candidates = await this.tags.candidatesFor(digest)
    const removed: string[] = []
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < candidates.length) {
        const tag = candidates[next++] as string
        if (await this.tags.get(tag) === digest && await this.tags.delete(tag)) removed.push(tag)
      }
    }
    await Promise.all(Array.from({ length: Math.min(TAG_READS_AT_ONCE, candidates.length) }, worker))
    removed.sort(compareLexically)
    await this.tags.forgetManifest(digest)
    if (subject !== undefined) await this.referrers.remove(subject, digest)
    await this.cache.invalidate(cacheKeys.revision(this.name, digest))
    await deleteIfPresent(this.driver, pathFor({ kind: 'manifestRevision', name: this.name, ...digestParts(digest) }))
    // Not needed for correctness (reads check the revision link first), but frees the memory.
    this.cache.forgetManifest(digest)
    return removed
  }

  /** Removes one tag; returns the digest it pointed at. MANIFEST_UNKNOWN when it does not exist. */
  async untag (tag: string): Promise<string> {
    const digest = await this.tags.get(tag)
    if (!await this.tags.delete(tag) || digest === undefined) throw await this.unknown({ tag })
    await this.tags.forgetReverse(tag, digest)
    return digest
  }

  /** Descriptors of the manifests whose subject is `subject`, sorted by digest. */
  async referrersOf (subject: string): Promise<Descriptor[]> {
    const descriptors: Descriptor[] = []
    for (const digest of await this.referrers.list(subject)) {
      if (!await this.exists(digest)) continue
      const { content } = await this.content(digest)
      const parsed = parseManifest(content, undefined)
      const descriptor: Descriptor = { mediaType: parsed.mediaType, digest, size: content.length }
      if (parsed.artifactType !== undefined) descriptor.artifactType = parsed.artifactType
      if (parsed.annotations !== undefined) descriptor.annotations = parsed.annotations
      descriptors.push(descriptor)
    }
    return descriptors
  }
}
