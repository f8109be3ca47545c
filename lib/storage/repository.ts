/**
 * One repository's write path and reads: the one service every change to a repository goes
 * through. Each change runs, in this order: the policy hooks (which may refuse it), the commit
 * to storage (through the stores, which keep the caches in step), then the typed events. The
 * route handlers only parse requests and answer; the stores below are the commit steps and are
 * not called from anywhere else.
 */

import type { Readable } from 'node:stream'
import { RegistryError } from '../errors.js'
import { parseDigest, type Algorithm } from '../digest.js'
import type { Reference } from '../reference.js'
import type { Descriptor } from '../manifest/parse.js'
import type { EventOrigin, RegistryEvent } from '../events.js'
import type { RepositoryChange } from '../policies.js'
import { LinkedBlobStore, type BlobDescriptor, type ByteRange } from './blobs.js'
import { UploadStore, type ByteSource, type UploadState } from './uploads.js'
import { ManifestStore, ReferrerStore, TagStore, type PreparedManifest, type PutManifestResult, type StoredManifest } from './manifests.js'
import type { RegistryService } from './registry.js'

/** Who may mount from where: the caller's grant, as far as mounting needs it. */
export interface MountAccess {
  /** Whether the caller may pull from a repository. */
  mayPull: (repository: string) => boolean
  /** Whether the caller may pull from every repository (needed to mount without `from`). */
  unrestricted: boolean
}

export interface CompleteUploadOptions {
  /** Offset the last chunk claims to start at (Content-Range). */
  start?: number
  /** Size the client expects the blob to have. */
  size?: number
  /** Last bytes of the blob, sent with the completing request. */
  body?: ByteSource
}

export class Repository {
  /** Commit steps: the write path's, not callers'. */
  readonly blobs: LinkedBlobStore
  readonly uploads: UploadStore
  readonly manifests: ManifestStore

  constructor (readonly service: RegistryService, readonly name: string) {
    const { driver } = service
    this.blobs = new LinkedBlobStore(service.blobs, driver, name)
    this.uploads = new UploadStore(driver, service.blobs, this.blobs, service.uploadSessions, name)
    this.manifests = new ManifestStore(driver, service.blobs, this.blobs, new TagStore(driver, name, service.cache), new ReferrerStore(driver, name), name, {
      maxTagsPerRequest: service.options.maxTagsPerRequest ?? 100,
      ...(service.options.schema1 === undefined ? {} : { schema1: service.options.schema1 })
    }, service.cache)
  }

  /** Runs the policy hooks on a change of this repository. */
  private async check (change: RepositoryChange): Promise<void> {
    await this.service.policies.check(change)
  }

  /** Emits events of this repository, with `repository.created` first when this change created it. */
  private async emit (origin: EventOrigin, created: boolean, ...events: RegistryEvent[]): Promise<void> {
    const time = new Date()
    const all: RegistryEvent[] = created ? [{ type: 'repository.created', repository: this.name, time, origin }, ...events] : events
    await this.service.events.emit(...all.map((event) => ({ ...event, time })))
  }

  /** Whether the repository held nothing before a change that may create it (asked only when someone listens). */
  private async isNew (): Promise<boolean> {
    if (!this.service.events.wanted('repository.created') || this.service.knownRepositories.has(this.name)) return false
    const exists = await this.manifests.repositoryExists()
    this.service.rememberRepository(this.name)
    return !exists
  }

  // Blobs

  /** A blob's descriptor; BLOB_UNKNOWN unless this repository links it and its data is stored. */
  async statBlob (digest: string): Promise<BlobDescriptor> {
    // A client asking about a blob may be about to name it in a manifest instead of uploading it.
    this.service.blobUse.touch(digest)
    return await this.blobs.get(digest)
  }

  /**
   * Serves a blob found by `statBlob` to a client: a redirect URL when the driver offers one,
   * else a stream of the blob (or a range of it). Emits `blob.pulled`.
   */
  async pullBlob (blob: BlobDescriptor, range: ByteRange | undefined, origin: EventOrigin): Promise<{ redirect: string } | { stream: Readable }> {
    const redirect = await this.service.blobs.redirectURL(blob.digest)
    const served = redirect !== undefined ? { redirect } : { stream: await this.blobs.open(blob.digest, range) }
    if (this.service.events.wanted('blob.pulled')) {
      await this.emit(origin, false, { type: 'blob.pulled', repository: this.name, time: new Date(), origin, digest: blob.digest, size: blob.size })
    }
    return served
  }

