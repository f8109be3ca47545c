/**
 * The S3 driver on OpenStack Swift's S3 API (stock Swift 2.30 with s3api, started by
 * test/swift.ts): the driver suite every driver runs, then the S3 semantics the driver relies on,
 * at scale: listings with a delimiter at several depths over more than 1,000 keys and 1,000
 * common prefixes, multipart uploads and server-side part copies, ranged reads, multi-object
 * deletes (with Content-MD5) past one batch, presigned URLs, and a region of the service's own.
 */

import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import type { Readable } from 'node:stream'
import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import { StorageDriverError } from '../../lib/storage/driver.js'
import { S3Driver, type S3DriverOptions } from '../../lib/storage/drivers/s3.js'
import { RegistryService } from '../../lib/storage/registry.js'
import { driverSuite, largeFileCase, type DriverUnderTest } from '../storage/driver-suite.js'
import { sharedSwift, startSwift } from '../swift.js'

const MiB = 1024 * 1024

// Swift's Python servers are slower than s3rver: the whole file may take longer than tap's default.
t.setTimeout(1_800_000)

const swift = await sharedSwift()
t.teardown(async () => { await swift.stop() })
t.comment(`Swift s3api at ${swift.endpoint}, processes ${swift.pids.join(' ')}`)

const onSwift = async (): Promise<DriverUnderTest> => ({ driver: new S3Driver(swift.driverOptions(await swift.createBucket())) })
driverSuite(t, 's3 on Swift', onSwift)
// 300 MiB through Swift's proxy (1,100 on s3rver): enough for many parts and growing part sizes,
// at a time a loaded CI machine can afford.
largeFileCase(t, 's3 on Swift', onSwift, { sizeMiB: 300 })

async function driverOn (extra: Partial<S3DriverOptions> = {}): Promise<S3Driver> {
  const driver = new S3Driver(swift.driverOptions(await swift.createBucket(), { partSize: 5 * MiB, ...extra }))
  t.teardown(() => driver.close())
  return driver
}

async function readAll (stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** Every key in the driver's bucket, page by page as S3 gives them. */
async function rawKeys (driver: S3Driver): Promise<string[]> {
  const keys: string[] = []
  let token: string | undefined
  do {
    const page = await driver.client.send(new ListObjectsV2Command({ Bucket: driver.bucket, ...(token === undefined ? {} : { ContinuationToken: token }) }))
    for (const object of page.Contents ?? []) keys.push(object.Key as string)
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined
  } while (token !== undefined)
  return keys.sort()
}

/** Runs `count` tasks, `width` at once. */
async function inBatches (count: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < count; i += width) {
    await Promise.all(Array.from({ length: Math.min(width, count - i) }, async (_, j) => { await task(i + j) }))
  }
}

t.test('listings with a delimiter at several depths, past 1,000 keys and 1,000 prefixes', async (t) => {
  const driver = await driverOn()
  const n = (i: number): string => String(i).padStart(4, '0')
  // 1,010 directories and 30 files side by side below /wide (1,040 keys), and a chain five levels deep.
  await inBatches(1010, 50, async (i) => {
    await Promise.all([driver.putContent(`/wide/d${n(i)}/f`, `d${i}`), ...(i < 30 ? [driver.putContent(`/wide/f${n(i)}`, `f${i}`)] : [])])
  })
  await driver.putContent('/deep/a/b/c/d/e', 'deep')
  await driver.putContent('/deep/a/b/x', 'x')

  const wide = await driver.list('/wide')
  t.equal(wide.length, 1040, 'every directory and file of /wide, over several pages')
  t.equal(wide[0], '/wide/d0000')
  t.equal(wide[1010], '/wide/f0000')
  t.same(wide, [...wide].sort(), 'sorted')
  t.same(await driver.list('/wide/d0999'), ['/wide/d0999/f'], 'one level down')
  t.same(await driver.list('/'), ['/deep', '/wide'], 'from the top, common prefixes of keys several levels down')
  t.same(await driver.list('/deep'), ['/deep/a'])
  t.same(await driver.list('/deep/a/b'), ['/deep/a/b/c', '/deep/a/b/x'], 'a directory and a file at depth three')
  t.same(await driver.list('/deep/a/b/c/d'), ['/deep/a/b/c/d/e'], 'at depth five')
  t.equal((await driver.stat('/deep/a/b/c')).isDir, true)

  let files = 0
  let dirs = 0
  for await (const info of driver.walk('/wide')) {
    if (info.isDir) dirs++
    else files++
  }
  t.same({ files, dirs }, { files: 1040, dirs: 1010 }, 'a walk sees every file and directory')

  await driver.delete('/wide')
  t.same(await rawKeys(driver), ['deep/a/b/c/d/e', 'deep/a/b/x'], 'a delete of 1,040 keys (two DeleteObjects, each with Content-MD5) removes them all')
})

