/**
 * A storage driver holding everything in process memory: for tests and throwaway registries.
 * Files are trees of nodes; a file's bytes are a list of chunks, so that a file larger than the
 * biggest Buffer works and appending never copies what is already stored. Paths are trusted:
 * the storage base layer validates them.
 */

import { Readable } from 'node:stream'
import {
  InvalidPathError,
  PathNotFoundError,
  StorageDriverError,
  readRange,
  type FileInfo,
  type FileWriter,
  type ReadOptions,
  type StorageDriver
} from '../driver.js'
import { LifecycleWriter } from '../writer-lifecycle.js'

interface FileNode {
  kind: 'file'
  /**
   * Writers append to the list or replace its last element, never change a stored buffer;
   * readers copy the list when they open, so they keep what the file held then.
   */
  chunks: Buffer[]
  size: number
  modTime: Date
  /** Changes with every write (the file's etag): a Date has only milliseconds. */
  version: number
}

interface DirNode {
  kind: 'dir'
  children: Map<string, Node>
  /** Children names in order, computed on demand and dropped on change. */
  sorted: string[] | undefined
  modTime: Date
}

type Node = FileNode | DirNode

/** Chunks smaller than this are merged on append, so that tiny writes do not pile up nodes. */
const SMALL_CHUNK = 64 * 1024
/** Largest piece a reader pushes at once, and its buffer size. */
const READ_PIECE = 1024 * 1024

let lastVersion = 0

function nextVersion (): number {
  return ++lastVersion
}

function newDir (): DirNode {
  return { kind: 'dir', children: new Map(), sorted: undefined, modTime: new Date() }
}

function segmentsOf (path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/')
}