  /** Removes the repository's link to a blob; UNSUPPORTED unless deletes are enabled. */
  async deleteBlob (digest: string, origin: EventOrigin): Promise<void> {
    this.service.assertDeleteEnabled()
    parseDigest(digest)
    await this.check({ action: 'blob.delete', repository: this.name, origin, digest })
    await this.blobs.unlink(digest)
    await this.emit(origin, false, { type: 'blob.deleted', repository: this.name, time: new Date(), origin, digest })
  }

  /**
   * Links a blob stored elsewhere; returns its descriptor, or undefined when the mount does not
   * apply (the caller may not pull the source, the source does not hold it, or no `from` and
   * mounting from anywhere is off) and the client should upload instead. Existence is asked of
   * storage, never of a cache.
   */
  async mountBlob (digest: string, from: string | undefined, access: MountAccess, origin: EventOrigin): Promise<BlobDescriptor | undefined> {
    parseDigest(digest)
    const release = await this.service.blobUse.hold([digest])
    try {
      return await this.mountHeld(digest, from, access, origin)
    } finally {
      release()
    }
  }

  private async mountHeld (digest: string, from: string | undefined, access: MountAccess, origin: EventOrigin): Promise<BlobDescriptor | undefined> {
    if (from !== undefined) {
      if (!access.mayPull(from) || !await this.service.repository(from).blobs.isStoredHere(digest)) return undefined
    } else if (!this.service.mountWithoutFrom || !access.unrestricted || !await this.service.blobs.isStored(digest)) {
      return undefined
    }
    await this.check({ action: 'blob.mount', repository: this.name, origin, digest, ...(from === undefined ? {} : { from }) })
    const created = await this.isNew()
    await this.blobs.link(digest)
    const descriptor = await this.blobs.get(digest)
    await this.emit(origin, created, { type: 'blob.mounted', repository: this.name, time: new Date(), origin, digest, size: descriptor.size, ...(from === undefined ? {} : { from }) })
    return descriptor
  }

  // Uploads

  async startUpload (algorithm: Algorithm, origin: EventOrigin): Promise<UploadState> {
    await this.check({ action: 'upload.start', repository: this.name, origin })
    return await this.uploads.start(algorithm)
  }

  /** The upload's state; BLOB_UPLOAD_UNKNOWN when it does not exist here. */
  async uploadStatus (uuid: string): Promise<UploadState> {
    return await this.uploads.state(uuid)
  }

  async appendUpload (uuid: string, body: ByteSource, start: number | undefined, origin: EventOrigin): Promise<UploadState> {
    await this.check({ action: 'upload.append', repository: this.name, origin, uuid })
    return await this.uploads.append(uuid, body, start === undefined ? {} : { start })
  }

  /** Finishes an upload: the policy hooks run before its last bytes are read. */
  async completeUpload (uuid: string, digest: string, options: CompleteUploadOptions, origin: EventOrigin): Promise<BlobDescriptor> {
    parseDigest(digest)
    await this.check({ action: 'blob.push', repository: this.name, origin, digest })
    const created = await this.isNew()
    const release = await this.service.blobUse.hold([digest])
    let blob: BlobDescriptor
    try {
      blob = await this.uploads.complete(uuid, digest, options)
    } finally {
      release()
    }
    await this.emit(origin, created, { type: 'blob.pushed', repository: this.name, time: new Date(), origin, digest: blob.digest, size: blob.size })
    return blob
  }

  /** A blob in one request (POST with `digest`): nothing stays behind when it fails. */
  async pushBlob (digest: string, body: ByteSource, origin: EventOrigin): Promise<BlobDescriptor> {
    const { algorithm } = parseDigest(digest)
    await this.check({ action: 'blob.push', repository: this.name, origin, digest })
    const created = await this.isNew()
    const state = await this.uploads.start(algorithm)
    const release = await this.service.blobUse.hold([digest])
    let blob: BlobDescriptor
    try {
      blob = await this.uploads.complete(state.uuid, digest, { body })
    } catch (error) {
      await this.uploads.cancel(state.uuid).catch(() => {})
      throw error
    } finally {
      release()
    }
    await this.emit(origin, created, { type: 'blob.pushed', repository: this.name, time: new Date(), origin, digest: blob.digest, size: blob.size })
    return blob
  }

  async cancelUpload (uuid: string, origin: EventOrigin): Promise<void> {
    await this.check({ action: 'upload.cancel', repository: this.name, origin, uuid })
    await this.uploads.cancel(uuid)
  }

  // Manifests and tags

