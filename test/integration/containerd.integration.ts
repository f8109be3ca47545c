/**
 * containerd (Debian's containerd and its ctr: a private daemon on a unix socket in a temporary
 * directory, the CRI plugin disabled, the native snapshotter) against the example server: pull,
 * push of an image it holds from nowhere else (its one-POST-one-PUT upload path), and a push to a
 * second repository that mounts.
 */

import t from 'tap'
import { join } from 'node:path'
import { RegistryClient } from '../../lib/client/index.js'
import { requestLog, run, startContainerd, startServer, tempDir } from './harness.js'
import { buildImages, buildLargeImage, readBlob, refDescriptor } from './oci-layout.js'

t.test('ctr pull and push through a private containerd', async (t) => {
  const work = await tempDir(t, 'containerd-it-')
  const registry = await startServer(t, ['--root', join(work, 'registry')])
  const ctr = await startContainerd(t, work)
  const client = new RegistryClient({ url: registry.url })

  const images = await buildImages(work)
  const local = await refDescriptor(images.layout, images.image)
  await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${images.layout}:${images.image}`, `docker://${registry.host}/ctr/source:v1`])

  await t.test('pull: containerd stores the manifest and blobs the registry serves', async (t) => {
    await ctr('images', 'pull', '--plain-http', '--snapshotter', 'native', `${registry.host}/ctr/source:v1`)
    t.match(await ctr('images', 'ls'), new RegExp(`${registry.host}/ctr/source:v1\\s+application/vnd.oci.image.manifest.v1\\+json\\s+${local.digest}`))
    const stored = await ctr('content', 'get', local.digest)
    t.equal(stored, (await readBlob(images.layout, local.digest)).toString('utf8'), 'the manifest bytes')
  })

  await t.test('push to another repository: containerd mounts from the one it pulled from', async (t) => {
    const before = requestLog(registry.service).length
    await ctr('images', 'tag', `${registry.host}/ctr/source:v1`, `${registry.host}/ctr/mounted:v1`)
    await ctr('images', 'push', '--plain-http', `${registry.host}/ctr/mounted:v1`)
    const uploads = requestLog(registry.service).slice(before).filter((entry) => entry.url.startsWith('/v2/ctr/mounted/blobs/uploads/'))
    t.ok(uploads.length > 0 && uploads.every((entry) => entry.method === 'POST' && /[?&]mount=/.test(entry.url) && /[?&]from=ctr\/source/.test(entry.url) && entry.status === 201), 'every blob mounted')
    t.equal((await client.getManifest('ctr/mounted', 'v1')).digest, local.digest)
  })

  await t.test('push of an image containerd got from elsewhere: one POST and one PUT per blob', async (t) => {
    // Content containerd never saw on a registry: an image of random bytes, imported from a file.
    const fresh = await buildLargeImage(work, 256 * 1024)
    const archive = join(work, 'image.tar')
    const name = `${registry.host}/ctr/uploaded:v1`
    await run('skopeo', ['copy', `oci:${fresh.layout}:${fresh.tag}`, `docker-archive:${archive}:${name}`])
    await ctr('images', 'import', '--snapshotter', 'native', archive)
    const before = requestLog(registry.service).length
    await ctr('images', 'push', '--plain-http', name)
    const requests = requestLog(registry.service).slice(before).filter((entry) => entry.url.startsWith('/v2/ctr/uploaded/blobs/uploads/'))
    const posts = requests.filter((entry) => entry.method === 'POST')
    const puts = requests.filter((entry) => entry.method === 'PUT')
    t.ok(posts.length >= 2, `${posts.length} uploads`)
    t.equal(puts.length, posts.length, 'each upload closed by one PUT')
    t.same(requests.filter((entry) => entry.method === 'PATCH'), [], 'no PATCH')
    t.ok(posts.every((entry) => entry.status === 202) && puts.every((entry) => entry.status === 201))
    const digest = /ctr\/uploaded:v1\s+\S+\s+(sha256:[a-f0-9]{64})/.exec(await ctr('images', 'ls'))?.[1]
    const served = await client.getManifest('ctr/uploaded', 'v1')
    t.equal(served.digest, digest, 'the registry serves the manifest containerd pushed')
    const manifest = JSON.parse(served.content.toString('utf8')) as { config: { digest: string }, layers: Array<{ digest: string }> }
    for (const blob of [manifest.config, ...manifest.layers]) {
      t.ok((await client.getBlob('ctr/uploaded', blob.digest)).length > 0, `${blob.digest} is served intact`)
    }
  })
})
