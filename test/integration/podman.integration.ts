/**
 * podman and buildah (Debian's, rootful, vfs storage in a temporary directory, no systemd)
 * against the example server: an image built with buildah from scratch is pushed, inspected
 * through the registry (config and files), pulled with podman; podman pushes and pulls its own.
 */

import t from 'tap'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { RegistryClient } from '../../lib/client/index.js'
import { requestLog, run, startServer, tempDir } from './harness.js'

t.test('podman and buildah push and pull', async (t) => {
  const work = await tempDir(t, 'podman-it-')
  const registry = await startServer(t, ['--root', join(work, 'registry')])
  const storage = ['--root', join(work, 'storage'), '--runroot', join(work, 'run'), '--storage-driver', 'vfs']
  await writeFile(join(work, 'storage.conf'), `[storage]\ndriver = "vfs"\nrunroot = ${JSON.stringify(join(work, 'run'))}\ngraphroot = ${JSON.stringify(join(work, 'storage'))}\n`)
  const env = { ...process.env, CONTAINERS_STORAGE_CONF: join(work, 'storage.conf'), TMPDIR: work }
  const podman = async (...args: string[]): Promise<string> =>
    (await run('podman', [...storage, '--events-backend', 'file', '--cgroup-manager', 'cgroupfs', ...args], { env })).stdout
  const buildah = async (...args: string[]): Promise<string> => (await run('buildah', [...storage, ...args], { env })).stdout
  const client = new RegistryClient({ url: registry.url })

  await t.test('buildah: build from scratch, push; the registry serves its config and files', async (t) => {
    await writeFile(join(work, 'hello.txt'), 'hello from buildah\n')
    const container = (await buildah('from', 'scratch')).trim()
    await buildah('copy', container, join(work, 'hello.txt'), '/hello.txt')
    await buildah('config', '--cmd', '/hello', '--label', 'org.example.built-by=buildah', container)
    const image = `${registry.host}/buildah/app:v1`
    await buildah('commit', container, image)
    const digestFile = join(work, 'buildah.digest')
    await buildah('push', '--tls-verify=false', '--digestfile', digestFile, image, `docker://${image}`)
    const digest = (await readFile(digestFile, 'utf8')).trim()
    const manifest = await client.getManifest('buildah/app', 'v1')
    t.equal(manifest.digest, digest, 'the digest buildah reports is the one served')
    const body = JSON.parse(manifest.content.toString('utf8')) as { config: { digest: string }, layers: Array<{ digest: string }> }
    const config = JSON.parse((await client.getBlob('buildah/app', body.config.digest)).toString('utf8')) as { config: { Cmd: string[], Labels: Record<string, string> } }
    t.same(config.config.Cmd, ['/hello'])
    t.equal(config.config.Labels['org.example.built-by'], 'buildah')
    t.equal(body.layers.length, 1)
    await mkdir(join(work, 'layer'))
    await writeFile(join(work, 'layer', 'layer.tar.gz'), await client.getBlob('buildah/app', (body.layers[0] as { digest: string }).digest))
    t.equal((await run('tar', ['-xzOf', join(work, 'layer', 'layer.tar.gz'), 'hello.txt'])).stdout, 'hello from buildah\n')
  })

  await t.test('podman: pull what buildah pushed, by tag and by digest', async (t) => {
    await podman('rmi', '--all', '--force')
    const digest = (await client.getManifest('buildah/app', 'v1')).digest
    await podman('pull', '--tls-verify=false', `${registry.host}/buildah/app:v1`)
    await podman('pull', '--tls-verify=false', `${registry.host}/buildah/app@${digest}`)
    const inspected = JSON.parse(await podman('image', 'inspect', `${registry.host}/buildah/app:v1`)) as Array<{ Digest: string, Labels: Record<string, string> }>
    t.equal(inspected[0]?.Digest, digest)
    t.equal(inspected[0]?.Labels['org.example.built-by'], 'buildah')
  })

  await t.test('podman: push a copy to another repository (mounted), push its own image, pull it back', async (t) => {
    await podman('tag', `${registry.host}/buildah/app:v1`, `${registry.host}/podman/copy:v1`)
    const before = requestLog(registry.service).length
    await podman('push', '--tls-verify=false', `${registry.host}/podman/copy:v1`)
    const mounts = requestLog(registry.service).slice(before).filter((entry) => entry.method === 'POST' && entry.url.startsWith('/v2/podman/copy/blobs/uploads/?') && entry.url.includes('mount='))
    t.equal(mounts.length, 1, 'the layer is mounted')
    t.ok(mounts.every((entry) => entry.status === 201 && entry.url.includes('from=buildah%2Fapp')))
    t.equal((await client.getManifest('podman/copy', 'v1')).digest, (await client.getManifest('buildah/app', 'v1')).digest)

    await mkdir(join(work, 'rootfs'))
    await writeFile(join(work, 'rootfs', 'greeting'), 'hello from podman\n')
    await run('tar', ['-C', join(work, 'rootfs'), '-cf', join(work, 'rootfs.tar'), '.'])
    const image = `${registry.host}/podman/app:v1`
    await podman('import', join(work, 'rootfs.tar'), image)
    const digestFile = join(work, 'podman.digest')
    await podman('push', '--tls-verify=false', '--digestfile', digestFile, image)
    const digest = (await readFile(digestFile, 'utf8')).trim()
    t.equal((await client.getManifest('podman/app', 'v1')).digest, digest)
    await podman('rmi', image)
    await podman('pull', '--tls-verify=false', image)
    const inspected = JSON.parse(await podman('image', 'inspect', image)) as Array<{ Digest: string }>
    t.equal(inspected[0]?.Digest, digest)
    t.same(await client.allTags('podman/app'), ['v1'])
  })
})