  /** A manifest by tag or digest, without an event (HEAD, and reads of the registry's own). */
  async getManifest (reference: Reference): Promise<StoredManifest> {
    return await this.manifests.get(reference)
  }

  /** A manifest by tag or digest for a client, emitting `manifest.pulled`. */
  async pullManifest (reference: Reference, origin: EventOrigin): Promise<StoredManifest> {
    const manifest = await this.manifests.get(reference)
    if (this.service.events.wanted('manifest.pulled')) {
      await this.emit(origin, false, {
        type: 'manifest.pulled',
        repository: this.name,
        time: new Date(),
        origin,
        digest: manifest.digest,
        mediaType: manifest.mediaType,
        size: manifest.content.length,
        ...(reference.kind === 'tag' ? { tag: reference.tag } : {})
      })
    }
    return manifest
  }

  /**
   * Validates and stores a manifest under `reference` and every tag in `extraTags`. The policy
   * hooks see it validated; nothing is written unless every check and hook passes.
   */
  async putManifest (bytes: Buffer, contentType: string | undefined, reference: Reference, extraTags: readonly string[], origin: EventOrigin): Promise<PutManifestResult> {
    const manifest = this.manifests.parse(bytes, contentType, reference, extraTags)
    // Held from the reference check to the commit: a collection cannot remove what it names
    // in between, so a manifest is never stored naming a blob that is gone.
    const release = await this.service.blobUse.hold([manifest.digest, ...manifest.blobs, ...manifest.children])
    try {
      return await this.putHeld(manifest, origin)
    } finally {
      release()
    }
  }

  private async putHeld (manifest: PreparedManifest, origin: EventOrigin): Promise<PutManifestResult> {
    await this.manifests.verifyReferences(manifest)
    const bytes = manifest.bytes
    // What the hooks see is what the event says once it is stored.
    const described = {
      repository: this.name,
      origin,
      digest: manifest.digest,
      mediaType: manifest.mediaType,
      size: bytes.length,
      tags: manifest.tags,
      references: [...manifest.blobs, ...manifest.children],
      ...(manifest.subject === undefined ? {} : { subject: manifest.subject })
    }
    await this.check({ action: 'manifest.put', ...described })
    const created = await this.isNew()
    const previous = await this.manifests.commit(manifest)
    const time = new Date()
    const events: RegistryEvent[] = [{ type: 'manifest.pushed', time, ...described }]
    for (const tag of manifest.tags) {
      const before = previous.get(tag)
      if (before === manifest.digest) continue
      events.push({ type: 'tag.updated', repository: this.name, time, origin, tag, digest: manifest.digest, ...(before === undefined ? {} : { previous: before }) })
    }
    await this.emit(origin, created, ...events)
    return { digest: manifest.digest, tags: manifest.tags, ...(manifest.subject === undefined ? {} : { subject: manifest.subject }) }
  }

  /**
   * Deletes a manifest by digest (with every tag on it) or one tag; UNSUPPORTED unless deletes
   * are enabled.
   */
  async deleteManifest (reference: Reference, origin: EventOrigin): Promise<void> {
    this.service.assertDeleteEnabled()
    const time = new Date()
    if (reference.kind === 'tag') {
      await this.check({ action: 'tag.delete', repository: this.name, origin, tag: reference.tag })
      const digest = await this.manifests.untag(reference.tag)
      await this.emit(origin, false, { type: 'tag.deleted', repository: this.name, time, origin, tag: reference.tag, digest })
      return
    }
    await this.check({ action: 'manifest.delete', repository: this.name, origin, digest: reference.digest })
    const tags = await this.manifests.delete(reference.digest)
    await this.emit(origin, false,
      { type: 'manifest.deleted', repository: this.name, time, origin, digest: reference.digest, tags },
      ...tags.map((tag): RegistryEvent => ({ type: 'tag.deleted', repository: this.name, time, origin, tag, digest: reference.digest })))
  }

  /** Every tag, in lexical order; NAME_UNKNOWN when the repository holds nothing. */
  async listTags (): Promise<string[]> {
    const tags = await this.manifests.tags.list()
    if (tags.length === 0 && !await this.manifests.repositoryExists()) {
      throw new RegistryError('NAME_UNKNOWN', { name: this.name })
    }
    return tags
  }

  /** Descriptors of the manifests whose subject is `subject`, sorted by digest. */
  async referrers (subject: string): Promise<Descriptor[]> {
    parseDigest(subject)
    return await this.manifests.referrersOf(subject)
  }
}
