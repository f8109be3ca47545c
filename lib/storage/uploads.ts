/**
 * Blob uploads. Upload state lives in storage (`_uploads/<uuid>/data` and `startedat`), so
 * any process on the same storage can continue any upload. Bytes are hashed as they stream
 * in; when this process holds the hash state for the upload's data as it is now, finishing
 * does not read the data back. Otherwise (another process wrote the last chunk, this one
 * restarted, or a write failed) finishing re-reads the data once: Node's hash state cannot be
 * serialized. "As it is now" is the data file's size, time and driver token (S3's ETag) seen
 * when this process last wrote it: a replica that wrote the same number of other bytes since
 * does not pass for this process's own write.
 *
 * Completing is several steps (publish the data under its digest, link it, remove the upload).
 * Before the first, the upload records `completing` (the digest and size): after a crash at any
 * later point, the upload's status still answers and a retried completion finishes the job.
 */

import { randomUUID } from 'node:crypto'
import { RegistryError } from '../errors.js'
import { Digester, parseDigest, type Algorithm, DEFAULT_ALGORITHM } from '../digest.js'
import { isPathNotFound, type FileInfo, type StorageDriver } from './driver.js'
import { pathFor } from './paths.js'
import type { BlobDescriptor, BlobStore, LinkedBlobStore } from './blobs.js'

/** Bytes to append: a request body, or any (async) iterable of chunks. */
export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>

export interface UploadState {
  uuid: string
  /** Bytes received so far. */
  offset: number
  startedAt: Date
}

export interface AppendOptions {
  /** Offset the chunk claims to start at (Content-Range); RANGE_INVALID unless it is the current one. */
  start?: number
}

export interface CompleteOptions {
  /** Offset the last chunk claims to start at (Content-Range); RANGE_INVALID unless it is the current one. */
  start?: number
  /** Size the client expects the blob to have. */
  size?: number
  /** Last bytes of the blob, sent with the completing request. */
  body?: ByteSource
}

interface HashEntry {
  digester: Digester
  offset: number
  /** The data file's version when the hash last matched it (see `versionOf`). */
  version: string
}

/** An upload's state and the version of its data file. */
interface Current {
  state: UploadState
  version: string
  /** Set when a completion already published the data (and crashed before the end). */
  completing?: BlobDescriptor
}

function alreadyPublished (uuid: string): RegistryError {
  return new RegistryError('BLOB_UPLOAD_INVALID', { uuid, reason: 'the upload was completed; finish it with the same digest' })
}

function versionOf (info: FileInfo): string {
  return `${info.size}:${info.modTime.getTime()}:${info.etag ?? ''}`
}

/**
 * In-process hash states of uploads, keyed by repository and upload id, and the set of uploads
 * a request is writing to right now. Bounded: an evicted state only costs a re-read.
 */
export class UploadSessions {
  private readonly hashes = new Map<string, HashEntry>()
  private readonly busy = new Set<string>()

  constructor (private readonly maxEntries = 10_000) {}

  get (key: string): HashEntry | undefined {
    return this.hashes.get(key)
  }

  set (key: string, entry: HashEntry): void {
    this.hashes.delete(key)
    this.hashes.set(key, entry)
    if (this.hashes.size > this.maxEntries) {
      const oldest = this.hashes.keys().next().value
      if (oldest !== undefined) this.hashes.delete(oldest)
    }
  }

  forget (key: string): void {
    this.hashes.delete(key)
  }

  /** Marks an upload busy; false when another request holds it. */
  acquire (key: string): boolean {
    if (this.busy.has(key)) return false
    this.busy.add(key)
    return true
  }

  release (key: string): void {
    this.busy.delete(key)
  }
}

/** `Range` header value for an upload holding `offset` bytes, as distribution writes it. */
export function uploadRange (offset: number): string {
  return `0-${offset > 0 ? offset - 1 : 0}`
}

function assertContinues (uuid: string, state: UploadState, start: number | undefined): void {
  if (start !== undefined && start !== state.offset) {
    throw new RegistryError('RANGE_INVALID', { uuid, offset: state.offset, start }, { headers: { Range: uploadRange(state.offset) } })
  }
}

export class UploadStore {
  constructor (
    private readonly driver: StorageDriver,
    private readonly blobs: BlobStore,
    private readonly linked: LinkedBlobStore,
    private readonly sessions: UploadSessions,
    private readonly name: string
  ) {}

  private key (uuid: string): string {
    return `${this.name}\n${uuid}`
  }

  private dataPath (uuid: string): string {
    return pathFor({ kind: 'uploadData', name: this.name, uuid })
  }

