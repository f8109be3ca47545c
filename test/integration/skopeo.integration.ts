/**
 * skopeo against the example server: images built with umoci pushed as OCI, as Docker schema 2,
 * as signed schema 1 and with every platform of an index; inspected, listed, pulled back and
 * compared byte for byte and as unpacked file trees; copied across repositories (a mount, no
 * upload); deleted; a 200 MiB layer round trip; re-pushes that change nothing.
 */

import t, { type Test } from 'tap'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { requestLog, run, sha256File, startServer, tempDir, type RunningRegistry } from './harness.js'
import { blobPath, buildImages, buildLargeImage, closure, readBlob, refDescriptor, treeOf, type BuiltImages } from './oci-layout.js'

const LARGE_LAYER = 200 * 1024 * 1024
/** The gzip of an empty tar, which schema 1 lists for history entries without a layer. */
const EMPTY_GZIP_LAYER = 'sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4'

async function skopeo (...args: string[]): Promise<string> {
  return (await run('skopeo', args, { timeoutMs: 300_000 })).stdout
}

interface Inspect {
  Digest: string
  Layers: string[]
  Architecture: string
  RepoTags: string[]
}

async function inspect (ref: string, ...flags: string[]): Promise<Inspect> {
  return JSON.parse(await skopeo('inspect', '--tls-verify=false', ...flags, ref)) as Inspect
}

async function inspectRaw (ref: string): Promise<Buffer> {
  const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', '--raw', ref])
  return Buffer.from(stdout, 'utf8')
}

