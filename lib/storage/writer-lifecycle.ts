/**
 * The lifecycle every `FileWriter` follows, written once: a driver's writer extends
 * `LifecycleWriter` and supplies only its I/O, the four `protected` hooks below; the public
 * methods decide what is allowed when.
 *
 *   open ── commit ──> committed            write, commit: reject once finished
 *     │        └─ (the commit failed) ──> failed    close: does nothing once finished
 *     ├─── close ──> closed                 cancel: rejects after commit or close, but
 *     └─── cancel ─> cancelled                      discards after a failed commit
 *
 * A hook runs at most once, and only from the state shown: `writeChunk` while open,
 * `commitFile` and `closeFile` from open, `discardFile` from open or failed (told which, since a
 * writer that failed to commit has already released what it held).
 *
 * Adopting it in a driver (the S3 writer, for one): extend `LifecycleWriter`, pass the driver's
 * name and the path to `super`, implement `size`; move the body of `write` after its state check
 * into `writeChunk`, that of `commit` into `commitFile` (throwing on failure: the state becomes
 * `failed`), that of `close` into `closeFile`, that of `cancel` into `discardFile(wasOpen)`; then
 * delete the writer's own `state` field and checks.
 */

import { StorageDriverError, type FileWriter } from './driver.js'

export type WriterState = 'open' | 'committed' | 'failed' | 'closed' | 'cancelled'

export abstract class LifecycleWriter implements FileWriter {
  private current: WriterState = 'open'

  constructor (protected readonly driverName: string, protected readonly path: string) {}

  abstract get size (): number

  /** Takes one chunk (the caller may reuse it once the promise resolves). */
  protected abstract writeChunk (chunk: Uint8Array): Promise<void>
  /** Makes everything written durable and visible and releases the writer's resources. */
  protected abstract commitFile (): Promise<void>
  /** Releases the writer's resources, keeping what was written for a later writer. */
  protected abstract closeFile (): Promise<void>
  /** Removes the file; `wasOpen` is false after a failed commit (resources already released). */
  protected abstract discardFile (wasOpen: boolean): Promise<void>

  get state (): WriterState {
    return this.current
  }

  write (chunk: Uint8Array): Promise<void> {
    if (this.current !== 'open') return Promise.reject(this.finished())
    return this.writeChunk(chunk)
  }

  async commit (): Promise<void> {
    if (this.current !== 'open') throw this.finished()
    this.current = 'committed'
    try {
      await this.commitFile()
    } catch (error) {
      this.current = 'failed'
      throw error
    }
  }

  async close (): Promise<void> {
    if (this.current !== 'open') return
    this.current = 'closed'
    await this.closeFile()
  }

  async cancel (): Promise<void> {
    if (this.current === 'cancelled') return
    const wasOpen = this.current === 'open'
    if (!wasOpen && this.current !== 'failed') throw this.finished()
    this.current = 'cancelled'
    await this.discardFile(wasOpen)
  }

  private finished (): StorageDriverError {
    return new StorageDriverError(this.driverName, this.path, `writer already ${this.current}`)
  }
}