  /** Starts an upload; `algorithm` is the one its bytes are hashed with as they arrive. */
  async start (algorithm: Algorithm = DEFAULT_ALGORITHM): Promise<UploadState> {
    const uuid = randomUUID()
    const startedAt = new Date()
    // Data first, then startedat: an upload exists once startedat does, so a crash between
    // the two leaves only a data file that a purge removes. Neither is synced (a sync of a
    // small file costs milliseconds here): an upload lost in a crash is restarted by its client,
    // and a startedat left empty reads as the data file's time.
    const data = await this.driver.writer(this.dataPath(uuid), false)
    await data.close()
    const started = await this.driver.writer(pathFor({ kind: 'uploadStartedAt', name: this.name, uuid }), false)
    try {
      await started.write(Buffer.from(startedAt.toISOString()))
    } finally {
      await started.close()
    }
    // Empty data has one version only: no need to look at it.
    this.sessions.set(this.key(uuid), { digester: new Digester(algorithm), offset: 0, version: '' })
    return { uuid, offset: 0, startedAt }
  }

  /**
   * When an upload started; for a directory without a readable `startedat` (a crash between
   * creating the data and recording the start), the data file's time, else the epoch.
   */
  async startedAt (uuid: string): Promise<Date> {
    try {
      const text = (await this.driver.getContent(pathFor({ kind: 'uploadStartedAt', name: this.name, uuid }))).toString('utf8').trim()
      const date = new Date(text)
      if (!Number.isNaN(date.getTime())) return date
    } catch (error) {
      if (!isPathNotFound(error)) throw error
    }
    try {
      return (await this.driver.stat(this.dataPath(uuid))).modTime
    } catch (error) {
      if (isPathNotFound(error)) return new Date(0)
      throw error
    }
  }

  /** The upload's state; BLOB_UPLOAD_UNKNOWN when it does not exist in this repository. */
  async state (uuid: string): Promise<UploadState> {
    return (await this.current(uuid)).state
  }

  private async current (uuid: string): Promise<Current> {
    let startedAt: Date
    try {
      const started = new Date((await this.driver.getContent(pathFor({ kind: 'uploadStartedAt', name: this.name, uuid }))).toString('utf8').trim())
      startedAt = Number.isNaN(started.getTime()) ? new Date(0) : started
    } catch (error) {
      if (isPathNotFound(error)) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', { uuid })
      throw error
    }
    try {
      const data = await this.driver.stat(this.dataPath(uuid))
      return { state: { uuid, offset: data.size, startedAt }, version: versionOf(data) }
    } catch (error) {
      if (!isPathNotFound(error)) throw error
    }
    // No data: a completion published it and stopped before removing the upload.
    const completing = await this.completing(uuid)
    if (completing === undefined) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', { uuid })
    return { state: { uuid, offset: completing.size, startedAt }, version: '', completing }
  }

  /** What a completion of this upload recorded before publishing, if one did. */
  private async completing (uuid: string): Promise<BlobDescriptor | undefined> {
    let text: string
    try {
      text = (await this.driver.getContent(pathFor({ kind: 'uploadCompleting', name: this.name, uuid }))).toString('utf8')
    } catch (error) {
      if (isPathNotFound(error)) return undefined
      throw error
    }
    const [digest = '', size = ''] = text.trim().split(' ')
    return { digest, size: Number(size) }
  }

  private async exclusive<T> (uuid: string, work: (current: Current) => Promise<T>): Promise<T> {
    const key = this.key(uuid)
    if (!this.sessions.acquire(key)) {
      const state = await this.state(uuid)
      throw new RegistryError('RANGE_INVALID', { uuid, reason: 'another request is writing to this upload' }, {
        headers: { Range: uploadRange(state.offset) }
      })
    }
    try {
      return await work(await this.current(uuid))
    } finally {
      this.sessions.release(key)
    }
  }

  /**
   * The hash state for the upload's data at `current`, when this process has it. At offset 0
   * it is always at hand (empty data has one version only): an upload started by another
   * process (a cluster worker, a replica) is hashed as it streams in here too. It starts as the
   * default algorithm; completing with another one re-reads the data.
   */
  private hashAt (uuid: string, current: Current): HashEntry | undefined {
    const entry = this.sessions.get(this.key(uuid))
    const offset = current.state.offset
    if (entry !== undefined && entry.offset === offset && (offset === 0 || entry.version === current.version)) return entry
    if (entry !== undefined) this.sessions.forget(this.key(uuid))
    if (offset === 0) return { digester: new Digester(DEFAULT_ALGORITHM), offset: 0, version: '' }
    return undefined
  }