function sha256 (bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** The blobs of a `dir:` copy: file name (hex) to bytes' digest; the manifest apart. */
async function dirBlobs (dir: string): Promise<Map<string, string>> {
  const found = new Map<string, string>()
  for (const name of await readdir(dir)) {
    if (/^[a-f0-9]{64}$/.test(name)) found.set(`sha256:${name}`, await sha256File(join(dir, name)))
  }
  return found
}

t.test('skopeo and umoci against the example server', async (t) => {
  const work = await tempDir(t)
  const images: BuiltImages = await buildImages(work)
  const registry: RunningRegistry = await startServer(t, ['--root', join(work, 'registry'), '--delete'])
  const ref = (path: string): string => `docker://${registry.host}/${path}`
  const source = `oci:${images.layout}:${images.image}`
  const local = await refDescriptor(images.layout, images.image)
  const localManifest = await readBlob(images.layout, local.digest)
  const localLayers = (JSON.parse(localManifest.toString('utf8')) as { layers: Array<{ digest: string }> }).layers.map((layer) => layer.digest)

  await t.test('copy in as OCI: inspect gives the local digests, --raw the local bytes', async (t) => {
    await skopeo('copy', '--dest-tls-verify=false', source, ref('skopeo/oci:v1'))
    const info = await inspect(ref('skopeo/oci:v1'))
    t.equal(info.Digest, local.digest)
    t.same(info.Layers, localLayers)
    t.equal(info.Architecture, 'amd64')
    t.ok((await inspectRaw(ref('skopeo/oci:v1'))).equals(localManifest), 'the manifest bytes are the ones pushed')
  })

  await t.test('re-pushing is idempotent: nothing is uploaded again, the digest is unchanged', async (t) => {
    const before = requestLog(registry.service).length
    await skopeo('copy', '--dest-tls-verify=false', source, ref('skopeo/oci:v1'))
    const requests = requestLog(registry.service).slice(before)
    const checks = requests.filter((entry) => entry.method === 'HEAD' && entry.url.startsWith('/v2/skopeo/oci/blobs/'))
    t.equal(checks.length, localLayers.length + 1, 'skopeo asks for every blob')
    t.ok(checks.every((entry) => entry.status === 200), 'and the registry has each one')
    t.same(requests.filter((entry) => entry.url.includes('/blobs/uploads/')), [], 'no upload was started')
    t.equal((await inspect(ref('skopeo/oci:v1'))).Digest, local.digest)
  })

  await t.test('copy back out: every blob and the manifest byte for byte', async (t) => {
    const out = join(work, 'out-oci')
    await skopeo('copy', '--src-tls-verify=false', ref('skopeo/oci:v1'), `dir:${out}`)
    t.ok((await readFile(join(out, 'manifest.json'))).equals(localManifest), 'manifest')
    const pulled = await dirBlobs(out)
    const expected = (await closure(images.layout, local.digest)).filter((digest) => digest !== local.digest)
    t.same([...pulled.keys()].sort(), expected.sort(), 'the same blobs')
    for (const [digest, contentDigest] of pulled) {
      t.equal(contentDigest, digest, `${digest} is intact`)
      t.equal(contentDigest, await sha256File(blobPath(images.layout, digest)))
    }
  })

  await t.test('unpack the pulled image: the file tree the layers make, whiteout applied', async (t) => {
    const out = join(work, 'pulled-layout')
    await skopeo('copy', '--src-tls-verify=false', ref('skopeo/oci:v1'), `oci:${out}:pulled`)
    const bundle = join(work, 'pulled-bundle')
    await run('umoci', ['unpack', '--image', `${out}:pulled`, bundle])
    const pulled = await treeOf(join(bundle, 'rootfs'))
    t.same(pulled, await treeOf(images.expectedTree))
    t.notOk('data/remove-me.txt' in pulled, 'the whiteout removed the file')
    t.match(pulled['hello-link'], { type: 'symlink', content: 'etc/hello.txt' })
    t.equal(pulled['bin/tool']?.mode, 0o755)
    t.ok('data/keep.bin' in pulled && 'etc/added.txt' in pulled && 'empty' in pulled)
  })

  await t.test('copy in as Docker schema 2 (--format v2s2) and back out', async (t) => {
    await skopeo('copy', '--dest-tls-verify=false', '--format', 'v2s2', source, ref('skopeo/docker:v1'))
    const raw = await inspectRaw(ref('skopeo/docker:v1'))
    const manifest = JSON.parse(raw.toString('utf8')) as { mediaType: string, config: { digest: string }, layers: Array<{ digest: string, mediaType: string }> }
    t.equal(manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json')
    t.same(manifest.layers.map((layer) => layer.digest), localLayers, 'the layers are the same blobs')
    t.equal(manifest.layers[0]?.mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip')
    t.equal((await inspect(ref('skopeo/docker:v1'))).Digest, sha256(raw), 'inspect reports the digest of the bytes')
    const served = await fetch(`${registry.url}/v2/skopeo/docker/manifests/v1`, { headers: { accept: manifest.mediaType } })
    t.equal(served.headers.get('content-type'), manifest.mediaType)
    t.equal(served.headers.get('docker-content-digest'), sha256(raw))
    t.ok(Buffer.from(await served.arrayBuffer()).equals(raw))
    const out = join(work, 'out-docker')
    await skopeo('copy', '--src-tls-verify=false', ref('skopeo/docker:v1'), `dir:${out}`)
    t.ok((await readFile(join(out, 'manifest.json'))).equals(raw), 'manifest')
    for (const [digest, contentDigest] of await dirBlobs(out)) t.equal(contentDigest, digest, `${digest} is intact`)
    t.ok((await readFile(join(out, manifest.config.digest.slice(7)))).equals(await readBlob(images.layout, manifest.config.digest)), 'the config is the local one')
  })

  await t.test('copy in as signed schema 1 (--format v2s1): the registry verifies skopeo\'s signature', async (t) => {
    await skopeo('copy', '--dest-tls-verify=false', '--format', 'v2s1', source, ref('skopeo/schema1:v1'))
    const served = await fetch(`${registry.url}/v2/skopeo/schema1/manifests/v1`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v1+prettyjws' } })
    t.equal(served.status, 200)
    t.equal(served.headers.get('content-type'), 'application/vnd.docker.distribution.manifest.v1+prettyjws')
    const body = JSON.parse(await served.text()) as { schemaVersion: number, name: string, tag: string, signatures: unknown[], fsLayers: Array<{ blobSum: string }> }
    t.equal(body.schemaVersion, 1)
    t.equal(body.name, 'skopeo/schema1')
    t.equal(body.tag, 'v1')
    t.equal(body.signatures.length, 1, 'signed')
    // Schema 1 gives every history entry a layer: the config-only ones get the empty tar.
    const layers = body.fsLayers.map((layer) => layer.blobSum).filter((digest) => digest !== EMPTY_GZIP_LAYER).reverse()
    t.same(layers, localLayers, 'fsLayers list the layers, base last')
    const out = join(work, 'out-schema1')
    await skopeo('copy', '--src-tls-verify=false', ref('skopeo/schema1:v1'), `dir:${out}`)
    for (const [digest, contentDigest] of await dirBlobs(out)) t.equal(contentDigest, digest, `${digest} is intact`)

    // The same signed bytes with one signed value changed: the signature no longer verifies.
    const signed = await readFile(join(out, 'manifest.json'), 'utf8')
    t.match(signed, /"architecture": ?"amd64"/)
    const tampered = signed.replace(/"architecture": ?"amd64"/, (found) => found.replace('amd64', 'arm64'))
    const refused = await fetch(`${registry.url}/v2/skopeo/schema1/manifests/v1`, { method: 'PUT', headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' }, body: tampered })
    t.equal(refused.status, 400, 'a tampered manifest is refused')
    t.equal(((await refused.json()) as { errors: Array<{ code: string }> }).errors[0]?.code, 'MANIFEST_UNVERIFIED')
    const again = await fetch(`${registry.url}/v2/skopeo/schema1/manifests/v1`, { method: 'PUT', headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' }, body: signed })
    t.equal(again.status, 201, 'the bytes skopeo signed are accepted again')
  })

  await t.test('copy an index with --all: every platform, byte for byte', async (t) => {
    const index = await refDescriptor(images.layout, images.multi)
    await skopeo('copy', '--all', '--dest-tls-verify=false', `oci:${images.layout}:${images.multi}`, ref('skopeo/multi:latest'))
    t.ok((await inspectRaw(ref('skopeo/multi:latest'))).equals(await readBlob(images.layout, index.digest)), 'the index bytes')
    for (const [arch, tag] of [['amd64', 'v1'], ['arm64', 'arm']] as const) {
      const info = await inspect(ref('skopeo/multi:latest'), '--override-arch', arch)
      t.equal(info.Digest, index.digest, 'inspect reports the index digest')
      t.equal(info.Architecture, arch, `${arch} resolves to its image`)
      const manifest = JSON.parse((await readBlob(images.layout, (await refDescriptor(images.layout, tag)).digest)).toString('utf8')) as { layers: Array<{ digest: string }> }
      t.same(info.Layers, manifest.layers.map((layer) => layer.digest))
    }
    const out = join(work, 'out-multi')
    await skopeo('copy', '--all', '--src-tls-verify=false', ref('skopeo/multi:latest'), `oci:${out}:multi`)
    t.equal((await refDescriptor(out, 'multi')).digest, index.digest)
    const digests = await closure(images.layout, index.digest)
    t.equal(digests.length, 1 + 2 * 2 + localLayers.length + 1, 'index, 2 manifests, 2 configs, every layer')
    for (const digest of digests) {
      t.equal(await sha256File(blobPath(out, digest)), digest, `${digest} pulled intact`)
    }
  })

  await t.test('list-tags lists every tag', async (t) => {
    await skopeo('copy', '--dest-tls-verify=false', source, ref('skopeo/oci:v1.1'))
    await skopeo('copy', '--dest-tls-verify=false', source, ref('skopeo/oci:latest'))
    const listed = JSON.parse(await skopeo('list-tags', '--tls-verify=false', ref('skopeo/oci'))) as { Tags: string[] }
    t.same(listed.Tags, ['latest', 'v1', 'v1.1'])
  })

  await t.test('copy between repositories: the second push mounts every layer', async (t) => {
    const before = requestLog(registry.service).length
    await skopeo('copy', '--src-tls-verify=false', '--dest-tls-verify=false', ref('skopeo/oci:v1'), ref('skopeo/copy:v1'))
    const uploads = requestLog(registry.service).slice(before).filter((entry) => entry.url.startsWith('/v2/skopeo/copy/blobs/uploads/'))
    const mounts = uploads.filter((entry) => entry.method === 'POST' && entry.url.includes('mount='))
    t.same(mounts.map((entry) => decodeURIComponent(/mount=([^&]+)/.exec(entry.url)?.[1] ?? '')).sort(), [...localLayers].sort(), 'a mount per layer')
    for (const entry of mounts) {
      t.match(entry.url, /[?&]from=skopeo%2Foci/)
      t.equal(entry.status, 201, 'mounted')
    }
    // skopeo sends the config (it holds it in memory) as an upload rather than a mount.
    const config = (JSON.parse(localManifest.toString('utf8')) as { config: { digest: string } }).config.digest
    const completed = uploads.filter((entry) => entry.method === 'PUT').map((entry) => decodeURIComponent(/digest=([^&]+)/.exec(entry.url)?.[1] ?? ''))
    t.same(completed, [config], 'the only upload is the config')
    t.equal((await inspect(ref('skopeo/copy:v1'))).Digest, local.digest)
  })

  await t.test('skopeo delete, then inspect fails with manifest unknown', async (t) => {
    await skopeo('delete', '--tls-verify=false', ref('skopeo/copy:v1'))
    const result = await run('skopeo', ['inspect', '--tls-verify=false', ref('skopeo/copy:v1')], { allowFailure: true })
    t.not(result.code, 0)
    t.match(result.stderr, /manifest unknown/)
    t.equal((await inspect(ref('skopeo/oci:v1'))).Digest, local.digest, 'the other repository keeps it')
  })

  await t.test('a 200 MiB layer round trip, with the server\'s memory flat', async (t: Test) => {
    const large = await buildLargeImage(work, LARGE_LAYER)
    const memory = async (field: 'VmRSS' | 'VmHWM'): Promise<number> => {
      const status = await readFile(`/proc/${registry.service.child.pid as number}/status`, 'utf8')
      return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1]) * 1024
    }
    const before = await memory('VmRSS')
    // Without --preserve-digests skopeo would gzip the uncompressed layer on its way out.
    await skopeo('copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${large.layout}:${large.tag}`, ref('skopeo/large:v1'))
    const out = join(work, 'out-large')
    await skopeo('copy', '--src-tls-verify=false', ref('skopeo/large:v1'), `dir:${out}`)
    const pulled = join(out, large.layer.slice('sha256:'.length))
    t.ok((await stat(pulled)).size > LARGE_LAYER, 'the whole layer came back')
    t.equal(await sha256File(pulled), large.layer, 'byte for byte')
    const growth = await memory('VmHWM') - before
    t.ok(growth < LARGE_LAYER / 2, `the server's peak memory grew by ${Math.round(growth / 1024 / 1024)} MiB, far less than the layer`)
  })
})
