/**
 * The one test suite every storage driver runs unchanged. Case names follow CNCF distribution's
 * driver test suites where there is a counterpart. Each case works below its own random prefix,
 * which is deleted afterwards and checked gone, so a driver can be tested against a store that
 * holds other data. The driver runs behind the storage base layer, as the registry runs it (drivers
 * trust their paths: the base layer validates them), and the base layer's own cases run on it.
 */

import { createHash, randomBytes } from 'node:crypto'
import type { Readable } from 'node:stream'
import type { Test } from 'tap'
import {
  InvalidOffsetError,
  InvalidPathError,
  PathNotFoundError,
  StorageDriverError,
  type FileInfo,
  type StorageDriver
} from '../../lib/storage/driver.js'
import { StorageBase, wrapDriver, type StorageActionEvent } from '../../lib/storage/base.js'

export interface LargeFileOptions {
  /** The driver keeps file contents in process memory: the case skips its memory check. */
  holdsDataInMemory?: boolean
  /** Size of the file in MiB (default 1,100: past 1 GiB). */
  sizeMiB?: number
}

export interface DriverUnderTest {
  /** The bare driver: the suite puts it behind the base layer. */
  driver: StorageDriver
  /** Called once the suite is done, after the driver's own `close`. */
  cleanup?: () => Promise<void>
}

type ErrorClass = abstract new (...args: never[]) => Error

const MiB = 1024 * 1024