  /**
   * Streams bytes onto the end of the upload. When the body breaks off (client gone), the
   * bytes received so far stay in the upload and its offset says so: the client can resume.
   * With `durable`, the data is synced before this returns (the upload is being completed).
   * Returns the upload's state after the append.
   */
  private async appendBody (uuid: string, current: Current, body: ByteSource, durable = false): Promise<Current> {
    const key = this.key(uuid)
    const hash = this.hashAt(uuid, current)
    // Until the append is recorded below, a failure leaves no hash state to trust.
    this.sessions.forget(key)
    const writer = await this.driver.writer(this.dataPath(uuid), true)
    let failure: unknown
    try {
      for await (const chunk of body) {
        await writer.write(chunk)
        if (hash !== undefined) {
          hash.digester.update(chunk)
          hash.offset += chunk.byteLength
        }
      }
    } catch (error) {
      failure = error
    }
    if (durable && failure === undefined) await writer.commit()
    else await writer.close()
    const info = await this.driver.stat(this.dataPath(uuid))
    const after: Current = { state: { ...current.state, offset: info.size }, version: versionOf(info) }
    if (hash !== undefined && hash.offset === info.size) {
      hash.version = after.version
      this.sessions.set(key, hash)
    }
    if (failure !== undefined) throw failure
    return after
  }

  /** Appends a chunk; with `start`, it must continue the upload exactly (else RANGE_INVALID, 416). */
  async append (uuid: string, body: ByteSource, options: AppendOptions = {}): Promise<UploadState> {
    return await this.exclusive(uuid, async (current) => {
      if (current.completing !== undefined) throw alreadyPublished(uuid)
      assertContinues(uuid, current.state, options.start)
      return (await this.appendBody(uuid, current, body)).state
    })
  }

  /**
   * Finishes the upload: appends the last bytes, verifies size and digest, publishes the blob
   * and links it into the repository. A failed check keeps the upload as it was.
   */
  async complete (uuid: string, digest: string, options: CompleteOptions = {}): Promise<BlobDescriptor> {
    const { algorithm } = parseDigest(digest)
    return await this.exclusive(uuid, async (before) => {
      if (before.completing !== undefined) return await this.finishPublished(uuid, digest, before.completing)
      assertContinues(uuid, before.state, options.start)
      const current = options.body === undefined ? before : await this.appendBody(uuid, before, options.body, true)
      const size = current.state.offset
      if (options.size !== undefined && options.size !== size) {
        throw new RegistryError('SIZE_INVALID', { uuid, expected: options.size, received: size })
      }
      const computed = await this.digestOf(uuid, algorithm, current)
      if (computed !== digest) {
        throw new RegistryError('DIGEST_INVALID', { digest, computed, reason: 'the content does not match the digest' })
      }
      // Durable before it becomes visible under the digest (a body was synced as it was appended).
      if (options.body === undefined) {
        const writer = await this.driver.writer(this.dataPath(uuid), true)
        await writer.commit()
      }
      await this.driver.putContent(pathFor({ kind: 'uploadCompleting', name: this.name, uuid }), `${digest} ${size}`)
      if (!await this.blobs.isStored(digest)) {
        await this.blobs.publish(digest, this.dataPath(uuid))
      }
      await this.linked.link(digest)
      await this.remove(uuid)
      return { digest, size }
    })
  }

  /**
   * Finishes a completion that published the data and stopped (a crash, a failed call): links
   * the blob and removes the upload. A retry must name the same digest.
   */
  private async finishPublished (uuid: string, digest: string, published: BlobDescriptor): Promise<BlobDescriptor> {
    if (published.digest !== digest) {
      throw new RegistryError('DIGEST_INVALID', { digest, reason: 'the upload was completed with another digest' })
    }
    if (!await this.blobs.isStored(digest)) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', { uuid, reason: 'the published data is gone' })
    await this.linked.link(digest)
    await this.remove(uuid)
    return published
  }

  private async digestOf (uuid: string, algorithm: Algorithm, current: Current): Promise<string> {
    const hash = this.hashAt(uuid, current)
    if (hash !== undefined && hash.digester.algorithm === algorithm) return hash.digester.digest()
    const digester = new Digester(algorithm)
    for await (const chunk of await this.driver.reader(this.dataPath(uuid))) digester.update(chunk as Uint8Array)
    return digester.digest()
  }

  /** Cancels an upload and frees its storage; BLOB_UPLOAD_UNKNOWN when it does not exist. */
  async cancel (uuid: string): Promise<void> {
    await this.exclusive(uuid, async () => { await this.remove(uuid) })
  }

  private async remove (uuid: string): Promise<void> {
    this.sessions.forget(this.key(uuid))
    try {
      await this.driver.delete(pathFor({ kind: 'upload', name: this.name, uuid }))
    } catch (error) {
      if (!isPathNotFound(error)) throw error
    }
  }
}