function childPath (parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`
}

function sortedNames (dir: DirNode): string[] {
  dir.sorted ??= [...dir.children.keys()].sort()
  return dir.sorted
}

function infoOf (path: string, node: Node): FileInfo {
  if (node.kind === 'dir') return { path, size: 0, modTime: node.modTime, isDir: true }
  return { path, size: node.size, modTime: node.modTime, isDir: false, etag: String(node.version) }
}

const NAME = 'inmemory'

export class InMemoryDriver implements StorageDriver {
  readonly name = NAME
  private readonly root: DirNode = newDir()

  async getContent (path: string): Promise<Buffer> {
    const file = this.file(path)
    return Buffer.concat(file.chunks, file.size)
  }

  async putContent (path: string, content: Uint8Array | string): Promise<void> {
    // A fresh node: readers of the old one keep reading the old content whole.
    const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content)
    this.place(path, { kind: 'file', chunks: bytes.length > 0 ? [bytes] : [], size: bytes.length, modTime: new Date(), version: nextVersion() })
  }

  async reader (path: string, options?: ReadOptions): Promise<Readable> {
    const file = this.file(path)
    const { start, end } = readRange(this.name, path, file.size, options)
    const chunks = file.chunks.slice()
    let index = 0
    let skip = start
    while (index < chunks.length && skip >= chunks[index].length) {
      skip -= chunks[index].length
      index++
    }
    let remaining = end - start
    return new Readable({
      highWaterMark: READ_PIECE,
      read () {
        while (remaining > 0) {
          const chunk = chunks[index]
          const take = Math.min(chunk.length - skip, remaining, READ_PIECE)
          // A copy: the consumer may do as it likes with what it gets.
          const piece = Buffer.from(chunk.subarray(skip, skip + take))
          skip += take
          remaining -= take
          if (skip === chunk.length) {
            index++
            skip = 0
          }
          if (!this.push(piece)) return
        }
        this.push(null)
      }
    })
  }

  async writer (path: string, append: boolean): Promise<FileWriter> {
    const file: FileNode = append ? this.file(path) : { kind: 'file', chunks: [], size: 0, modTime: new Date(), version: nextVersion() }
    if (!append) this.place(path, file)
    return new InMemoryWriter(path, file, () => this.discard(path, file))
  }

  async stat (path: string): Promise<FileInfo> {
    const node = this.lookup(path)
    if (node === undefined) throw new PathNotFoundError(this.name, path)
    return infoOf(path, node)
  }

  async list (path: string): Promise<string[]> {
    const dir = this.dir(path)
    return sortedNames(dir).map((name) => childPath(path, name))
  }

  async move (sourcePath: string, destPath: string): Promise<void> {
    if (sourcePath === '/') throw new InvalidPathError(this.name, sourcePath)
    if (destPath === '/') throw new InvalidPathError(this.name, destPath)
    const source = this.file(sourcePath)
    if (sourcePath === destPath) return
    // Place first, then detach and prune: pruning before placing could drop the destination's
    // parent when it is also the source's and becomes empty for a moment.
    this.place(destPath, source)
    const parent = this.lookup(parentOf(sourcePath)) as DirNode
    removeChild(parent, lastSegment(sourcePath))
    this.prune(parentOf(sourcePath))
  }

  async delete (path: string): Promise<void> {
    if (path === '/') throw new InvalidPathError(this.name, path)
    const node = this.lookup(path)
    if (node === undefined) throw new PathNotFoundError(this.name, path)
    removeChild(this.lookup(parentOf(path)) as DirNode, lastSegment(path))
    this.prune(parentOf(path))
  }

  async * walk (path: string): AsyncGenerator<FileInfo> {
    yield * walkDir(path, this.dir(path))
  }

  /** Drops a file written by a cancelled writer, unless it was replaced or moved since. */
  private discard (path: string, file: FileNode): void {
    if (this.lookup(path) !== file) return
    removeChild(this.lookup(parentOf(path)) as DirNode, lastSegment(path))
    this.prune(parentOf(path))
  }

  private lookup (path: string): Node | undefined {
    let node: Node = this.root
    for (const segment of segmentsOf(path)) {
      if (node.kind !== 'dir') return undefined
      const child: Node | undefined = node.children.get(segment)
      if (child === undefined) return undefined
      node = child
    }
    return node
  }

  private file (path: string): FileNode {
    const node = this.lookup(path)
    if (node === undefined || node.kind !== 'file') throw new PathNotFoundError(this.name, path)
    return node
  }

  private dir (path: string): DirNode {
    const node = this.lookup(path)
    if (node === undefined || node.kind !== 'dir') throw new PathNotFoundError(this.name, path)
    return node
  }

  /** Puts a file node at a path, creating parent directories and replacing a file already there. */
  private place (path: string, file: FileNode): void {
    if (path === '/') throw new StorageDriverError(this.name, path, 'is a directory')
    const segments = segmentsOf(path)
    const name = segments.pop() as string
    // Check the whole way before changing anything, so a failure leaves the tree as it was.
    let node: Node | undefined = this.root
    for (const segment of segments) {
      if (node === undefined) break
      if (node.kind !== 'dir') throw new StorageDriverError(this.name, path, 'a parent is a file')
      node = node.children.get(segment)
    }
    if (node !== undefined && node.kind !== 'dir') throw new StorageDriverError(this.name, path, 'a parent is a file')
    if (node !== undefined && node.children.get(name)?.kind === 'dir') {
      throw new StorageDriverError(this.name, path, 'is a directory')
    }
    let dir = this.root
    for (const segment of segments) {
      let next = dir.children.get(segment) as DirNode | undefined
      if (next === undefined) {
        next = newDir()
        setChild(dir, segment, next)
      }
      dir = next
    }
    setChild(dir, name, file)
    this.touch(parentOf(path))
  }

  /** Marks a directory and its ancestors as changed now. */
  private touch (path: string): void {
    const now = new Date()
    let node: Node | undefined = this.root
    node.modTime = now
    for (const segment of segmentsOf(path)) {
      node = node.children.get(segment)
      if (node === undefined || node.kind !== 'dir') return
      node.modTime = now
    }
  }

  /** Removes directories left empty, from a path up to (not including) the root. */
  private prune (path: string): void {
    let current = path
    while (current !== '/') {
      const node = this.lookup(current)
      if (node === undefined || node.kind !== 'dir' || node.children.size > 0) break
      const parent = parentOf(current)
      removeChild(this.lookup(parent) as DirNode, lastSegment(current))
      current = parent
    }
    this.touch(current)
  }
}

function parentOf (path: string): string {
  const slash = path.lastIndexOf('/')
  return slash === 0 ? '/' : path.slice(0, slash)
}

function lastSegment (path: string): string {
  return path.slice(path.lastIndexOf('/') + 1)
}

function setChild (dir: DirNode, name: string, node: Node): void {
  if (!dir.children.has(name)) dir.sorted = undefined
  dir.children.set(name, node)
}

function removeChild (dir: DirNode, name: string): void {
  if (dir.children.delete(name)) dir.sorted = undefined
}

function * walkDir (path: string, dir: DirNode): Generator<FileInfo> {
  // The names are a snapshot: children added meanwhile are not visited, removed ones are skipped.
  for (const name of sortedNames(dir)) {
    const child = dir.children.get(name)
    if (child === undefined) continue
    const p = childPath(path, name)
    yield infoOf(p, child)
    if (child.kind === 'dir') yield * walkDir(p, child)
  }
}

class InMemoryWriter extends LifecycleWriter {
  constructor (
    path: string,
    private readonly file: FileNode,
    private readonly discard: () => void
  ) {
    super(NAME, path)
  }

  get size (): number {
    return this.file.size
  }

  protected async writeChunk (chunk: Uint8Array): Promise<void> {
    if (chunk.byteLength === 0) return
    const chunks = this.file.chunks
    const last = chunks.at(-1)
    // Copies, never in-place changes: open readers may hold the stored buffers.
    if (last !== undefined && last.length < SMALL_CHUNK && chunk.byteLength < SMALL_CHUNK) {
      chunks[chunks.length - 1] = Buffer.concat([last, chunk])
    } else {
      chunks.push(Buffer.from(chunk))
    }
    this.file.size += chunk.byteLength
    this.file.modTime = new Date()
    this.file.version = nextVersion()
  }

  // Every write is visible at once: committing or closing has nothing left to do.
  protected async commitFile (): Promise<void> {}

  protected async closeFile (): Promise<void> {}

  protected async discardFile (): Promise<void> {
    this.discard()
  }
}
