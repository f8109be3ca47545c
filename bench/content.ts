/**
 * Blob content for the benchmark: random-looking, incompressible, distinct per seed, and cheap to
 * produce at any offset without holding the blob in memory. A blob is a run of 1 MiB blocks; a
 * block is 16 bytes naming (seed, block index) followed by one of 64 random blocks of a pool.
 */

import { createHash, randomFillSync } from 'node:crypto'

const MiB = 1024 * 1024
const BLOCK = MiB
const HEADER = 16
const POOL_BLOCKS = 64

let pool: Buffer | undefined

function poolBytes (): Buffer {
  if (pool === undefined) pool = randomFillSync(Buffer.allocUnsafe(POOL_BLOCKS * BLOCK))
  return pool
}

export class BlobContent {
  constructor (readonly seed: number, readonly size: number) {}

  private header (index: number): Buffer {
    const header = Buffer.allocUnsafe(HEADER)
    header.writeBigUInt64BE(BigInt(this.seed), 0)
    header.writeBigUInt64BE(BigInt(index), 8)
    return header
  }

  private body (index: number): Buffer {
    const k = (index * 31 + this.seed) % POOL_BLOCKS
    return poolBytes().subarray(k * BLOCK + HEADER, (k + 1) * BLOCK)
  }

  /** The bytes of `[start, end)` as a sequence of buffers (views of the pool, no copies). */
  * slices (start = 0, end = this.size): Generator<Buffer> {
    let offset = start
    while (offset < end) {
      const index = Math.floor(offset / BLOCK)
      const blockStart = index * BLOCK
      const parts = [this.header(index), this.body(index)]
      let partStart = blockStart
      for (const part of parts) {
        const partEnd = partStart + part.length
        if (offset < partEnd && offset < end) {
          yield part.subarray(offset - partStart, Math.min(partEnd, end) - partStart)
          offset = Math.min(partEnd, end)
        }
        partStart = partEnd
      }
    }
  }

  /** `[start, end)` in one buffer (for comparing a range read). */
  bytes (start: number, end: number): Buffer {
    return Buffer.concat([...this.slices(start, end)], end - start)
  }

  private cachedDigest: string | undefined

  get digest (): string {
    if (this.cachedDigest === undefined) {
      const hash = createHash('sha256')
      for (const slice of this.slices()) hash.update(slice)
      this.cachedDigest = `sha256:${hash.digest('hex')}`
    }
    return this.cachedDigest
  }
}

/** Seeds unique within a run and, with high probability, across runs on the same storage. */
let nextSeed = Math.floor(Math.random() * 2 ** 40)
export function freshSeed (): number {
  return nextSeed++
}

/** Small content with a known digest (configs, layers, manifests). */
export function digestOf (content: Uint8Array): string {
  return `sha256:${createHash('sha256').update(content).digest('hex')}`
}
