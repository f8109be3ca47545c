/**
 * docker (Debian's docker.io: a private dockerd on a unix socket in a temporary directory, vfs
 * storage, no iptables, no bridge) against the example server: push, "Mounted from" on a push
 * to a second repository, pull by tag and by digest, and the pulled files.
 */

import t from 'tap'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { RegistryClient } from '../../lib/client/index.js'
import { run, startDockerd, startServer, tempDir } from './harness.js'

t.test('docker push and pull through a private dockerd', async (t) => {
  const work = await tempDir(t, 'docker-it-')
  const registry = await startServer(t, ['--root', join(work, 'registry')])
  const docker = await startDockerd(t, work)
  const client = new RegistryClient({ url: registry.url })
  const image = `${registry.host}/docker/app`

  const rootfs = join(work, 'rootfs')
  await mkdir(join(rootfs, 'etc'), { recursive: true })
  await writeFile(join(rootfs, 'etc', 'greeting'), 'hello from docker\n')
  await writeFile(join(rootfs, 'data.bin'), Buffer.alloc(100_000, 7))
  await run('tar', ['-C', rootfs, '-cf', join(work, 'rootfs.tar'), '.'])
  await docker('import', join(work, 'rootfs.tar'), `${image}:v1`)

  let digest = ''
  await t.test('push: the digest docker reports is the manifest the registry serves', async (t) => {
    const output = await docker('push', `${image}:v1`)
    t.match(output, /: Pushed/)
    digest = /v1: digest: (sha256:[a-f0-9]{64})/.exec(output)?.[1] ?? ''
    const manifest = await client.getManifest('docker/app', 'v1')
    t.equal(manifest.digest, digest)
    t.equal(manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json')
  })

  await t.test('push to another repository: the layer is mounted, not uploaded', async (t) => {
    await docker('tag', `${image}:v1`, `${registry.host}/docker/other:v1`)
    const output = await docker('push', `${registry.host}/docker/other:v1`)
    t.match(output, /Mounted from docker\/app/)
    t.equal((await client.getManifest('docker/other', 'v1')).digest, digest)
  })

  await t.test('pull by tag and by digest, and the files are the ones pushed', async (t) => {
    await docker('rmi', `${image}:v1`, `${registry.host}/docker/other:v1`)
    const byTag = await docker('pull', `${image}:v1`)
    t.match(byTag, new RegExp(`Digest: ${digest}`))
    await docker('rmi', `${image}:v1`)
    const byDigest = await docker('pull', `${image}@${digest}`)
    t.match(byDigest, new RegExp(`Digest: ${digest}`))
    t.match(await docker('image', 'inspect', '--format', '{{json .RepoDigests}}', `${image}@${digest}`), `${image}@${digest}`)
    await docker('create', '--name', 'pulled', `${image}@${digest}`, '/bin/true')
    await docker('export', '--output', join(work, 'exported.tar'), 'pulled')
    const { stdout } = await run('tar', ['-xOf', join(work, 'exported.tar'), 'etc/greeting'])
    t.equal(stdout, 'hello from docker\n')
  })
})
