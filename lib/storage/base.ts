/**
 * The storage base layer: one wrapper every driver sits behind, itself a driver. It
 *
 * - validates every path once, before the driver sees it (InvalidPathError), so drivers trust
 *   their paths;
 * - normalises errors: whatever a driver throws that is not a StorageDriverError becomes one
 *   naming the driver, the action and the path, with the original as its `cause` (driver errors,
 *   PathNotFoundError among them, pass as they are);
 * - times each action per driver for observers (`observe`): the source of the metric
 *   `registry_storage_action_seconds{driver,action}`, as CNCF distribution names it.
 *
 * Without an observer it reads no clock: a call costs the path check and one promise more.
 * Wrapping twice is harmless (`wrapDriver` returns a wrapper as it is), and a driver that still
 * validates on its own (S3) only checks a path that is already known to be valid.
 */

import type { Readable } from 'node:stream'
import {
  InvalidPathError,
  StorageDriverError,
  isValidPath,
  type FileInfo,
  type FileWriter,
  type ReadOptions,
  type StorageDriver
} from './driver.js'

/** Actions as the metric labels them. */
export type StorageAction =
  | 'get_content'
  | 'put_content'
  | 'reader'
  | 'writer'
  | 'stat'
  | 'list'
  | 'move'
  | 'delete'
  | 'walk'
  | 'redirect_url'
  | 'remove_temporary_files'
  | 'writer_write'
  | 'writer_commit'
  | 'writer_close'
  | 'writer_cancel'

export interface StorageActionEvent {
  /** The driver's name (`inmemory`, `filesystem`, `s3`, or a host's own). */
  driver: string
  action: StorageAction
  /** Wall time of the action, from the call to its promise settling (a walk: to its end). */
  seconds: number
  /** Set when the action failed, normalised. */
  error?: StorageDriverError
}

export type StorageActionListener = (event: StorageActionEvent) => void

function secondsSince (started: number): number {
  return (performance.now() - started) / 1000
}

export class StorageBase implements StorageDriver {
  readonly name: string
  /** Replaced, never changed in place: an action notifies the listeners it started with. */
  private listeners: readonly StorageActionListener[] = []

  constructor (readonly driver: StorageDriver) {
    this.name = driver.name
  }

  get minChunkSize (): number | undefined {
    return this.driver.minChunkSize
  }

  /** Calls `listener` after every action, failed ones included; returns what removes it. */
  observe (listener: StorageActionListener): () => void {
    this.listeners = [...this.listeners, listener]
    return () => {
      this.listeners = this.listeners.filter((kept) => kept !== listener)
    }
  }

  getContent (path: string): Promise<Buffer> {
    return this.run('get_content', path, () => this.driver.getContent(path))
  }

  putContent (path: string, content: Uint8Array | string): Promise<void> {
    return this.run('put_content', path, () => this.driver.putContent(path, content))
  }

  reader (path: string, options?: ReadOptions): Promise<Readable> {
    return this.run('reader', path, () => this.driver.reader(path, options))
  }

  async writer (path: string, append: boolean): Promise<FileWriter> {
    return new BaseWriter(this, path, await this.run('writer', path, () => this.driver.writer(path, append)))
  }

  stat (path: string): Promise<FileInfo> {
    return this.run('stat', path, () => this.driver.stat(path))
  }

  list (path: string): Promise<string[]> {
    return this.run('list', path, () => this.driver.list(path))
  }

  move (sourcePath: string, destPath: string): Promise<void> {
    if (!isValidPath(destPath)) return this.refuse('move', destPath)
    return this.run('move', sourcePath, () => this.driver.move(sourcePath, destPath))
  }

  delete (path: string): Promise<void> {
    return this.run('delete', path, () => this.driver.delete(path))
  }

  async * walk (path: string): AsyncGenerator<FileInfo> {
    if (!isValidPath(path)) await this.refuse('walk', path)
    const listeners = this.listeners
    const started = listeners.length === 0 ? 0 : performance.now()
    let failure: StorageDriverError | undefined
    try {
      yield * this.driver.walk(path)
    } catch (error) {
      failure = this.normalise(error, 'walk', path)
      throw failure
    } finally {
      // Also when the caller stops early: the walk took this long.
      if (listeners.length > 0) this.notify(listeners, 'walk', started, failure)
    }
  }

