/**
 * Crashes inside multi-step writes. A driver that "dies" at its k-th change (that call and every
 * later one fail, as in a killed process) stops an upload completion, a manifest PUT with tags and
 * a manifest delete at every step in turn; a new registry over the same tree (a restart) then
 * finds no torn state: the upload's status answers, every link resolves, the acknowledged write
 * reads back, and the client's retry completes.
 */

import t, { type Test } from 'tap'
import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'
import { RegistryService } from '../../lib/storage/registry.js'
import { FilesystemDriver } from '../../lib/storage/drivers/filesystem.js'
import type { FileInfo, FileWriter, ReadOptions, StorageDriver } from '../../lib/storage/driver.js'
import { pathFor } from '../../lib/storage/paths.js'
import { digestOf } from '../../lib/digest.js'
import { parseReference } from '../../lib/reference.js'
import { isRegistryError } from '../../lib/errors.js'
import { tempDir } from '../helpers.js'

class Crash extends Error {}

/** A driver that fails every change from its `crashAt`-th on (reads too, once dead). */
class DyingDriver implements StorageDriver {
  readonly name: string
  dead = false
  private changes = 0
  private crashAt = Infinity

  /** `step`: the change, counted from `arm()`, that kills it. */
  constructor (private readonly inner: StorageDriver, private readonly step: number) {
    this.name = inner.name
  }

  /** From now on, the `step`-th change kills the driver. */
  arm (): void {
    this.crashAt = this.changes + this.step
  }

  private change (): void {
    if (this.dead || ++this.changes >= this.crashAt) {
      this.dead = true
      throw new Crash('killed')
    }
  }

  private alive (): void {
    if (this.dead) throw new Crash('killed')
  }

  private readonly inFlight = new Set<Promise<unknown>>()

  /** Runs a call of the inner driver, tracked so that the "restart" sees it finished. */
  private async track<T> (call: Promise<T>): Promise<T> {
    this.inFlight.add(call)
    try {
      return await call
    } finally {
      this.inFlight.delete(call)
    }
  }

  /**
   * Waits for calls that were under way when the driver died: their files are whole (each
   * driver call is atomic), as if the process had died just after them.
   */
  async settled (): Promise<void> {
    await Promise.allSettled([...this.inFlight])
  }

  async getContent (path: string): Promise<Buffer> { this.alive(); return await this.track(this.inner.getContent(path)) }
  async putContent (path: string, content: Uint8Array | string): Promise<void> { this.change(); await this.track(this.inner.putContent(path, content)) }
  async reader (path: string, options?: ReadOptions): Promise<Readable> { this.alive(); return await this.track(this.inner.reader(path, options)) }
  async stat (path: string): Promise<FileInfo> { this.alive(); return await this.track(this.inner.stat(path)) }
  async list (path: string): Promise<string[]> { this.alive(); return await this.track(this.inner.list(path)) }
  async move (source: string, dest: string): Promise<void> { this.change(); await this.track(this.inner.move(source, dest)) }
  async delete (path: string): Promise<void> { this.change(); await this.track(this.inner.delete(path)) }
  walk (path: string): AsyncIterable<FileInfo> { this.alive(); return this.inner.walk(path) }
  async writer (path: string, append: boolean): Promise<FileWriter> {
    this.change()
    const writer = await this.track(this.inner.writer(path, append))
    // Every step of a writer is a change: a crash can land between two chunks or before a commit.
    return {
      get size () { return writer.size },
      write: async (chunk) => { this.change(); await this.track(writer.write(chunk)) },
      commit: async () => { this.change(); await this.track(writer.commit()) },
      close: async () => { if (this.dead) return; await writer.close() },
      cancel: async () => { this.alive(); await writer.cancel() }
    }
  }
}

const origin = {}
const name = 'crash/app'

/** Runs `scenario` with a crash at each change in turn, until one run finishes without crashing. */
async function atEveryStep (t: Test, scenario: (t: Test, driver: DyingDriver, root: string) => Promise<void>): Promise<void> {
  for (let step = 1; step < 100; step++) {
    const root = await tempDir(t)
    const driver = new DyingDriver(new FilesystemDriver({ root }), step)
    await t.test(`crash at change ${step}`, async (t) => { await scenario(t, driver, root) })
    if (!driver.dead) return
  }
  t.fail('the write never finished')
}

/** A registry over the tree as a restarted process finds it. */
function restarted (root: string): RegistryService {
  return new RegistryService(new FilesystemDriver({ root }), { deleteEnabled: true })
}

/** Every link in the repository names content that is stored. */
async function linksResolve (t: Test, registry: RegistryService): Promise<void> {
  const repository = registry.repository(name)
  for (const tag of await repository.manifests.tags.list()) {
    const digest = await repository.manifests.tags.get(tag)
    t.ok(digest !== undefined && await repository.manifests.exists(digest), `tag ${tag} names a stored manifest`)
  }
  const layers = pathFor({ kind: 'layersRoot', name })
  for await (const entry of (await registry.driver.stat(layers).then(() => true, () => false)) ? registry.driver.walk(layers) : []) {
    if (entry.isDir || !entry.path.endsWith('/link')) continue
    const digest = (await registry.driver.getContent(entry.path)).toString('utf8')
    t.ok(await registry.blobs.isStored(digest), `the link to ${digest.slice(0, 15)} resolves`)
  }
}

