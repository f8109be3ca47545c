// An S3-compatible server for the tests: s3rver on 127.0.0.1, its data in a directory, so that a
// restart on the same directory keeps the bucket. Usage: node test/s3-server.mjs <dir> [port]
// Prints one JSON line `{"port": N}` once listening; stops on SIGTERM.
//
// s3rver writes an object in place, so a reader racing an overwrite can see a mix of the two
// versions; S3 replaces objects atomically. Objects are written aside and renamed over here, and
// read through an open descriptor sized with fstat, so each GET serves one version whole; copies
// too. A delete also removes the directories it leaves empty, racing writes into them (a 500):
// S3 has no directories, and here they are left. Its listing misses common prefixes more than
// one level below the prefix (`a/` for a key `a/b/c` listed from the top): the listing here
// walks every key under the prefix instead.
//
// The three patches make s3rver behave as S3 does; none is needed by a real implementation: the
// integration tier runs the same driver suite, HTTP suite and replica checks on OpenStack Swift's
// s3api, unpatched (test/swift.ts). They stay for the fast tier, where s3rver starts in a blink.

import { randomBytes, createHash } from 'node:crypto'
import { copyFile, mkdir, open, readdir, rename, rm, unlink } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Transform } from 'node:stream'

const require = createRequire(import.meta.url)

// s3rver enciphers ListObjectsV2 continuation tokens with single DES, which the OpenSSL 3 of
// Node 18 and later refuses (every second page is a 500). Triple DES with one key thrice is
// the same cipher and still available.
const crypto = require('node:crypto')
for (const name of ['createCipheriv', 'createDecipheriv']) {
  const original = crypto[name]
  crypto[name] = function (algorithm, key, iv, options) {
    if (algorithm === 'des') return original.call(crypto, 'des-ede3-cbc', Buffer.concat([key, key, key]), iv, options)
    return original.call(crypto, algorithm, key, iv, options)
  }
}
const S3rver = require('s3rver')
const FilesystemStore = require('s3rver/lib/stores/filesystem')
const S3Object = require('s3rver/lib/models/object')

FilesystemStore.prototype.putObject = async function putObject (object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object')
  await mkdir(dirname(objectPath), { recursive: true })
  // Not ending in s3rver's object suffix: listings never see the temporary file.
  const temp = `${objectPath}.${randomBytes(6).toString('hex')}.tmp`
  const md5 = createHash('md5')
  let size = 0
  const handle = await open(temp, 'w')
  try {
    const content = Buffer.isBuffer(object.content) ? [object.content] : object.content
    await pipeline(content, new Transform({
      transform (chunk, _encoding, callback) {
        md5.update(chunk)
        size += chunk.length
        callback(null, chunk)
      }
    }), handle.createWriteStream())
  } catch (error) {
    await rm(temp, { force: true })
    throw error
  } finally {
    await handle.close().catch(() => {})
  }
  const digest = md5.digest('hex')
  await this.putMetadata(object.bucket, object.key, object.metadata, digest)
  await rename(temp, objectPath)
  return { size, md5: digest }
}