  redirectURL (path: string): Promise<string | undefined> {
    return this.run('redirect_url', path, async () => await this.driver.redirectURL?.(path))
  }

  removeTemporaryFiles (path: string, olderThan: Date): Promise<number> {
    return this.run('remove_temporary_files', path, async () => await this.driver.removeTemporaryFiles?.(path, olderThan) ?? 0)
  }

  async close (): Promise<void> {
    await this.driver.close?.()
  }

  /** Runs one action of the driver on a valid path. */
  private run<T> (action: StorageAction, path: string, operation: () => Promise<T>): Promise<T> {
    if (!isValidPath(path)) return this.refuse(action, path)
    return this.perform(action, path, operation)
  }

  /**
   * Runs one action on a path already checked, normalising its error and timing it when
   * observed. For this module's writer only.
   */
  perform<T> (action: StorageAction, path: string, operation: () => Promise<T>): Promise<T> {
    const listeners = this.listeners
    if (listeners.length === 0) {
      let pending: Promise<T>
      try {
        pending = operation()
      } catch (error) {
        return Promise.reject(this.normalise(error, action, path))
      }
      return pending.then(undefined, (error: unknown) => { throw this.normalise(error, action, path) })
    }
    return this.timed(listeners, action, path, operation)
  }

  private async timed<T> (listeners: readonly StorageActionListener[], action: StorageAction, path: string, operation: () => Promise<T>): Promise<T> {
    const started = performance.now()
    try {
      const result = await operation()
      this.notify(listeners, action, started)
      return result
    } catch (error) {
      const failure = this.normalise(error, action, path)
      this.notify(listeners, action, started, failure)
      throw failure
    }
  }

  private refuse (action: StorageAction, path: string): Promise<never> {
    const error = new InvalidPathError(this.name, path)
    const listeners = this.listeners
    if (listeners.length > 0) this.notify(listeners, action, performance.now(), error)
    return Promise.reject(error)
  }

  private normalise (error: unknown, action: StorageAction, path: string): StorageDriverError {
    if (error instanceof StorageDriverError) return error
    return new StorageDriverError(this.name, path, `${action} failed`, { cause: error })
  }

  private notify (listeners: readonly StorageActionListener[], action: StorageAction, started: number, error?: StorageDriverError): void {
    const event: StorageActionEvent = { driver: this.name, action, seconds: secondsSince(started) }
    if (error !== undefined) event.error = error
    for (const listener of listeners) {
      try {
        listener(event)
      } catch {
        // An observer's fault (a metrics bug) must not fail the storage action it watched.
      }
    }
  }
}

/** A driver's writer behind the base layer: its actions normalised and timed like the driver's. */
class BaseWriter implements FileWriter {
  constructor (
    private readonly base: StorageBase,
    private readonly path: string,
    private readonly writer: FileWriter
  ) {}

  get size (): number {
    return this.writer.size
  }

  write (chunk: Uint8Array): Promise<void> {
    return this.base.perform('writer_write', this.path, () => this.writer.write(chunk))
  }

  commit (): Promise<void> {
    return this.base.perform('writer_commit', this.path, () => this.writer.commit())
  }

  close (): Promise<void> {
    return this.base.perform('writer_close', this.path, () => this.writer.close())
  }

  cancel (): Promise<void> {
    return this.base.perform('writer_cancel', this.path, () => this.writer.cancel())
  }
}

/** The driver behind the base layer; a driver already behind it is returned as it is. */
export function wrapDriver (driver: StorageDriver): StorageBase {
  return driver instanceof StorageBase ? driver : new StorageBase(driver)
}

/**
 * Subscribes to the timed actions of a driver behind the base layer (the registry's driver
 * always is: `app.ociRegistry.driver`); returns what unsubscribes.
 */
export function observeStorage (driver: StorageDriver, listener: StorageActionListener): () => void {
  if (!(driver instanceof StorageBase)) throw new TypeError(`storage driver ${driver.name} is not behind the storage base layer`)
  return driver.observe(listener)
}