async function attempt<T> (work: () => Promise<T>): Promise<T | Crash> {
  try {
    return await work()
  } catch (error) {
    // The base layer wraps what a driver throws; the crash is its cause.
    const crash = error instanceof Crash ? error : (error as { cause?: unknown }).cause
    if (crash instanceof Crash) return crash
    throw error
  }
}

function sha256 (bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex')
}

t.test('an upload completion, stopped at every step', async (t) => {
  const first = Buffer.from('first chunk of the layer, ')
  const last = Buffer.from('and the last one')
  const content = Buffer.concat([first, last])
  const digest = digestOf(content)
  await atEveryStep(t, async (t, driver, root) => {
    const before = new RegistryService(driver).repository(name)
    const upload = await before.startUpload('sha256', origin)
    await before.appendUpload(upload.uuid, [first], undefined, origin)
    driver.arm()
    const result = await attempt(async () => await before.completeUpload(upload.uuid, digest, { body: [last] }, origin))

    await driver.settled()
    const after = restarted(root)
    const repository = after.repository(name)
    await linksResolve(t, after)
    if (!(result instanceof Crash)) {
      t.same(result, { digest, size: content.length }, 'acknowledged')
    } else {
      // The client asks where the upload stands and finishes it.
      let status
      try {
        status = await repository.uploadStatus(upload.uuid)
      } catch (error) {
        t.ok(isRegistryError(error) && error.code === 'BLOB_UPLOAD_UNKNOWN', 'only a finished upload is unknown')
      }
      if (status !== undefined) {
        const rest = content.subarray(status.offset)
        const retried = await repository.completeUpload(upload.uuid, digest, rest.length > 0 ? { body: [rest] } : {}, origin)
        t.same(retried, { digest, size: content.length }, `the retry from offset ${status.offset} completes`)
      }
    }
    const blob = await repository.statBlob(digest)
    t.equal(blob.size, content.length)
    const chunks: Buffer[] = []
    const served = await repository.pullBlob(blob, undefined, origin)
    if ('stream' in served) for await (const chunk of served.stream) chunks.push(chunk as Buffer)
    t.equal(sha256(Buffer.concat(chunks)), digest.slice(7), 'the blob reads back whole')
    await linksResolve(t, after)
  })
})

/** Pushes a config and a layer, and the manifest of them. */
async function imageOf (registry: RegistryService): Promise<Buffer> {
  const repository = registry.repository(name)
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}')
  const layer = Buffer.from('layer bytes')
  await repository.pushBlob(digestOf(config), [config], origin)
  await repository.pushBlob(digestOf(layer), [layer], origin)
  return Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf(layer), size: layer.length }]
  }))
}

t.test('a manifest PUT with tags, stopped at every step', async (t) => {
  await atEveryStep(t, async (t, driver, root) => {
    const registry = new RegistryService(driver)
    const manifest = await imageOf(registry)
    driver.arm()
    const put = async (repository: ReturnType<RegistryService['repository']>): Promise<unknown> =>
      await repository.putManifest(manifest, 'application/vnd.oci.image.manifest.v1+json', parseReference('v1'), ['v2', 'v3'], origin)
    const result = await attempt(async () => await put(registry.repository(name)))
    await driver.settled()
    const after = restarted(root)
    await linksResolve(t, after)
    const repository = after.repository(name)
    if (result instanceof Crash) await put(repository)
    for (const tag of ['v1', 'v2', 'v3']) {
      t.equal((await repository.getManifest(parseReference(tag))).digest, digestOf(manifest), `${tag} reads back`)
    }
    await linksResolve(t, after)
  })
})

t.test('a manifest delete, stopped at every step', async (t) => {
  await atEveryStep(t, async (t, driver, root) => {
    const registry = new RegistryService(driver, { deleteEnabled: true })
    const manifest = await imageOf(registry)
    const digest = digestOf(manifest)
    await registry.repository(name).putManifest(manifest, 'application/vnd.oci.image.manifest.v1+json', parseReference('v1'), ['v2'], origin)
    driver.arm()
    const result = await attempt(async () => { await registry.repository(name).deleteManifest(parseReference(digest), origin) })
    await driver.settled()
    const after = restarted(root)
    await linksResolve(t, after)
    const repository = after.repository(name)
    if (result instanceof Crash && await repository.manifests.exists(digest)) {
      await repository.deleteManifest(parseReference(digest), origin)
    }
    t.notOk(await repository.manifests.exists(digest), 'the manifest is gone')
    t.same(await repository.listTags(), [], 'and no tag is left on nothing')
    await linksResolve(t, after)
  })
})
