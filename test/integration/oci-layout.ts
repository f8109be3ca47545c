/**
 * OCI image layouts for the integration tier: images built with umoci from real file trees
 * (files, a symlink, a whiteout across layers), an index over several platforms written beside
 * them, a layout with one large uncompressed layer written by hand, and the comparisons the
 * tests make (blobs byte for byte, file trees).
 */

import { createHash, randomFillSync } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { chmod, lstat, mkdir, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { once } from 'node:events'
import { run } from './harness.js'

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const REF_NAME = 'org.opencontainers.image.ref.name'

export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  platform?: { architecture: string, os: string }
  annotations?: Record<string, string>
}

export function blobPath (layout: string, digest: string): string {
  const [algorithm, hex] = digest.split(':') as [string, string]
  return join(layout, 'blobs', algorithm, hex)
}

export async function readBlob (layout: string, digest: string): Promise<Buffer> {
  return await readFile(blobPath(layout, digest))
}

export async function readIndex (layout: string): Promise<{ manifests: Descriptor[] }> {
  return JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] }
}

/** The descriptor a tag names in a layout's index.json. */
export async function refDescriptor (layout: string, tag: string): Promise<Descriptor> {
  const found = (await readIndex(layout)).manifests.find((entry) => entry.annotations?.[REF_NAME] === tag)
  if (found === undefined) throw new Error(`no ${tag} in ${layout}`)
  return found
}

/** Every digest an image or index references, itself included, depth first. */
export async function closure (layout: string, digest: string): Promise<string[]> {
  const content = JSON.parse((await readBlob(layout, digest)).toString('utf8')) as { config?: Descriptor, layers?: Descriptor[], manifests?: Descriptor[] }
  const found = [digest]
  if (content.config !== undefined) found.push(content.config.digest)
  for (const layer of content.layers ?? []) found.push(layer.digest)
  for (const child of content.manifests ?? []) found.push(...await closure(layout, child.digest))
  return [...new Set(found)]
}

