/**
 * Our `gc` against CNCF distribution 2.8.2's `registry garbage-collect` on the same tree:
 * images are pushed to distribution (shared layers, an index, untagged manifests, deleted
 * manifests, an orphan blob), the tree is copied, each collector runs on its own copy, and the
 * sets of removed blobs must be equal, with and without --delete-untagged. The one expected
 * difference is distribution's #3178: with --delete-untagged it removes the layers of the
 * children of a tagged index, which we keep.
 */

import t from 'tap'
import { cp, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { RegistryClient } from '../../lib/client/index.js'
import { digestOf } from '../../lib/digest.js'
import { main as gc } from '../../examples/gc.js'
import { DISTRIBUTION, run, startDistribution, tempDir } from './harness.js'

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'

interface Image { digest: string, bytes: Buffer, config: string, layers: string[] }

async function pushImage (client: RegistryClient, name: string, reference: string | undefined, seed: string, sharedLayer?: Buffer): Promise<Image> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }))
  const layers = [Buffer.from(`${seed} layer 0`), Buffer.from(`${seed} layer 1`), ...(sharedLayer === undefined ? [] : [sharedLayer])]
  await client.pushBlob(name, config)
  for (const layer of layers) await client.pushBlob(name, layer)
  const bytes = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
    layers: layers.map((layer) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf(layer), size: layer.length }))
  }))
  const digest = digestOf(bytes)
  await client.putManifest(name, reference ?? digest, bytes, OCI_MANIFEST)
  return { digest, bytes, config: digestOf(config), layers: layers.map((layer) => digestOf(layer)) }
}

async function pushIndex (client: RegistryClient, name: string, tag: string, children: Image[]): Promise<string> {
  const bytes = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: children.map((child, i) => ({ mediaType: OCI_MANIFEST, digest: child.digest, size: child.bytes.length, platform: { os: 'linux', architecture: i === 0 ? 'amd64' : 'arm64' } }))
  }))
  await client.putManifest(name, tag, bytes, OCI_INDEX)
  return digestOf(bytes)
}

/** Every blob digest of a tree. */
async function blobsOf (root: string): Promise<Set<string>> {
  const found = new Set<string>()
  const base = join(root, 'docker/registry/v2/blobs')
  for (const algorithm of await readdir(base)) {
    for (const prefix of await readdir(join(base, algorithm))) {
      for (const hex of await readdir(join(base, algorithm, prefix))) found.add(`${algorithm}:${hex}`)
    }
  }
  return found
}

const minus = (a: Set<string>, b: Set<string>): string[] => [...a].filter((digest) => !b.has(digest)).sort()

t.test('the blobs our gc removes are the ones distribution\'s garbage-collect removes', async (t) => {
  const work = await tempDir(t, 'gc-compare-')
  const source = join(work, 'source')
  const distribution = await startDistribution(t, { root: source, delete: true })
  const client = new RegistryClient({ url: distribution.url })
  const shared = Buffer.from('a layer two images share')

  await pushImage(client, 'app/web', 'v1', 'web-v1', shared)
  const replaced = await pushImage(client, 'app/web', 'v2', 'web-v2-old', shared)
  // v2 moves on: the old v2 stays as an untagged revision.
  await pushImage(client, 'app/web', 'v2', 'web-v2', shared)
  const deleted = await pushImage(client, 'app/web', 'gone', 'web-gone', shared)
  await client.deleteManifest('app/web', deleted.digest)
  const untagged = await pushImage(client, 'app/api', undefined, 'api-untagged')
  await pushImage(client, 'app/api', 'latest', 'api-latest', shared)
  const amd64 = await pushImage(client, 'app/multi', undefined, 'multi-amd64')
  const arm64 = await pushImage(client, 'app/multi', undefined, 'multi-arm64')
  await pushIndex(client, 'app/multi', 'latest', [amd64, arm64])
  const orphan = await client.pushBlob('app/api', Buffer.from('uploaded, never named by a manifest'))
  await distribution.stop()

  const before = await blobsOf(source)
  for (const deleteUntagged of [false, true]) {
    const label = deleteUntagged ? 'with --delete-untagged' : 'without --delete-untagged'
    const theirsRoot = join(work, `theirs-${String(deleteUntagged)}`)
    const oursRoot = join(work, `ours-${String(deleteUntagged)}`)
    await cp(source, theirsRoot, { recursive: true })
    await cp(source, oursRoot, { recursive: true })

    const config = join(work, `config-${String(deleteUntagged)}.yml`)
    await writeFile(config, ['version: 0.1', 'storage:', '  filesystem:', `    rootdirectory: ${JSON.stringify(theirsRoot)}`, ''].join('\n'))
    const env = { ...process.env }
    for (const name of Object.keys(env)) if (name.startsWith('REGISTRY_')) delete env[name]
    await run(DISTRIBUTION, ['garbage-collect', ...(deleteUntagged ? ['--delete-untagged'] : []), config], { env })
    const theirs = minus(before, await blobsOf(theirsRoot))

    const out: string[] = []
    const err: string[] = []
    const status = await gc(['--storage', 'filesystem', '--root', oursRoot, ...(deleteUntagged ? ['--delete-untagged'] : [])], {}, { stdout: (text) => { out.push(text) }, stderr: (text) => { err.push(text) } })
    t.equal(status, 0, err.join(''))
    const ours = minus(before, await blobsOf(oursRoot))
    t.same(out.join('').split('\n').filter((line) => line.startsWith('sha256:')).sort(), ours, `${label}: what gc prints is what it removed`)

    if (!deleteUntagged) {
      t.same(ours, theirs, `${label}: the same blobs removed`)
      t.same(ours, [orphan, deleted.digest, deleted.config, ...deleted.layers.filter((layer) => layer !== digestOf(shared))].sort())
    } else {
      // distribution's #3178: the children of the tagged index lose their layers and configs there.
      const childBlobs = [amd64.config, ...amd64.layers, arm64.config, ...arm64.layers]
      t.same(ours, theirs.filter((digest) => !childBlobs.includes(digest)), `${label}: the same blobs removed but the children of the tagged index`)
      t.same(theirs.filter((digest) => childBlobs.includes(digest)).sort(), [...childBlobs].sort(), 'distribution removes every blob of the children (its #3178)')
      for (const digest of [replaced.digest, replaced.config, untagged.digest, untagged.config, ...untagged.layers]) {
        t.ok(ours.includes(digest) && theirs.includes(digest), 'untagged manifests go on both sides')
      }
    }
  }
})