t.test('multipart uploads, appends over several writers, and joins by server-side part copies', async (t) => {
  const warnings: string[] = []
  const driver = await driverOn({
    multipartCopyThresholdSize: 5 * MiB,
    multipartCopyChunkSize: 5 * MiB,
    log: { warn: (_object, message) => { warnings.push(message) } }
  })
  const content = randomBytes(23 * MiB + 11)
  // Four sessions: 6 MiB, 1 MiB (a short tail, rewritten by the next), 9 MiB, the rest.
  const cuts = [0, 6 * MiB, 7 * MiB, 16 * MiB, content.length]
  for (let i = 0; i < cuts.length - 1; i++) {
    const writer = await driver.writer('/upload/data', i > 0)
    const piece = content.subarray(cuts[i], cuts[i + 1])
    for (let offset = 0; offset < piece.length; offset += 700_001) await writer.write(piece.subarray(offset, offset + 700_001))
    await writer.close()
    t.equal((await driver.stat('/upload/data')).size, cuts[i + 1], `session ${i}: the size is every byte so far`)
  }
  t.ok((await rawKeys(driver)).some((key) => key.startsWith('upload/data~')), 'the file is kept in segments')
  t.ok((await readAll(await driver.reader('/upload/data', { offset: 6 * MiB - 5, length: 2 * MiB }))).equals(content.subarray(6 * MiB - 5, 8 * MiB - 5)),
    'a ranged read across segments')

  await driver.move('/upload/data', '/blobs/data')
  t.same(await rawKeys(driver), ['blobs/data'], 'the move joined the segments into one object and removed the source')
  const moved = await driver.getContent('/blobs/data')
  t.equal(createHash('sha256').update(moved).digest('hex'), createHash('sha256').update(content).digest('hex'), 'whole')

  await driver.move('/blobs/data', '/blobs/again')
  t.ok((await driver.getContent('/blobs/again')).equals(content), 'a plain object above the threshold is copied in parts too')
  t.same(warnings, [], 'Swift copies parts server side: nothing streamed through the registry')
})

t.test('ranged reads of a plain object', async (t) => {
  const driver = await driverOn()
  const content = randomBytes(3 * MiB + 17)
  await driver.putContent('/r', content)
  for (const [offset, length] of [[0, 1], [1, 100], [MiB, MiB], [3 * MiB, 17], [3 * MiB + 16, undefined], [5, undefined]] as Array<[number, number | undefined]>) {
    const read = await readAll(await driver.reader('/r', { offset, ...(length === undefined ? {} : { length }) }))
    t.ok(read.equals(content.subarray(offset, length === undefined ? undefined : offset + length)), `offset ${offset}, length ${String(length)}`)
  }
  t.equal((await readAll(await driver.reader('/r', { offset: content.length }))).length, 0, 'at the end: nothing')
})