async function writeBlob (layout: string, content: Buffer): Promise<Descriptor & { content: Buffer }> {
  const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`
  await writeFile(blobPath(layout, digest), content)
  return { mediaType: '', digest, size: content.length, content }
}

async function addRef (layout: string, descriptor: Descriptor, tag: string): Promise<void> {
  const index = await readIndex(layout)
  index.manifests = index.manifests.filter((entry) => entry.annotations?.[REF_NAME] !== tag)
  index.manifests.push({ ...descriptor, annotations: { [REF_NAME]: tag } })
  await writeFile(join(layout, 'index.json'), JSON.stringify(index))
}

async function umoci (...args: string[]): Promise<void> {
  await run('umoci', args)
}

export interface BuiltImages {
  layout: string
  /** Tag of the two-layer amd64 image. */
  image: string
  /** Tag of the index over amd64 and arm64. */
  multi: string
  /** The file tree the two-layer image unpacks to. */
  expectedTree: string
}

/**
 * Builds, with umoci, a two-layer linux/amd64 image (files, an executable, a symlink, an empty
 * directory; the second layer changes a file, adds one and deletes one, which umoci writes as
 * a whiteout), a one-layer linux/arm64 image, and an OCI index over the two.
 */
export async function buildImages (dir: string): Promise<BuiltImages> {
  const layout = join(dir, 'source')
  const bundle = join(dir, 'bundle')
  await umoci('init', '--layout', layout)
  await umoci('new', '--image', `${layout}:v1`)
  await umoci('unpack', '--image', `${layout}:v1`, bundle)
  const rootfs = join(bundle, 'rootfs')
  await mkdir(join(rootfs, 'etc'), { recursive: true })
  await mkdir(join(rootfs, 'data'), { recursive: true })
  await mkdir(join(rootfs, 'bin'), { recursive: true })
  await mkdir(join(rootfs, 'empty'), { recursive: true })
  await writeFile(join(rootfs, 'etc', 'hello.txt'), 'hello from the first layer\n')
  await writeFile(join(rootfs, 'data', 'remove-me.txt'), 'deleted by the second layer\n')
  await writeFile(join(rootfs, 'data', 'keep.bin'), randomFillSync(Buffer.alloc(64 * 1024)))
  await writeFile(join(rootfs, 'bin', 'tool'), '#!/bin/sh\necho tool\n')
  await chmod(join(rootfs, 'bin', 'tool'), 0o755)
  await symlink('etc/hello.txt', join(rootfs, 'hello-link'))
  await umoci('repack', '--refresh-bundle', '--image', `${layout}:v1`, bundle)
  await writeFile(join(rootfs, 'etc', 'hello.txt'), 'hello from the second layer\n')
  await writeFile(join(rootfs, 'etc', 'added.txt'), 'added by the second layer\n')
  await rm(join(rootfs, 'data', 'remove-me.txt'))
  await umoci('repack', '--image', `${layout}:v1`, bundle)
  await umoci('config', '--image', `${layout}:v1`, '--config.env', 'IMAGE=v1', '--config.cmd', '/bin/tool')

  const armBundle = join(dir, 'bundle-arm')
  await umoci('new', '--image', `${layout}:arm`)
  await umoci('config', '--image', `${layout}:arm`, '--architecture', 'arm64', '--os', 'linux')
  await umoci('unpack', '--image', `${layout}:arm`, armBundle)
  await writeFile(join(armBundle, 'rootfs', 'arch.txt'), 'arm64\n')
  await umoci('repack', '--image', `${layout}:arm`, armBundle)
  await umoci('gc', '--layout', layout)

  const amd = await refDescriptor(layout, 'v1')
  const arm = await refDescriptor(layout, 'arm')
  const index = await writeBlob(layout, Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      { mediaType: OCI_MANIFEST, digest: amd.digest, size: amd.size, platform: { architecture: 'amd64', os: 'linux' } },
      { mediaType: OCI_MANIFEST, digest: arm.digest, size: arm.size, platform: { architecture: 'arm64', os: 'linux' } }
    ]
  }, null, 2)))
  await addRef(layout, { mediaType: OCI_INDEX, digest: index.digest, size: index.size }, 'multi')
  return { layout, image: 'v1', multi: 'multi', expectedTree: rootfs }
}

function tarHeader (name: string, size: number): Buffer {
  const header = Buffer.alloc(512)
  const field = (offset: number, length: number, value: string): void => { header.write(value, offset, length, 'utf8') }
  const octal = (offset: number, length: number, value: number): void => field(offset, length, value.toString(8).padStart(length - 1, '0') + '\0')
  field(0, 100, name)
  octal(100, 8, 0o644)
  octal(108, 8, 0)
  octal(116, 8, 0)
  octal(124, 12, size)
  octal(136, 12, 0)
  field(148, 8, '        ')
  field(156, 1, '0')
  field(257, 6, 'ustar\0')
  field(263, 2, '00')
  let sum = 0
  for (const byte of header) sum += byte
  field(148, 8, sum.toString(8).padStart(6, '0') + '\0 ')
  return header
}

/**
 * A layout with one image whose single layer is an uncompressed tar of one `size`-byte file of
 * random bytes, streamed to disk (never held in memory). Returns the layer's digest.
 */
export async function buildLargeImage (dir: string, size: number): Promise<{ layout: string, tag: string, layer: string }> {
  const layout = join(dir, 'large')
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true })
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [] }))
  const temp = join(layout, 'layer.tmp')
  const out = createWriteStream(temp)
  const hash = createHash('sha256')
  let layerSize = 0
  const write = async (chunk: Buffer): Promise<void> => {
    hash.update(chunk)
    layerSize += chunk.length
    if (!out.write(chunk)) await once(out, 'drain')
  }
  await write(tarHeader('large.bin', size))
  const block = Buffer.alloc(1024 * 1024)
  for (let left = size; left > 0; left -= block.length) {
    await write(Buffer.from(randomFillSync(block).subarray(0, Math.min(block.length, left))))
  }
  await write(Buffer.alloc((512 - (size % 512)) % 512 + 1024))
  out.end()
  await once(out, 'finish')
  const layer = `sha256:${hash.digest('hex')}`
  await run('mv', [temp, blobPath(layout, layer)])
  const config = await writeBlob(layout, Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: [layer] }
  })))
  const manifest = await writeBlob(layout, Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: layerSize }]
  })))
  await addRef(layout, { mediaType: OCI_MANIFEST, digest: manifest.digest, size: manifest.size }, 'large')
  return { layout, tag: 'large', layer }
}

export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink'
  mode: number
  /** sha256 of a file, target of a symlink. */
  content?: string
}

/** A file tree as a map from relative path to type, permission bits and content. */
export async function treeOf (root: string): Promise<Record<string, TreeEntry>> {
  const tree: Record<string, TreeEntry> = {}
  const walk = async (relative: string): Promise<void> => {
    for (const name of (await readdir(join(root, relative))).sort()) {
      const path = relative === '' ? name : `${relative}/${name}`
      const info = await lstat(join(root, path))
      const mode = info.mode & 0o7777
      if (info.isSymbolicLink()) {
        tree[path] = { type: 'symlink', mode, content: await readlink(join(root, path)) }
      } else if (info.isDirectory()) {
        tree[path] = { type: 'dir', mode }
        await walk(path)
      } else {
        tree[path] = { type: 'file', mode, content: createHash('sha256').update(await readFile(join(root, path))).digest('hex') }
      }
    }
  }
  await walk('')
  return tree
}
