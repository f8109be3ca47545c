import t from 'tap'
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import type { Readable } from 'node:stream'
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import { PathNotFoundError, StorageDriverError, StorageUnavailableError } from '../../lib/storage/driver.js'
import { S3Driver, type S3DriverOptions } from '../../lib/storage/drivers/s3.js'
import { startS3Server } from '../s3.js'
import { driverSuite } from './driver-suite.js'

const MiB = 1024 * 1024

const server = await startS3Server(t)

driverSuite(t, 's3', async () => ({ driver: new S3Driver(server.driverOptions(await server.createBucket())) }))

async function driverOn (extra: Partial<S3DriverOptions> = {}): Promise<S3Driver> {
  const driver = new S3Driver(server.driverOptions(await server.createBucket(), { partSize: 5 * MiB, ...extra }))
  t.teardown(() => driver.close())
  return driver
}

/** Every key in the driver's bucket, as S3 holds them. */
async function rawKeys (driver: S3Driver): Promise<string[]> {
  const listed = await driver.client.send(new ListObjectsV2Command({ Bucket: driver.bucket }))
  return (listed.Contents ?? []).map((object) => object.Key as string).sort()
}

async function readAll (stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

async function append (driver: S3Driver, path: string, bytes: Buffer, finish: 'close' | 'commit', fresh = false): Promise<void> {
  const writer = await driver.writer(path, !fresh)
  // In uneven chunks, as a request body arrives.
  for (let offset = 0; offset < bytes.length; offset += 300_001) await writer.write(bytes.subarray(offset, offset + 300_001))
  await writer[finish]()
}

t.test('a file appended over several writers: segments, a rewritten short tail, one join on move', async (t) => {
  const driver = await driverOn()
  const path = '/uploads/u1/data'
  const pieces = [randomBytes(6 * MiB), randomBytes(7 * MiB), randomBytes(MiB), randomBytes(2 * MiB)]
  const sizes: number[] = []

  await append(driver, path, pieces[0] as Buffer, 'close', true)
  t.same(await rawKeys(driver), ['uploads/u1/data'], 'one writer leaves one plain object')

  for (const piece of pieces.slice(1)) {
    await append(driver, path, piece, 'close')
    sizes.push((await driver.stat(path)).size)
  }
  const content = Buffer.concat(pieces)
  t.same(sizes, [13 * MiB, 14 * MiB, 16 * MiB], 'each close leaves the whole size visible')
  const keys = await rawKeys(driver)
  t.equal(keys.filter((key) => key.startsWith('uploads/u1/data~')).length, 3,
    'three segments: the first object, the second writer\'s bytes, and the short tail rewritten with the last bytes')
  t.same(await driver.list('/uploads/u1'), ['/uploads/u1/data'], 'segments are never listed')
  const walked = []
  for await (const info of driver.walk('/uploads')) walked.push([info.path, info.size])
  t.same(walked, [['/uploads/u1', 0], ['/uploads/u1/data', 16 * MiB]], 'a walk gives the file\'s size, not its index\'s')

  t.ok((await driver.getContent(path)).equals(content), 'getContent joins the segments')
  for (const offset of [0, 6 * MiB - 1, 6 * MiB, 13 * MiB + 5, 16 * MiB - 1, 16 * MiB]) {
    t.ok((await readAll(await driver.reader(path, { offset }))).equals(content.subarray(offset)), `a read from ${offset}`)
  }
  t.ok((await readAll(await driver.reader(path, { offset: 6 * MiB - 10, length: 20 }))).equals(content.subarray(6 * MiB - 10, 6 * MiB + 10)),
    'a read across a segment boundary')

  const writer = await driver.writer(path, true)
  await writer.commit()
  t.equal((await rawKeys(driver)).length, 4, 'a commit with nothing new changes nothing')

  await driver.move(path, '/blobs/b/data')
  t.same(await rawKeys(driver), ['blobs/b/data'], 'a move joins the segments into one object and removes them')
  const head = await driver.client.send(new HeadObjectCommand({ Bucket: driver.bucket, Key: 'blobs/b/data' }))
  t.equal(head.ContentLength, 16 * MiB, 'a plain object of the whole size')
  t.ok((await driver.getContent('/blobs/b/data')).equals(content), 'holding the content')
})

t.test('parts: every part but the last of each multipart upload is at least 5 MiB', async (t) => {
  const driver = await driverOn()
  const parts: Array<{ uploadId: string, size: number }> = []
  driver.client.middlewareStack.add((next, context) => async (args) => {
    if (context.commandName === 'UploadPartCommand') {
      const input = args.input as { UploadId: string, ContentLength: number }
      parts.push({ uploadId: input.UploadId, size: input.ContentLength })
    }
    return await next(args)
  }, { step: 'initialize' })
  const content = randomBytes(23 * MiB + 5)
  // A chunked upload: a short first chunk, then long ones, across writers.
  const chunks = [content.subarray(0, MiB), content.subarray(MiB, 3 * MiB), content.subarray(3 * MiB, 15 * MiB), content.subarray(15 * MiB)]
  await append(driver, '/p', chunks[0] as Buffer, 'close', true)
  for (const chunk of chunks.slice(1)) await append(driver, '/p', chunk, 'close')
  await driver.move('/p', '/q')
  t.ok((await driver.getContent('/q')).equals(content), 'the content is whole')
  const uploads = new Map<string, number[]>()
  for (const part of parts) uploads.set(part.uploadId, [...(uploads.get(part.uploadId) ?? []), part.size])
  t.ok(uploads.size >= 2, `${uploads.size} multipart uploads`)
  for (const sizes of uploads.values()) {
    t.ok(sizes.slice(0, -1).every((size) => size >= 5 * MiB), `parts ${sizes.join(', ')}`)
  }
})

t.test('listings, walks and deletes page through more than 1,000 keys', async (t) => {
  const driver = await driverOn()
  const names = Array.from({ length: 1500 }, (_, i) => `k${String(i).padStart(4, '0')}`)
  for (let i = 0; i < names.length; i += 100) {
    await Promise.all(names.slice(i, i + 100).map((name) => driver.putContent(`/many/${name}`, name)))
  }
  t.equal((await driver.list('/many')).length, 1500, 'list')
  let walked = 0
  for await (const info of driver.walk('/many')) walked += info.isDir ? 0 : 1
  t.equal(walked, 1500, 'walk')
  await driver.delete('/many')
  t.same(await rawKeys(driver), [], 'delete')
})

t.test('a commit after appends joins the file into one object', async (t) => {
  const driver = await driverOn()
  const pieces = [randomBytes(6 * MiB), randomBytes(6 * MiB)]
  await append(driver, '/f', pieces[0] as Buffer, 'close', true)
  await append(driver, '/f', pieces[1] as Buffer, 'commit')
  t.same(await rawKeys(driver), ['f'], 'no segment is left')
  t.ok((await driver.getContent('/f')).equals(Buffer.concat(pieces)), 'the content is whole')
})

t.test('cancel and delete remove the segments too', async (t) => {
  const driver = await driverOn()
  await append(driver, '/d/f', randomBytes(6 * MiB), 'close', true)
  await append(driver, '/d/f', randomBytes(MiB), 'close')
  await append(driver, '/d/g', randomBytes(6 * MiB), 'close', true)
  await append(driver, '/d/g', randomBytes(MiB), 'close')
  const writer = await driver.writer('/d/f', true)
  await writer.write(randomBytes(10))
  await writer.cancel()
  t.same((await rawKeys(driver)).filter((key) => key.startsWith('d/f')), [], 'cancel removes the file and its segments')
  await driver.delete('/d/g')
  t.same(await rawKeys(driver), [], 'delete removes the file and its segments')
})

t.test('moves above the copy threshold copy in parts (streamed through when the service cannot copy parts)', async (t) => {
  const warnings: string[] = []
  const driver = await driverOn({
    multipartCopyThresholdSize: 5 * MiB,
    multipartCopyChunkSize: 5 * MiB,
    log: { warn: (_object, message) => { warnings.push(message) } }
  })
  const content = randomBytes(12 * MiB + 3)
  await append(driver, '/big', content, 'commit', true)
  await driver.move('/big', '/moved')
  t.ok((await driver.getContent('/moved')).equals(content), 'the moved content is whole')
  t.same(await rawKeys(driver), ['moved'], 'and the source is gone')
  // s3rver answers UploadPartCopy with NotImplemented: the driver notices once and streams.
  t.same(warnings, ['the S3 service cannot copy parts: copies stream through the registry'])
})

t.test('rootDirectory puts the tree below a key prefix', async (t) => {
  const driver = await driverOn({ rootDirectory: '/some/root/' })
  await driver.putContent('/a/b', 'x')
  t.same(await rawKeys(driver), ['some/root/a/b'])
  t.same(await driver.list('/'), ['/a'])
  t.equal((await driver.stat('/a')).isDir, true)
})

t.test('redirect: a presigned URL serves the object', async (t) => {
  const plain = await driverOn()
  await plain.putContent('/blob', 'content')
  t.equal(await plain.redirectURL('/blob'), undefined, 'off by default')

  const driver = await driverOn({ redirect: true, redirectExpirySeconds: 60 })
  await driver.putContent('/blob', 'presigned content')
  const url = await driver.redirectURL('/blob') as string
  t.match(url, /X-Amz-Expires=60/, 'the URL carries its expiry')
  const body = await new Promise<string>((resolve, reject) => {
    http.get(url, (response) => {
      let text = ''
      response.setEncoding('utf8').on('data', (chunk: string) => { text += chunk }).on('end', () => resolve(text))
    }).on('error', reject)
  })
  t.equal(body, 'presigned content', 'a plain HTTP GET of the URL gives the content')
})

t.test('failures: a missing bucket is a setup fault, an unreachable service is UNAVAILABLE', async (t) => {
  const missing = new S3Driver(server.driverOptions('no-such-bucket'))
  t.teardown(() => missing.close())
  const error = await missing.list('/').catch((error: unknown) => error)
  t.ok(error instanceof StorageDriverError && !(error instanceof StorageUnavailableError) && !(error instanceof PathNotFoundError),
    `a driver error, not a missing path: ${String(error)}`)

  const down = new S3Driver({ ...server.driverOptions('bucket'), endpoint: 'http://127.0.0.1:9', maxAttempts: 2 })
  t.teardown(() => down.close())
  const unreachable = await down.stat('/file').catch((error: unknown) => error)
  t.ok(unreachable instanceof StorageUnavailableError, `connection refused is UNAVAILABLE: ${String(unreachable)}`)
  t.notOk(String((unreachable as Error).message).includes('127.0.0.1'), 'the message names the path, not the endpoint')
})

t.test('options are checked', async (t) => {
  t.throws(() => new S3Driver({ bucket: '' }), TypeError)
  t.throws(() => new S3Driver({ bucket: 'b', partSize: MiB }), TypeError, 'a part size under 5 MiB is refused')
  t.throws(() => new S3Driver({ bucket: 'b', accessKeyId: 'id' }), TypeError, 'a key id without a secret is refused')
  const driver = new S3Driver({ bucket: 'b', region: 'eu-west-1' })
  t.equal(driver.minChunkSize, 5 * MiB, 'the registry announces S3\'s smallest part')
  await driver.close()
})

t.test('a multi-object delete carries Content-MD5, not the SDK\'s CRC32 (which S3-compatible services refuse)', async (t) => {
  const driver = await driverOn()
  const sent: Array<Record<string, string>> = []
  driver.client.middlewareStack.add((next) => async (args) => {
    const request = args.request as { headers: Record<string, string>, query?: Record<string, unknown> }
    if (request.query !== undefined && 'delete' in request.query) sent.push({ ...request.headers })
    return await next(args)
  }, { step: 'finalizeRequest', name: 'recordDeletes' })
  await driver.putContent('/d/a', 'a')
  await driver.putContent('/d/b', 'b')
  await driver.delete('/d')
  t.equal(sent.length, 1, 'one DeleteObjects')
  const headers = sent[0] ?? {}
  t.match(headers['content-md5'], /^[A-Za-z0-9+/]{22}==$/, 'with Content-MD5')
  t.same(Object.keys(headers).filter((name) => name.startsWith('x-amz-checksum') || name === 'x-amz-sdk-checksum-algorithm'), [], 'and no x-amz-checksum header')
  t.same(await rawKeys(driver), [], 'the service accepted it')
})

t.test('a move whose copy is done succeeds even when deleting the source fails', async (t) => {
  const warnings: string[] = []
  const driver = await driverOn({ log: { warn: (_object, message) => { warnings.push(message) } }, maxAttempts: 1 })
  let refuse = false
  driver.client.middlewareStack.add((next, context) => async (args) => {
    if (refuse && context.commandName === 'DeleteObjectsCommand') {
      throw Object.assign(new Error('refused'), { name: 'InvalidRequest', $metadata: { httpStatusCode: 400 } })
    }
    return await next(args)
  }, { step: 'initialize', name: 'refuseDeletes' })
  await driver.putContent('/up/data', 'published')
  refuse = true
  await driver.move('/up/data', '/blob/data')
  refuse = false
  t.equal((await driver.getContent('/blob/data')).toString(), 'published', 'the destination is published')
  t.equal((await driver.getContent('/up/data')).toString(), 'published', 'the source stays, for its owner to delete')
  t.same(warnings, ['moved, but could not delete the source'], 'and the failure is logged')

  refuse = true
  const failed = await driver.move('/missing', '/elsewhere').catch((error: unknown) => error)
  t.ok(failed instanceof PathNotFoundError, 'a move that cannot copy still fails')
})