t.test('presigned URLs serve the object, with its expiry', async (t) => {
  const driver = await driverOn({ redirect: true, redirectExpirySeconds: 120 })
  const content = randomBytes(MiB + 3)
  await driver.putContent('/blob', content)
  const url = await driver.redirectURL('/blob') as string
  t.match(url, /X-Amz-Expires=120/)
  const response = await fetch(url)
  t.equal(response.status, 200)
  t.ok(Buffer.from(await response.arrayBuffer()).equals(content), 'a plain GET of the URL gives the object')
  const ranged = await fetch(url, { headers: { range: 'bytes=10-19' } })
  t.equal(ranged.status, 206)
  t.ok(Buffer.from(await ranged.arrayBuffer()).equals(content.subarray(10, 20)), 'and a range of it')
})

t.test('a region that is not AWS\'s: requests are signed for the service\'s own', async (t) => {
  const other = await startSwift(t, { location: 'RegionOne' })
  const driver = new S3Driver(other.driverOptions(await other.createBucket()))
  t.teardown(() => driver.close())
  t.equal(other.location, 'RegionOne')
  await driver.putContent('/a/b', 'in RegionOne')
  t.equal((await driver.getContent('/a/b')).toString(), 'in RegionOne')
  t.same(await driver.list('/a'), ['/a/b'])
  const presigned = new S3Driver(other.driverOptions(driver.bucket, { redirect: true }))
  t.teardown(() => presigned.close())
  const response = await fetch(await presigned.redirectURL('/a/b') as string)
  t.equal(await response.text(), 'in RegionOne', 'a presigned URL signed for the region')
  await driver.delete('/a')

  const wrong = new S3Driver(other.driverOptions(driver.bucket, { region: 'us-east-1', maxAttempts: 1 }))
  t.teardown(() => wrong.close())
  const refused = await wrong.putContent('/c', 'x').catch((error: unknown) => error)
  t.ok(refused instanceof StorageDriverError, `signed for another region, a request is refused: ${String(refused)}`)
})

t.test('multipart uploads a dead process left are purged (Swift has no lifecycle rules)', async (t) => {
  const driver = await driverOn({ rootDirectory: 'root' })
  const outsideRoot = new S3Driver(swift.driverOptions(driver.bucket, { partSize: 5 * MiB }))
  t.teardown(() => outsideRoot.close())
  // Writers that filled a part and then were dropped, as by a crash: their uploads stay open
  // (a write returns once the upload is created and its part is on its way).
  const writer = await driver.writer('/uploads/data', false)
  await writer.write(randomBytes(5 * MiB + 1))
  const outside = await outsideRoot.writer('/data', false)
  await outside.write(randomBytes(5 * MiB + 1))
  const open = async (): Promise<string[]> => ((await driver.client.send(new ListMultipartUploadsCommand({ Bucket: driver.bucket }))).Uploads ?? []).map((upload) => upload.Key as string).sort()
  t.same(await open(), ['data', 'root/uploads/data'], 'two uploads are open')
  t.equal(await driver.purgeMultipartUploads(new Date(Date.now() - 3_600_000)), 0, 'recent ones are kept')
  t.equal(await driver.purgeMultipartUploads(new Date(Date.now() + 60_000)), 1, 'an old one below the root is aborted')
  t.same(await open(), ['data'], 'the one outside the root is not the driver\'s')
  await outside.cancel()
  t.same(await open(), [], 'and a cancelled writer aborts its own')

  // The registry's upload purge aborts them too, as old as the uploads it removes.
  const upload = await driver.writer('/docker/registry/v2/repositories/app/_uploads/dead/data', false)
  await upload.write(randomBytes(5 * MiB + 1))
  t.same(await open(), ['root/docker/registry/v2/repositories/app/_uploads/dead/data'], 'an upload\'s data is open')
  await new RegistryService(driver).purgeUploads(new Date(Date.now() + 60_000))
  t.same(await open(), [], 'the upload purge aborted it')
})