/** Copies a file over another at once: to a temporary file beside it, then renamed over. */
async function replaceWithCopy (source, dest) {
  await mkdir(dirname(dest), { recursive: true })
  const temp = `${dest}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await copyFile(source, temp)
    await rename(temp, dest)
  } catch (error) {
    await rm(temp, { force: true })
    throw error
  }
}

FilesystemStore.prototype.copyObject = async function copyObject (srcBucket, srcKey, destBucket, destKey, replacementMetadata) {
  const resource = (bucket, key, name) => this.getResourcePath(bucket, key, name)
  if (resource(srcBucket, srcKey, 'object') !== resource(destBucket, destKey, 'object')) {
    if (replacementMetadata === undefined) {
      for (const name of ['metadata.json', 'object.md5']) {
        await replaceWithCopy(resource(srcBucket, srcKey, name), resource(destBucket, destKey, name)).catch((error) => {
          if (error.code !== 'ENOENT') throw error
        })
      }
    }
    await replaceWithCopy(resource(srcBucket, srcKey, 'object'), resource(destBucket, destKey, 'object'))
  }
  if (replacementMetadata !== undefined) await this.putMetadata(destBucket, destKey, replacementMetadata)
  return this.getMetadata(destBucket, destKey)
}

FilesystemStore.prototype.deleteObject = async function deleteObject (bucket, key) {
  for (const name of ['object', 'object.md5', 'metadata.json']) {
    await unlink(this.getResourcePath(bucket, key, name)).catch((error) => {
      if (error.code !== 'ENOENT') throw error
    })
  }
}

FilesystemStore.prototype.getObject = async function getObject (bucket, key, options) {
  let handle
  try {
    handle = await open(this.getResourcePath(bucket, key, 'object'), 'r')
  } catch (error) {
    if (error.code === 'ENOENT') return null
    throw error
  }
  try {
    const stat = await handle.stat()
    const metadata = await this.getMetadata(bucket, key).catch((error) => {
      if (error.code === 'ENOENT') return {}
      throw error
    })
    metadata['content-length'] = stat.size
    metadata['last-modified'] = stat.mtime.toUTCString()
    const lastByte = Math.max(0, stat.size - 1)
    const range = {
      start: options?.start ?? 0,
      end: Math.min(options?.end ?? Infinity, lastByte)
    }
    const ranged = options !== undefined && (options.start !== undefined || options.end !== undefined)
    if (range.start < 0 || range.end < range.start) {
      await handle.close()
      const object = new S3Object(bucket, key, null, metadata)
      if (ranged) object.range = range
      return object
    }
    const content = handle.createReadStream({ start: range.start, end: range.end, autoClose: true })
    const object = new S3Object(bucket, key, content, metadata)
    if (ranged) object.range = range
    return object
  } catch (error) {
    await handle.close().catch(() => {})
    throw error
  }
}

const OBJECT_SUFFIX = '._S3rver_object'

/** Keys of every object below `prefix`, sorted as S3 sorts them. */
async function keysWithPrefix (bucketPath, prefix) {
  const keys = []
  async function visit (dir, relative) {
    let entries
    try {
      entries = await readdir(dir, { withFileTypes: true })
    } catch (error) {
      if (error.code === 'ENOENT') return
      throw error
    }
    for (const entry of entries) {
      const name = `${relative}${entry.name}`
      if (entry.isDirectory()) {
        const below = `${name}/`
        if (prefix.startsWith(below) || below.startsWith(prefix)) await visit(`${dir}/${entry.name}`, below)
      } else if (entry.name.endsWith(OBJECT_SUFFIX)) {
        const key = name.slice(0, -OBJECT_SUFFIX.length)
        if (key.startsWith(prefix)) keys.push(key)
      }
    }
  }
  await visit(bucketPath, '')
  return keys.sort()
}

FilesystemStore.prototype.listObjects = async function listObjects (bucket, options) {
  const { delimiter = '', startAfter = '', prefix = '', maxKeys = Infinity } = options
  const commonPrefixes = new Set()
  const found = []
  let isTruncated = false
  for (const key of await keysWithPrefix(this.getBucketPath(bucket), prefix)) {
    if (key <= startAfter) continue
    const cut = delimiter === '' ? -1 : key.indexOf(delimiter, prefix.length)
    if (cut !== -1) {
      commonPrefixes.add(key.slice(0, cut + delimiter.length))
      continue
    }
    if (found.length === maxKeys) {
      isTruncated = true
      break
    }
    found.push(key)
  }
  const objects = []
  for (const key of found) {
    const metadata = await this.getMetadata(bucket, key).catch((error) => {
      if (error.code === 'ENOENT') return undefined
      throw error
    })
    if (metadata !== undefined) objects.push(new S3Object(bucket, key, null, metadata))
  }
  return { objects, commonPrefixes: [...commonPrefixes].sort(), isTruncated }
}

const [directory, port = '0'] = process.argv.slice(2)
if (directory === undefined) {
  process.stderr.write('usage: s3-server.mjs <dir> [port]\n')
  process.exit(2)
}

const server = new S3rver({ address: '127.0.0.1', port: Number(port), directory, silent: true })
const address = await server.run()
process.stdout.write(`${JSON.stringify({ port: address.port })}\n`)
process.on('SIGTERM', () => process.exit(0))
