/**
 * Registry clients from npm against the example server: oci-registry-client pushes and pulls an
 * image; @snyk/docker-registry-v2-client reads it (support check, catalog, tags, manifest,
 * config, layers) and an image skopeo pushed.
 */

import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { join } from 'node:path'
import { RegistryClientV2 } from 'oci-registry-client'
import * as snyk from '@snyk/docker-registry-v2-client'
import { run, startServer, tempDir } from './harness.js'
import { buildImages, readBlob, refDescriptor } from './oci-layout.js'

function digestOf (bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** What this test reads of oci-registry-client's responses (node-fetch's, whose types it does not ship). */
interface Answer {
  status: number
  headers: { get: (name: string) => string | null }
}

function answer (response: unknown): Answer {
  return response as Answer
}

async function readAll (stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array))
  return Buffer.concat(chunks)
}

t.test('npm registry clients', async (t) => {
  const work = await tempDir(t, 'npm-clients-it-')
  const registry = await startServer(t, ['--root', join(work, 'registry')])
  const layer = randomBytes(50_000)
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/app'] }, rootfs: { type: 'layers', diff_ids: [digestOf(layer)] } }))
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: digestOf(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: digestOf(layer), size: layer.length }]
  }))

  await t.test('oci-registry-client: push an image, then list, fetch and stream it back', async (t) => {
    const client = new RegistryClientV2({ name: `http://${registry.host}/npm/oci-client`, scopes: ['pull', 'push'] })
    t.ok(await client.supportsV2())
    for (const blob of [config, layer]) {
      const response = await client.blobUpload({ digest: digestOf(blob), stream: Readable.from([blob]), contentLength: blob.length })
      t.equal(answer(response).status, 201)
    }
    const pushed = await client.putManifest({ manifestData: manifest, ref: 'v1', mediaType: 'application/vnd.docker.distribution.manifest.v2+json' })
    t.equal(pushed.digest, digestOf(manifest))
    t.same((await client.listTags()).tags, ['v1'])
    const fetched = await client.getManifest({ ref: 'v1' })
    t.same(fetched.manifest, JSON.parse(manifest.toString('utf8')))
    t.equal(answer(fetched.resp).headers.get('docker-content-digest'), digestOf(manifest))
    const head = await client.headBlob({ digest: digestOf(layer) })
    t.equal(answer(head[head.length - 1]).headers.get('content-length'), String(layer.length))
    const { stream } = await client.createBlobReadStream({ digest: digestOf(layer) })
    t.ok((await readAll(stream)).equals(layer), 'the layer streams back byte for byte')
  })

  await t.test('@snyk/docker-registry-v2-client: reads what was pushed', async (t) => {
    const images = await buildImages(work)
    await run('skopeo', ['copy', '--dest-tls-verify=false', '--format', 'v2s2', `oci:${images.layout}:${images.image}`, `docker://${registry.host}/npm/skopeo:v1`])
    const options = { protocol: 'http:' }
    const support = await snyk.checkSupport(registry.host, undefined, undefined, options) as { statusCode?: number, body?: unknown }
    t.equal(support.statusCode, 200, 'the registry supports V2')
    t.same(support.body, {}, 'GET /v2/ answers {}')
    t.same((await snyk.getRepos(registry.host, undefined, undefined, 100, undefined, options)).sort(), ['npm/oci-client', 'npm/skopeo'])
    t.same(await snyk.getTags(registry.host, 'npm/oci-client', undefined, undefined, 1000, undefined, options), ['v1'])

    const read = await snyk.getManifest(registry.host, 'npm/oci-client', 'v1', undefined, undefined, options)
    t.equal(read.config.digest, digestOf(config))
    t.equal(read.indexDigest ?? read.manifestDigest, digestOf(manifest))
    t.same(await snyk.getImageConfig(registry.host, 'npm/oci-client', digestOf(config), undefined, undefined, options), JSON.parse(config.toString('utf8')))
    t.ok((await snyk.getLayer(registry.host, 'npm/oci-client', digestOf(layer), undefined, undefined, options)).equals(layer))

    const local = await refDescriptor(images.layout, images.image)
    const ociManifest = JSON.parse((await readBlob(images.layout, local.digest)).toString('utf8')) as { config: { digest: string }, layers: Array<{ digest: string }> }
    const skopeoImage = await snyk.getManifest(registry.host, 'npm/skopeo', 'v1', undefined, undefined, options)
    t.same(skopeoImage.layers.map((entry) => entry.digest), ociManifest.layers.map((entry) => entry.digest), 'the layers skopeo pushed')
    for (const entry of ociManifest.layers) {
      t.ok((await snyk.getLayer(registry.host, 'npm/skopeo', entry.digest, undefined, undefined, options)).equals(await readBlob(images.layout, entry.digest)), `${entry.digest} byte for byte`)
    }
  })
})
