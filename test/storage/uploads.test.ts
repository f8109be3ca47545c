import { createHash } from 'node:crypto'
import t from 'tap'
import { InMemoryDriver } from '../../lib/storage/drivers/inmemory.js'
import type { ReadOptions, StorageDriver } from '../../lib/storage/driver.js'
import { RegistryService } from '../../lib/storage/registry.js'
import { pathFor } from '../../lib/storage/paths.js'

/** A driver that counts the reads of upload data, to see whether completing re-reads it. */
function counting (driver: StorageDriver): { driver: StorageDriver, uploadReads: () => number } {
  let reads = 0
  const wrapped = Object.create(driver) as StorageDriver
  wrapped.reader = async (path: string, options?: ReadOptions) => {
    if (path.includes('/_uploads/')) reads++
    return await driver.reader(path, options)
  }
  return { driver: wrapped, uploadReads: () => reads }
}

function sha256 (content: Buffer): string {
  return `sha256:${createHash('sha256').update(content).digest('hex')}`
}

t.test('an upload started by another process is hashed as its body streams in, not re-read', async (t) => {
  const shared = new InMemoryDriver()
  // Two registries on one storage, each with its own in-process hash states: two workers.
  const first = new RegistryService(shared)
  const second = counting(shared)
  const other = new RegistryService(second.driver)
  const content = Buffer.from('bytes pushed to the other worker')
  const state = await first.repository('app').uploads.start()
  const blob = await other.repository('app').uploads.complete(state.uuid, sha256(content), { body: [content] })
  t.same(blob, { digest: sha256(content), size: content.length })
  t.equal(second.uploadReads(), 0, 'completed from the hash taken while streaming')
  t.ok((await other.blobs.getContent(blob.digest)).equals(content))
})

t.test('chunks split between processes are still verified, by reading the data once', async (t) => {
  const shared = new InMemoryDriver()
  const first = new RegistryService(shared)
  const second = counting(shared)
  const other = new RegistryService(second.driver)
  const parts = [Buffer.from('first part, here; '), Buffer.from('second part, there')]
  const whole = Buffer.concat(parts)
  const state = await first.repository('app').uploads.start()
  await first.repository('app').uploads.append(state.uuid, [parts[0] as Buffer])
  const wrong = other.repository('app').uploads.complete(state.uuid, sha256(Buffer.from('other')), { body: [parts[1] as Buffer] })
  await t.rejects(wrong, { code: 'DIGEST_INVALID' }, 'a wrong digest is refused')
  t.equal(second.uploadReads(), 1, 'the data was read back once to hash it')
  const blob = await other.repository('app').uploads.complete(state.uuid, sha256(whole))
  t.same(blob, { digest: sha256(whole), size: whole.length })
  t.ok((await other.blobs.getContent(blob.digest)).equals(whole))

  const sha512 = await first.repository('app').uploads.start('sha512')
  const content = Buffer.from('sha512 content')
  const digest = `sha512:${createHash('sha512').update(content).digest('hex')}`
  const done = await other.repository('app').uploads.complete(sha512.uuid, digest, { body: [content] })
  t.equal(done.digest, digest, 'an upload started with another algorithm is verified by reading it back')
})

t.test('the hash state is trusted only for the data this process wrote, not for as many other bytes', async (t) => {
  const shared = new InMemoryDriver()
  const counted = counting(shared)
  const uploads = new RegistryService(counted.driver).repository('app').uploads
  const state = await uploads.start()
  const mine = Buffer.from('written by this process')
  await uploads.append(state.uuid, [mine])
  // Another process replaces the data with other bytes of the same length (a client racing
  // itself over two replicas): the size alone would not tell.
  const theirs = Buffer.from('written by another one!')
  t.equal(theirs.length, mine.length)
  await shared.putContent(pathFor({ kind: 'uploadData', name: 'app', uuid: state.uuid }), theirs)
  await t.rejects(uploads.complete(state.uuid, sha256(mine)), { code: 'DIGEST_INVALID' }, 'the digest of what this process wrote no longer matches')
  t.equal(counted.uploadReads(), 1, 'the data was read back, not taken from the stale hash')
  const blob = await uploads.complete(state.uuid, sha256(theirs))
  t.same(blob, { digest: sha256(theirs), size: theirs.length })
})
