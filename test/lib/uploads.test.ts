import t from 'tap'
import type { Readable } from 'node:stream'
import { InMemoryDriver } from '../../lib/storage/drivers/inmemory.js'
import { RegistryService } from '../../lib/storage/registry.js'
import { digestOf } from '../../lib/digest.js'
import type { ReadOptions } from '../../lib/storage/driver.js'

/** An in-memory driver that counts the streams opened on upload data. */
class CountingDriver extends InMemoryDriver {
  uploadReads = 0

  override async reader (path: string, options?: ReadOptions): Promise<Readable> {
    if (path.includes('/_uploads/')) this.uploadReads++
    return await super.reader(path, options)
  }
}

const chunks = [Buffer.from('hashed '), Buffer.from('once, '), Buffer.from('as it streams')]
const digest = digestOf(Buffer.concat(chunks))

t.test('finishing an upload does not read its data back when this process hashed it', async (t) => {
  const driver = new CountingDriver()
  const uploads = new RegistryService(driver).repository('hash/once').uploads
  const upload = await uploads.start()
  for (const chunk of chunks) await uploads.append(upload.uuid, [chunk])
  await uploads.complete(upload.uuid, digest)
  t.equal(driver.uploadReads, 0, 'no re-read')
})

t.test('another process (a fresh registry on the same storage) finishes with one re-read', async (t) => {
  const driver = new CountingDriver()
  const first = new RegistryService(driver).repository('hash/elsewhere').uploads
  const upload = await first.start()
  await first.append(upload.uuid, [chunks[0] as Buffer])
  const second = new RegistryService(driver).repository('hash/elsewhere').uploads
  await second.append(upload.uuid, chunks.slice(1))
  await first.complete(upload.uuid, digest)
  t.equal(driver.uploadReads, 1, 'one re-read, since the last chunk went through the other process')
})

t.test('a process that receives the first bytes hashes them, even if another answered the POST', async (t) => {
  const driver = new CountingDriver()
  const upload = await new RegistryService(driver).repository('hash/first').uploads.start()
  const worker = new RegistryService(driver).repository('hash/first').uploads
  await worker.append(upload.uuid, chunks)
  await worker.complete(upload.uuid, digest)
  t.equal(driver.uploadReads, 0)
})

t.test('a wrong digest keeps the upload and its hash state; the right one then succeeds', async (t) => {
  const driver = new CountingDriver()
  const uploads = new RegistryService(driver).repository('hash/retry').uploads
  const upload = await uploads.start()
  await uploads.append(upload.uuid, chunks)
  await t.rejects(uploads.complete(upload.uuid, digestOf('wrong')), { code: 'DIGEST_INVALID' })
  t.equal((await uploads.state(upload.uuid)).offset, Buffer.concat(chunks).length)
  t.same(await uploads.complete(upload.uuid, digest), { digest, size: Buffer.concat(chunks).length })
  t.equal(driver.uploadReads, 0)
})