async function readAll (stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

async function collect (entries: AsyncIterable<FileInfo>): Promise<FileInfo[]> {
  const all: FileInfo[] = []
  for await (const entry of entries) all.push(entry)
  return all
}

function sha256 (data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Asserts that an operation rejects with an error of a class, naming what it got otherwise. */
async function rejectsWith (t: Test, run: () => Promise<unknown>, type: ErrorClass, message: string): Promise<void> {
  try {
    await run()
    t.fail(`${message}: resolved, expected ${type.name}`)
  } catch (error) {
    if (error instanceof type) t.pass(message)
    else t.fail(`${message}: expected ${type.name}, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`)
  }
}

/** Compares buffers by digest: a failure then prints two short lines, not megabytes. */
function sameBytes (t: Test, actual: Uint8Array, expected: Uint8Array, message: string): void {
  t.equal(actual.byteLength, expected.byteLength, `${message} (length)`)
  t.equal(sha256(actual), sha256(expected), `${message} (content)`)
}

export function driverSuite (
  t: Test,
  name: string,
  make: () => Promise<DriverUnderTest>
): ReturnType<Test['test']> {
  return t.test(`${name} storage driver`, async (t) => {
    const { driver: bare, cleanup } = await make()
    const driver = wrapDriver(bare)
    t.teardown(async () => {
      await driver.close?.()
      await cleanup?.()
    })
    const prefixes: string[] = []

    /** A case below a fresh prefix; whatever it leaves is deleted, then checked gone. */
    function scenario (title: string, body: (t: Test, prefix: string) => Promise<void>): void {
      t.test(title, async (t) => {
        const prefix = `/suite-${randomBytes(8).toString('hex')}`
        prefixes.push(prefix)
        try {
          await body(t, prefix)
        } finally {
          await driver.delete(prefix).catch((error: unknown) => {
            if (!(error instanceof PathNotFoundError)) throw error
          })
        }
        await rejectsWith(t, () => driver.stat(prefix), PathNotFoundError, 'nothing is left behind')
      })
    }

    async function writeChunks (path: string, chunks: Uint8Array[]): Promise<void> {
      const writer = await driver.writer(path, false)
      for (const chunk of chunks) await writer.write(chunk)
      await writer.commit()
    }

    scenario('write and read content', async (t, prefix) => {
      const contents: Array<[string, Uint8Array | string]> = [
        ['empty', new Uint8Array(0)],
        ['small text', 'hello, registry'],
        ['non UTF-8 binary', Buffer.from([...Array(256).keys()].concat([0xc3, 0x28, 0xff, 0xfe, 0x00]))],
        ['1 MiB', randomBytes(MiB)]
      ]
      for (const [label, content] of contents) {
        const path = `${prefix}/${label.replace(/[^a-z0-9]+/gi, '-')}`
        await driver.putContent(path, content)
        const expected = typeof content === 'string' ? Buffer.from(content, 'utf8') : content
        sameBytes(t, await driver.getContent(path), expected, `getContent returns ${label} content`)
        sameBytes(t, await readAll(await driver.reader(path)), expected, `reader returns ${label} content`)
        t.equal((await driver.stat(path)).size, expected.byteLength, `stat gives the size of ${label} content`)
      }
    })

    scenario('put content multiple times', async (t, prefix) => {
      const path = `${prefix}/file`
      await driver.putContent(path, randomBytes(64 * 1024))
      const shorter = randomBytes(1000)
      await driver.putContent(path, shorter)
      sameBytes(t, await driver.getContent(path), shorter, 'a shorter overwrite leaves no tail of the old content')
      const longer = randomBytes(200 * 1024)
      await driver.putContent(path, longer)
      sameBytes(t, await driver.getContent(path), longer, 'a longer overwrite is read whole')
    })

    scenario('read nonexistent', async (t, prefix) => {
      await rejectsWith(t, () => driver.getContent(`${prefix}/missing`), PathNotFoundError, 'getContent of a missing path')
      await driver.putContent(`${prefix}/dir/file`, 'x')
      await rejectsWith(t, () => driver.getContent(`${prefix}/dir`), PathNotFoundError, 'getContent of a directory')
      await rejectsWith(t, () => driver.getContent(`${prefix}/dir/file/below`), PathNotFoundError, 'getContent below a file')
    })

    scenario('root is a directory', async (t, prefix) => {
      await driver.putContent(`${prefix}/file`, 'x')
      await rejectsWith(t, () => driver.getContent('/'), PathNotFoundError, 'getContent of the root')
      await rejectsWith(t, () => driver.reader('/'), PathNotFoundError, 'reader of the root')
      await rejectsWith(t, () => driver.writer('/', true), PathNotFoundError, 'append to the root')
      await rejectsWith(t, () => driver.putContent('/', 'x'), StorageDriverError, 'putContent to the root')
      await rejectsWith(t, () => driver.writer('/', false), StorageDriverError, 'writer to the root')
      t.same((await driver.stat('/')).isDir, true, 'the root is still a directory')
      t.ok((await driver.list('/')).includes(prefix), 'and still lists the prefix')
    })

    scenario('valid paths', async (t, prefix) => {
      const names = ['a', 'a.b', '.hidden', '...', '_under', '-dash', 'UPPER', '0', 'x'.repeat(200), 'n/e/s/t/e/d']
      for (const name of names) {
        const path = `${prefix}/${name}`
        await driver.putContent(path, name)
        t.equal((await driver.getContent(path)).toString(), name, `round trip of ${path.length > 60 ? `${path.slice(0, 60)}...` : path}`)
      }
      t.same(await driver.list(prefix), names.map((name) => `${prefix}/${name.split('/')[0]}`).sort(), 'all are listed')
    })

    scenario('invalid paths', async (t, prefix) => {
      const valid = `${prefix}/valid`
      await driver.putContent(valid, 'kept')
      const invalid = ['', '..', '.', '/..', '/.', 'a', 'a/b', '/a/../b', '/a/./b', '/a//b', '//', '/a/', '/a b', '/a%2Fb', '/a\\b', '/a\0b', '/a:b', '/ä', '/a\nb']
      const operations: Array<[string, (path: string) => Promise<unknown>]> = [
        ['getContent', (path) => driver.getContent(path)],
        ['putContent', (path) => driver.putContent(path, 'x')],
        ['reader', (path) => driver.reader(path)],
        ['writer', (path) => driver.writer(path, false)],
        ['writer (append)', (path) => driver.writer(path, true)],
        ['stat', (path) => driver.stat(path)],
        ['list', (path) => driver.list(path)],
        ['move (source)', (path) => driver.move(path, `${prefix}/dest`)],
        ['move (destination)', (path) => driver.move(valid, path)],
        ['delete', (path) => driver.delete(path)],
        ['walk', (path) => collect(driver.walk(path))]
      ]
      for (const path of invalid) {
        for (const [operation, run] of operations) {
          await rejectsWith(t, () => run(path), InvalidPathError, `${operation} rejects ${JSON.stringify(path)}`)
        }
      }
      t.equal((await driver.getContent(valid)).toString(), 'kept', 'the valid file is untouched')
      t.same(await driver.list(prefix), [valid], 'nothing else was created')
    })

    scenario('reader with offset', async (t, prefix) => {
      // Uneven chunks, so that offsets land on and around the boundaries of what was written.
      const chunks = [randomBytes(100), randomBytes(70_000), randomBytes(1), randomBytes(300_000), randomBytes(5)]
      const content = Buffer.concat(chunks)
      const path = `${prefix}/file`
      await writeChunks(path, chunks)
      const size = content.length
      for (const offset of [0, 1, 99, 100, 101, 70_099, 70_100, 70_101, 70_102, 200_000, size - 5, size - 1, size]) {
        sameBytes(t, await readAll(await driver.reader(path, { offset })), content.subarray(offset), `from offset ${offset}`)
      }
      for (const [offset, length] of [[0, 10], [99, 2], [100, 70_001], [size - 5, 100], [10, 0], [size, 10], [0, size]]) {
        sameBytes(t, await readAll(await driver.reader(path, { offset, length })), content.subarray(offset, offset + length),
          `from offset ${offset}, length ${length}`)
      }
      for (const offset of [size + 1, size * 2, -1, 1.5]) {
        await rejectsWith(t, () => driver.reader(path, { offset }), InvalidOffsetError, `offset ${offset} is rejected`)
      }
      await rejectsWith(t, () => driver.reader(path, { length: -1 }), StorageDriverError, 'a negative length is rejected')
      await driver.putContent(`${prefix}/empty`, '')
      sameBytes(t, await readAll(await driver.reader(`${prefix}/empty`)), Buffer.alloc(0), 'an empty file reads empty')
      await rejectsWith(t, () => driver.reader(`${prefix}/empty`, { offset: 1 }), InvalidOffsetError, 'offset 1 of an empty file')
    })

    scenario('read nonexistent stream', async (t, prefix) => {
      await rejectsWith(t, () => driver.reader(`${prefix}/missing`), PathNotFoundError, 'reader of a missing path')
      await rejectsWith(t, () => driver.reader(`${prefix}/missing`, { offset: 10 }), PathNotFoundError, 'reader of a missing path, with an offset')
      await driver.putContent(`${prefix}/dir/file`, 'x')
      await rejectsWith(t, () => driver.reader(`${prefix}/dir`), PathNotFoundError, 'reader of a directory')
    })

    scenario('reader honours backpressure', async (t, prefix) => {
      const content = randomBytes(8 * MiB)
      const path = `${prefix}/file`
      await driver.putContent(path, content)
      const stream = await driver.reader(path)
      stream.pause()
      stream.read(0)
      // Not a clock: a second reader reads the whole file meanwhile, as many round trips to
      // storage as the first stream would need to read it all if it ignored backpressure.
      sameBytes(t, await readAll(await driver.reader(path)), content, 'a second reader reads it meanwhile')
      t.ok(stream.readableLength < content.length / 2, `an unread stream buffers a part only (${stream.readableLength} bytes)`)
      sameBytes(t, await readAll(stream), content, 'it then reads whole')
    })

    scenario('write and read streams', async (t, prefix) => {
      const path = `${prefix}/file`
      const chunks = [randomBytes(10), randomBytes(64 * 1024), randomBytes(3), randomBytes(MiB + 7), Buffer.alloc(0), randomBytes(1000)]
      const writer = await driver.writer(path, false)
      t.equal(writer.size, 0, 'a new writer starts at 0')
      let size = 0
      for (const chunk of chunks) {
        await writer.write(chunk)
        size += chunk.length
        t.equal(writer.size, size, `size is ${size} after a chunk of ${chunk.length}`)
      }
      await writer.commit()
      const content = Buffer.concat(chunks)
      sameBytes(t, await driver.getContent(path), content, 'getContent gives what was written')
      sameBytes(t, await readAll(await driver.reader(path)), content, 'the reader gives what was written')
      t.equal((await driver.stat(path)).size, content.length, 'stat gives the size')
    })

    scenario('writer reuses its chunk buffer', async (t, prefix) => {
      // A caller may reuse a chunk once write resolves: the driver must not keep a reference.
      const path = `${prefix}/file`
      const buffer = Buffer.alloc(1000)
      const expected: Buffer[] = []
      const writer = await driver.writer(path, false)
      for (let i = 0; i < 5; i++) {
        buffer.fill(i + 1)
        expected.push(Buffer.from(buffer))
        await writer.write(buffer)
      }
      await writer.commit()
      sameBytes(t, await driver.getContent(path), Buffer.concat(expected), 'each chunk is stored as it was when written')
    })

    scenario('writer truncates', async (t, prefix) => {
      const path = `${prefix}/file`
      await driver.putContent(path, randomBytes(10_000))
      const writer = await driver.writer(path, false)
      t.equal(writer.size, 0, 'a writer without append starts at 0 over an existing file')
      const content = randomBytes(100)
      await writer.write(content)
      await writer.commit()
      sameBytes(t, await driver.getContent(path), content, 'the old content is gone')
    })

    scenario('continue stream append', async (t, prefix) => {
      const path = `${prefix}/file`
      const parts = [randomBytes(300_000), randomBytes(5), randomBytes(MiB), randomBytes(77)]
      const first = await driver.writer(path, false)
      await first.write(parts[0])
      await first.write(parts[1])
      await first.close()
      t.equal((await driver.stat(path)).size, parts[0].length + parts[1].length, 'close keeps what was written')

      const second = await driver.writer(path, true)
      t.equal(second.size, parts[0].length + parts[1].length, 'an appending writer starts at the size so far')
      await second.write(parts[2])
      t.equal(second.size, parts[0].length + parts[1].length + parts[2].length, 'and counts on from there')
      await second.close()

      const third = await driver.writer(path, true)
      await third.write(parts[3])
      await third.commit()
      const content = Buffer.concat(parts)
      sameBytes(t, await driver.getContent(path), content, 'the file is every part in order')
      sameBytes(t, await readAll(await driver.reader(path, { offset: parts[0].length })), content.subarray(parts[0].length),
        'and reads from an offset in a later part')
    })

    scenario('write zero byte stream then append', async (t, prefix) => {
      const path = `${prefix}/file`
      const empty = await driver.writer(path, false)
      await empty.commit()
      t.equal((await driver.stat(path)).size, 0, 'a committed writer with no bytes leaves an empty file')
      const writer = await driver.writer(path, true)
      t.equal(writer.size, 0, 'appending to it starts at 0')
      await writer.write(Buffer.from('abc'))
      await writer.commit()
      t.equal((await driver.getContent(path)).toString(), 'abc', 'the appended bytes are the content')
    })

    scenario('write zero byte content then append', async (t, prefix) => {
      const path = `${prefix}/file`
      await driver.putContent(path, '')
      const writer = await driver.writer(path, true)
      t.equal(writer.size, 0, 'appending to empty content starts at 0')
      await writer.write(Buffer.from('abc'))
      await writer.commit()
      t.equal((await driver.getContent(path)).toString(), 'abc', 'the appended bytes are the content')
    })

    scenario('append to nonexistent', async (t, prefix) => {
      await rejectsWith(t, () => driver.writer(`${prefix}/missing`, true), PathNotFoundError, 'append to a missing file')
      await driver.putContent(`${prefix}/dir/file`, 'x')
      await rejectsWith(t, () => driver.writer(`${prefix}/dir`, true), PathNotFoundError, 'append to a directory')
      t.same(await driver.list(prefix), [`${prefix}/dir`], 'nothing was created')
    })

    scenario('cancel writer', async (t, prefix) => {
      const fresh = `${prefix}/fresh`
      const writer = await driver.writer(fresh, false)
      await writer.write(randomBytes(1000))
      await writer.cancel()
      await rejectsWith(t, () => driver.stat(fresh), PathNotFoundError, 'cancel removes a new file')

      const resumed = `${prefix}/resumed`
      const first = await driver.writer(resumed, false)
      await first.write(randomBytes(1000))
      await first.close()
      const second = await driver.writer(resumed, true)
      await second.write(randomBytes(1000))
      await second.cancel()
      await rejectsWith(t, () => driver.stat(resumed), PathNotFoundError, 'cancel of an appending writer removes the file')
    })

    scenario('finished writer', async (t, prefix) => {
      const path = `${prefix}/file`
      const committed = await driver.writer(path, false)
      await committed.write(Buffer.from('kept'))
      await committed.commit()
      await rejectsWith(t, () => committed.write(Buffer.from('more')), StorageDriverError, 'write after commit')
      await rejectsWith(t, () => committed.commit(), StorageDriverError, 'commit after commit')
      await rejectsWith(t, () => committed.cancel(), StorageDriverError, 'cancel after commit')
      await committed.close()
      t.pass('close after commit does nothing')
      t.equal((await driver.getContent(path)).toString(), 'kept', 'the committed content is intact')

      const closed = await driver.writer(path, true)
      await closed.close()
      await rejectsWith(t, () => closed.write(Buffer.from('more')), StorageDriverError, 'write after close')
      await rejectsWith(t, () => closed.cancel(), StorageDriverError, 'cancel after close')
      t.equal((await driver.getContent(path)).toString(), 'kept', 'the closed content is intact')

      const cancelled = await driver.writer(`${prefix}/other`, false)
      await cancelled.cancel()
      await cancelled.cancel()
      await cancelled.close()
      t.pass('cancel and close after cancel do nothing')
      await rejectsWith(t, () => cancelled.write(Buffer.from('more')), StorageDriverError, 'write after cancel')
    })

    scenario('stat call', async (t, prefix) => {
      const before = Date.now()
      const content = randomBytes(4321)
      await driver.putContent(`${prefix}/dir/file`, content)
      const file = await driver.stat(`${prefix}/dir/file`)
      t.equal(file.path, `${prefix}/dir/file`, 'the file info names the path')
      t.equal(file.size, content.length, 'a file has its size')
      t.equal(file.isDir, false, 'a file is not a directory')
      t.ok(file.modTime instanceof Date, 'modTime is a Date')
      // Generous: clocks of a remote store and of this host may differ a little.
      t.ok(Math.abs(file.modTime.getTime() - before) < 5 * 60_000, 'modTime is about now')

      const dir = await driver.stat(`${prefix}/dir`)
      t.equal(dir.path, `${prefix}/dir`, 'the directory info names the path')
      t.equal(dir.isDir, true, 'a directory is a directory')
      t.equal(dir.size, 0, 'a directory has size 0')

      t.equal((await driver.stat('/')).isDir, true, 'the root is a directory')

      // A driver with an etag must change it with the content, even for as many other bytes (the
      // upload store relies on it to tell its own write from another process's).
      if (file.etag !== undefined) {
        await driver.putContent(`${prefix}/dir/file`, randomBytes(content.length))
        const rewritten = await driver.stat(`${prefix}/dir/file`)
        t.equal(rewritten.size, file.size)
        t.not(rewritten.etag, file.etag, 'a rewrite of the same size has another etag')
        const writer = await driver.writer(`${prefix}/dir/file`, true)
        await writer.write(Buffer.from('more'))
        await writer.close()
        t.not((await driver.stat(`${prefix}/dir/file`)).etag, rewritten.etag, 'so does an append')
      }
      await rejectsWith(t, () => driver.stat(`${prefix}/missing`), PathNotFoundError, 'stat of a missing path')
      await rejectsWith(t, () => driver.stat(`${prefix}/dir/file/below`), PathNotFoundError, 'stat below a file')
      await rejectsWith(t, () => driver.stat(`${prefix}/di`), PathNotFoundError, 'stat of a prefix of a name')
    })

    scenario('list', async (t, prefix) => {
      const dir = `${prefix}/dir`
      for (const name of ['x/y/z', 'b', 'a', 'c/d', 'B', 'a-b', 'a.b']) await driver.putContent(`${dir}/${name}`, name)
      t.same(await driver.list(dir), ['B', 'a', 'a-b', 'a.b', 'b', 'c', 'x'].map((name) => `${dir}/${name}`),
        'direct children only, files and directories, sorted')
      t.same(await driver.list(`${dir}/x`), [`${dir}/x/y`], 'a directory holding a directory')
      t.same(await driver.list(`${dir}/x/y`), [`${dir}/x/y/z`], 'a directory holding a file')
      t.same(await driver.list(prefix), [dir], 'the prefix holds one directory')
      t.ok((await driver.list('/')).includes(prefix), 'the root lists the prefix')
      await rejectsWith(t, () => driver.list(`${prefix}/missing`), PathNotFoundError, 'list of a missing path')
      await rejectsWith(t, () => driver.list(`${dir}/b`), PathNotFoundError, 'list of a file')
    })

    scenario('list a directory of 1,000 entries', async (t, prefix) => {
      const names = Array.from({ length: 1000 }, (_, i) => `entry-${String(i).padStart(4, '0')}`)
      const shuffled = [...names].sort(() => Math.random() - 0.5)
      for (let i = 0; i < shuffled.length; i += 50) {
        await Promise.all(shuffled.slice(i, i + 50).map((name, j) =>
          // Every tenth entry is a directory, so both kinds are listed together.
          driver.putContent((i + j) % 10 === 0 ? `${prefix}/${name}/file` : `${prefix}/${name}`, name)))
      }
      const started = Date.now()
      const listed = await driver.list(prefix)
      t.same(listed, names.map((name) => `${prefix}/${name}`), 'all 1,000 entries, sorted')
      t.ok(Date.now() - started < 5000, 'listed in reasonable time')
    })

    scenario('walk', async (t, prefix) => {
      const files = ['a/1', 'a/b/2', 'a-b', 'Z', 'b/c/d/3', 'c', 'a/b/1']
      for (const name of files) await driver.putContent(`${prefix}/${name}`, `content of ${name}`)
      const walked = await collect(driver.walk(prefix))
      const expected: Array<[string, boolean]> = [
        ['Z', false],
        ['a', true], ['a/1', false], ['a/b', true], ['a/b/1', false], ['a/b/2', false],
        ['a-b', false],
        ['b', true], ['b/c', true], ['b/c/d', true], ['b/c/d/3', false],
        ['c', false]
      ]
      t.same(walked.map((info) => [info.path, info.isDir]), expected.map(([name, isDir]) => [`${prefix}/${name}`, isDir]),
        'depth first, children in sorted order, directories before their contents')
      for (const info of walked.filter((info) => !info.isDir)) {
        t.equal(info.size, `content of ${info.path.slice(prefix.length + 1)}`.length, `size of ${info.path.slice(prefix.length)}`)
      }
      t.same((await collect(driver.walk(`${prefix}/b`))).map((info) => info.path), ['b/c', 'b/c/d', 'b/c/d/3'].map((name) => `${prefix}/${name}`),
        'a walk below a subdirectory')
      await rejectsWith(t, () => collect(driver.walk(`${prefix}/missing`)), PathNotFoundError, 'walk of a missing path')
      await rejectsWith(t, () => collect(driver.walk(`${prefix}/c`)), PathNotFoundError, 'walk of a file')
    })

    scenario('move', async (t, prefix) => {
      const content = randomBytes(32 * 1024)
      const source = `${prefix}/source/file`
      const dest = `${prefix}/dest/deep/er/file`
      await driver.putContent(source, content)
      await driver.move(source, dest)
      sameBytes(t, await driver.getContent(dest), content, 'the destination holds the content')
      await rejectsWith(t, () => driver.stat(source), PathNotFoundError, 'the source is gone')

      await driver.move(dest, dest)
      sameBytes(t, await driver.getContent(dest), content, 'a move onto itself changes nothing')
    })

    scenario('move overwrite', async (t, prefix) => {
      const source = `${prefix}/source`
      const dest = `${prefix}/dest`
      const content = randomBytes(1000)
      await driver.putContent(source, content)
      await driver.putContent(dest, randomBytes(50_000))
      await driver.move(source, dest)
      sameBytes(t, await driver.getContent(dest), content, 'the destination holds the new content only')
      await rejectsWith(t, () => driver.stat(source), PathNotFoundError, 'the source is gone')
    })

    scenario('move nonexistent', async (t, prefix) => {
      const dest = `${prefix}/dest`
      await driver.putContent(dest, 'kept')
      await rejectsWith(t, () => driver.move(`${prefix}/missing`, dest), PathNotFoundError, 'move of a missing source')
      t.equal((await driver.getContent(dest)).toString(), 'kept', 'the destination is untouched')
      await rejectsWith(t, () => driver.move(`${prefix}/missing`, `${prefix}/new/dest`), PathNotFoundError, 'move of a missing source to a new path')
      await rejectsWith(t, () => driver.stat(`${prefix}/new/dest`), PathNotFoundError, 'creates no destination')
    })

    scenario('move invalid', async (t, prefix) => {
      await driver.putContent(`${prefix}/dir/file`, 'x')
      await rejectsWith(t, () => driver.move(`${prefix}/dir`, `${prefix}/other`), PathNotFoundError, 'move of a directory')
      await rejectsWith(t, () => driver.move('/', `${prefix}/other`), InvalidPathError, 'move of the root')
      await rejectsWith(t, () => driver.move(`${prefix}/dir/file`, '/'), InvalidPathError, 'move onto the root')
      t.equal((await driver.getContent(`${prefix}/dir/file`)).toString(), 'x', 'the file is untouched')
    })

    scenario('delete', async (t, prefix) => {
      await driver.putContent(`${prefix}/file`, 'gone')
      await driver.putContent(`${prefix}/file2`, 'kept')
      await driver.putContent(`${prefix}/filex/inside`, 'kept')
      await driver.delete(`${prefix}/file`)
      await rejectsWith(t, () => driver.getContent(`${prefix}/file`), PathNotFoundError, 'the deleted file is gone')
      t.same(await driver.list(prefix), [`${prefix}/file2`, `${prefix}/filex`], 'names sharing its prefix are untouched')
    })

    scenario('delete folder', async (t, prefix) => {
      const dir = `${prefix}/dir`
      for (const name of ['file', 'sub/file', 'sub/deeper/file']) await driver.putContent(`${dir}/${name}`, name)
      await driver.putContent(`${prefix}/dir2/file`, 'kept')
      await driver.putContent(`${prefix}/dirx`, 'kept')
      await driver.delete(`${dir}/sub`)
      await rejectsWith(t, () => driver.stat(`${dir}/sub/deeper/file`), PathNotFoundError, 'a file deep in the subtree is gone')
      await rejectsWith(t, () => driver.stat(`${dir}/sub`), PathNotFoundError, 'the subtree is gone')
      t.equal((await driver.getContent(`${dir}/file`)).toString(), 'file', 'a sibling of the subtree is untouched')
      await driver.delete(dir)
      await rejectsWith(t, () => driver.stat(`${dir}/file`), PathNotFoundError, 'the files are gone')
      await rejectsWith(t, () => driver.stat(dir), PathNotFoundError, 'the directory is gone')
      t.same(await driver.list(prefix), [`${prefix}/dir2`, `${prefix}/dirx`], 'siblings sharing its prefix are untouched')
    })

    scenario('delete nonexistent', async (t, prefix) => {
      await rejectsWith(t, () => driver.delete(`${prefix}/missing`), PathNotFoundError, 'delete of a missing path')
      await driver.putContent(`${prefix}/file`, 'x')
      await rejectsWith(t, () => driver.delete(`${prefix}/file/below`), PathNotFoundError, 'delete below a file')
      await rejectsWith(t, () => driver.delete('/'), InvalidPathError, 'delete of the root')
      t.equal((await driver.getContent(`${prefix}/file`)).toString(), 'x', 'the file is untouched')
    })

    scenario('concurrent file streams', async (t, prefix) => {
      const contents = Array.from({ length: 16 }, () => Array.from({ length: 8 }, () => randomBytes(16 * 1024 + Math.floor(Math.random() * 64 * 1024))))
      const writers = await Promise.all(contents.map((_, i) => driver.writer(`${prefix}/file-${i}`, false)))
      await Promise.all(writers.map(async (writer, i) => {
        for (const chunk of contents[i]) {
          await writer.write(chunk)
          // Interleave the writers rather than let each run to the end at once.
          await new Promise((resolve) => setImmediate(resolve))
        }
        await writer.commit()
      }))
      for (const [i, chunks] of contents.entries()) {
        sameBytes(t, await driver.getContent(`${prefix}/file-${i}`), Buffer.concat(chunks), `writer ${i} wrote its content`)
      }
    })

    scenario('concurrent reads while content is replaced', async (t, prefix) => {
      const path = `${prefix}/file`
      // Different sizes and bytes: any mix of the two, or a cut, compares unequal to both.
      const versions = [randomBytes(3 * MiB), randomBytes(5 * MiB + 3)]
      const digests = versions.map(sha256)
      await driver.putContent(path, versions[0])
      const progress = { replacing: true }
      const replacer = (async () => {
        for (let i = 1; i <= 20; i++) {
          await driver.putContent(path, versions[i % 2])
          await new Promise((resolve) => setImmediate(resolve))
        }
        progress.replacing = false
      })()
      // Readers open and stream over and over while the replacements land, so that some of
      // them open, size or stream the file just as it is replaced.
      const readers = Array.from({ length: 4 }, async (_, n) => {
        const seen: string[] = []
        while (progress.replacing || seen.length < 4) {
          const data = n % 2 === 0 ? await readAll(await driver.reader(path)) : await driver.getContent(path)
          seen.push(sha256(data))
          // A driver answering from memory never waits: yield so the replacer can run.
          await new Promise((resolve) => setImmediate(resolve))
        }
        return seen
      })
      await replacer
      const seen = (await Promise.all(readers)).flat()
      const torn = seen.filter((digest) => !digests.includes(digest)).length
      t.equal(torn, 0, `each of ${seen.length} reads is one version whole`)
      t.ok(digests.includes(sha256(await driver.getContent(path))), 'the file ends as one version whole')
    })

    scenario('concurrent put content', async (t, prefix) => {
      const path = `${prefix}/file`
      const versions = Array.from({ length: 16 }, (_, i) => randomBytes(256 * 1024 + i))
      await Promise.all(versions.map((version) => driver.putContent(path, version)))
      const final = sha256(await driver.getContent(path))
      t.ok(versions.some((version) => sha256(version) === final), 'the file is one of the contents, whole')
      t.same(await driver.list(prefix), [path], 'no temporary files are listed')
    })

    /** The bare driver with every call it gets counted, behind a base layer of its own. */
    function counted (): { base: StorageBase, calls: string[] } {
      const calls: string[] = []
      const spy = new Proxy(bare, {
        get (target, property) {
          const value: unknown = Reflect.get(target, property, target)
          if (typeof value !== 'function') return value
          return (...args: unknown[]) => {
            calls.push(String(property))
            return (value as (...args: unknown[]) => unknown).apply(target, args)
          }
        }
      })
      return { base: new StorageBase(spy), calls }
    }

    scenario('base layer: invalid paths never reach the driver', async (t, prefix) => {
      const { base, calls } = counted()
      const valid = `${prefix}/valid`
      await driver.putContent(valid, 'kept')
      const events: StorageActionEvent[] = []
      base.observe((event) => events.push(event))
      for (const path of ['', 'a', '/a/../b', '/a//b', '/a/', '/a b', '/a\0b', '/.tmp~0123456789abcdef']) {
        await rejectsWith(t, () => base.getContent(path), InvalidPathError, `getContent ${JSON.stringify(path)}`)
        await rejectsWith(t, () => base.putContent(path, 'x'), InvalidPathError, `putContent ${JSON.stringify(path)}`)
        await rejectsWith(t, () => base.writer(path, false), InvalidPathError, `writer ${JSON.stringify(path)}`)
        await rejectsWith(t, () => base.move(valid, path), InvalidPathError, `move to ${JSON.stringify(path)}`)
        await rejectsWith(t, () => base.move(path, valid), InvalidPathError, `move from ${JSON.stringify(path)}`)
        await rejectsWith(t, () => collect(base.walk(path)), InvalidPathError, `walk ${JSON.stringify(path)}`)
        await rejectsWith(t, () => base.removeTemporaryFiles(path, new Date()), InvalidPathError, `removeTemporaryFiles ${JSON.stringify(path)}`)
      }
      t.same(calls, [], 'the driver was not called')
      t.equal(events.length, 8 * 7, 'each refusal is reported')
      t.ok(events.every((event) => event.error instanceof InvalidPathError && event.driver === bare.name), 'as a failure of the driver')
      t.equal((await driver.getContent(valid)).toString(), 'kept', 'the valid file is untouched')
    })

    scenario('base layer: foreign errors are normalised, driver errors kept', async (t, prefix) => {
      const foreign = new Error('disk on fire')
      const failing = new StorageBase(new Proxy(bare, {
        get (target, property) {
          if (property === 'stat') return async () => { throw foreign }
          if (property === 'list') return () => { throw foreign }
          const value: unknown = Reflect.get(target, property, target)
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value
        }
      }))
      for (const [action, run] of [['stat', () => failing.stat(`${prefix}/x`)], ['list', () => failing.list(`${prefix}/x`)]] as const) {
        try {
          await run()
          t.fail(`${action} resolved`)
        } catch (error) {
          t.ok(error instanceof StorageDriverError, `a rejected ${action} gives a driver error`)
          t.match(error, { driver: bare.name, path: `${prefix}/x`, cause: foreign }, 'naming the driver and the path, with the cause')
          t.notOk(error instanceof PathNotFoundError, 'not a missing path')
        }
      }
      try {
        await driver.getContent(`${prefix}/missing`)
        t.fail('resolved')
      } catch (error) {
        t.ok(error instanceof PathNotFoundError, 'a missing path stays PathNotFoundError')
        t.match(error, { driver: bare.name, path: `${prefix}/missing` })
      }
    })

    scenario('base layer: every action is timed, per driver', async (t, prefix) => {
      const events: StorageActionEvent[] = []
      const stop = driver.observe((event) => events.push(event))
      try {
        await driver.putContent(`${prefix}/a`, 'a')
        await driver.getContent(`${prefix}/a`)
        await readAll(await driver.reader(`${prefix}/a`))
        await driver.stat(`${prefix}/a`)
        await driver.list(prefix)
        await collect(driver.walk(prefix))
        await driver.move(`${prefix}/a`, `${prefix}/b`)
        await driver.redirectURL(`${prefix}/b`)
        const writer = await driver.writer(`${prefix}/c`, false)
        await writer.write(Buffer.from('c'))
        await writer.commit()
        const cancelled = await driver.writer(`${prefix}/d`, false)
        await cancelled.cancel()
        await driver.delete(`${prefix}/b`)
        await driver.stat(`${prefix}/b`).catch(() => {})
        await collect(driver.walk(`${prefix}/missing`)).catch(() => {})
        await cancelled.write(Buffer.from('late')).catch(() => {})
      } finally {
        stop()
      }
      const seen = events.map((event) => `${event.action}${event.error === undefined ? '' : ' (failed)'}`)
      t.same(seen, [
        'put_content', 'get_content', 'reader', 'stat', 'list', 'walk', 'move', 'redirect_url',
        'writer', 'writer_write', 'writer_commit', 'writer', 'writer_cancel', 'delete',
        'stat (failed)', 'walk (failed)', 'writer_write (failed)'
      ], 'each action in order, failures marked')
      t.ok(events.every((event) => event.driver === bare.name && Number.isFinite(event.seconds) && event.seconds >= 0),
        'each with the driver name and its duration')
      t.ok(events[14]?.error instanceof PathNotFoundError, 'a failure carries its error')

      const count = events.length
      await driver.stat(`${prefix}/c`)
      t.equal(events.length, count, 'a removed observer hears no more')
    })

    t.test('leaves nothing behind', async (t) => {
      const top = await driver.list('/')
      t.same(prefixes.filter((prefix) => top.includes(prefix)), [], 'no prefix of any case remains')
    })
  })
}

/**
 * A file past 1 GiB streamed in and out through the base layer, with memory flat both ways. Kept
 * out of the driver suite: it is a slow transfer, run by the integration tier.
 */
export function largeFileCase (
  t: Test,
  name: string,
  make: () => Promise<DriverUnderTest>,
  options: LargeFileOptions = {}
): ReturnType<Test['test']> {
  const sizeMiB = options.sizeMiB ?? 1100
  return t.test(`${name}: write and read a large stream (${sizeMiB} MiB)`, async (t) => {
    const { driver: bare, cleanup } = await make()
    const driver = wrapDriver(bare)
    const prefix = `/large-${randomBytes(8).toString('hex')}`
    t.teardown(async () => {
      await driver.delete(prefix).catch(() => {})
      await driver.close?.()
      await cleanup?.()
    })
    const path = `${prefix}/large`
    // One random MiB with a counter patched in: distinct chunks without generating them all.
    const chunk = randomBytes(MiB)
    const watch = rssWatch()
    const written = createHash('sha256')
    const writer = await driver.writer(path, false)
    for (let i = 0; i < sizeMiB; i++) {
      chunk.writeUInt32BE(i, 0)
      chunk.writeUInt32BE(i, MiB / 2)
      written.update(chunk)
      await writer.write(chunk)
      watch.sample()
    }
    t.equal(writer.size, sizeMiB * MiB, 'the writer counted every byte')
    await writer.commit()
    const writeGrowth = watch.growth()
    t.equal((await driver.stat(path)).size, sizeMiB * MiB, 'stat gives the whole size')

    const readWatch = rssWatch()
    const read = createHash('sha256')
    let size = 0
    for await (const data of await driver.reader(path)) {
      read.update(data as Buffer)
      size += (data as Buffer).length
      readWatch.sample()
    }
    const readGrowth = readWatch.growth()
    t.equal(size, sizeMiB * MiB, 'the reader gave every byte')
    t.equal(read.digest('hex'), written.digest('hex'), 'what was read is what was written')

    const tail = await readAll(await driver.reader(path, { offset: sizeMiB * MiB - 10 }))
    t.same(tail, chunk.subarray(MiB - 10), 'a read at an offset near the end gives the last bytes')

    if (options.holdsDataInMemory === true) {
      t.comment(`memory growth: ${mib(writeGrowth)} while writing, ${mib(readGrowth)} while reading (data held in memory)`)
    } else {
      t.ok(writeGrowth < 100 * MiB, `memory stays flat while writing (grew ${mib(writeGrowth)})`)
      t.ok(readGrowth < 100 * MiB, `memory stays flat while reading (grew ${mib(readGrowth)})`)
    }
  })
}

function mib (bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`
}

/** Peak resident set size above where it stood when the watch started. */
function rssWatch (): { sample: () => void, growth: () => number } {
  const base = process.memoryUsage.rss()
  let peak = base
  return {
    sample () {
      peak = Math.max(peak, process.memoryUsage.rss())
    },
    growth: () => peak - base
  }
}
