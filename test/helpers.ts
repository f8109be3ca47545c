/** Shared test helpers: a fresh registry app per test, on each storage driver. */

import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import registry, { registryFrameworkErrors, type RegistryOptions } from '../plugins/registry.js'
import { UrlBuilder } from '../lib/urls.js'
import { digestOf } from '../lib/digest.js'
import type { StorageOptions } from '../lib/options.js'
import { sharedS3 } from './s3.js'

export interface TestContext {
  teardown: (fn: () => unknown) => void
}

export const urls = new UrlBuilder()

/**
 * The storage configurations every HTTP test runs on. `s3` starts one S3-compatible server per
 * test process (so per test file) and gives each app a bucket of its own.
 */
export const storageKinds = ['inmemory', 'filesystem', 's3'] as const
export type StorageKind = typeof storageKinds[number]

/** A temporary directory, removed when the test ends; `memory` puts it on tmpfs when there is one. */
export async function tempDir (t: TestContext, prefix = 'oci-registry-test-', memory = false): Promise<string> {
  const parent = memory && existsSync('/dev/shm') ? '/dev/shm' : tmpdir()
  const dir = await mkdtemp(join(parent, prefix))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

/** A registry app with the given storage; closed when the test ends. */
export async function build (t: TestContext, kind: StorageKind, options: Omit<RegistryOptions, 'storage'> & { root?: string } = {}): Promise<FastifyInstance> {
  const { root, ...rest } = options
  const storage = kind === 'inmemory'
    ? { driver: 'inmemory' as const }
    : kind === 'filesystem'
      ? { driver: 'filesystem' as const, root: root ?? await tempDir(t) }
      : await s3Storage()
  // As the README asks of hosts: Fastify's own URL errors under /v2/ get the spec's body too.
  const app = Fastify({ logger: false, frameworkErrors: registryFrameworkErrors() })
  await app.register(registry, { ...rest, storage })
  await app.ready()
  t.teardown(async () => { await app.close() })
  return app
}

/** Storage options of a fresh bucket on the test process's S3 server. */
export async function s3Storage (): Promise<Extract<StorageOptions, { driver: 's3' }>> {
  const server = await sharedS3()
  return { driver: 's3', ...server.driverOptions(await server.createBucket()) }
}

export function blobOf (text: string | Buffer): { content: Buffer, digest: string } {
  const content = Buffer.isBuffer(text) ? text : Buffer.from(text)
  return { content, digest: digestOf(content) }
}

/** Pushes a blob with POST + PUT; returns its digest. */
export async function pushBlob (app: FastifyInstance, name: string, content: Buffer): Promise<string> {
  const digest = digestOf(content)
  const response = await app.inject({ method: 'POST', url: urls.blobUpload(name, { digest }), payload: content, headers: { 'content-type': 'application/octet-stream' } })
  if (response.statusCode !== 201) throw new Error(`push of ${digest} failed: ${response.statusCode} ${response.body}`)
  return digest
}

/** The path and query of a Location header (absolute or relative). */
export function locationPath (location: string | string[] | number | undefined): string {
  if (typeof location !== 'string') throw new Error(`no Location header: ${String(location)}`)
  const url = new URL(location, 'http://placeholder')
  return url.pathname + url.search
}

/** The first error code of an error body. */
export function errorCode (body: string): string | undefined {
  return (JSON.parse(body) as { errors?: Array<{ code: string }> }).errors?.[0]?.code
}

export interface PushedImage {
  manifest: Buffer
  digest: string
  config: string
  layers: string[]
}

/** Pushes a config and layers, and builds (but does not push) an image manifest of them. */
export async function prepareImage (app: FastifyInstance, name: string, options: { mediaType?: string, layers?: number, seed?: string, subject?: { mediaType: string, digest: string, size: number }, artifactType?: string, annotations?: Record<string, string> } = {}): Promise<PushedImage> {
  const seed = options.seed ?? 'image'
  const mediaType = options.mediaType ?? 'application/vnd.oci.image.manifest.v1+json'
  const docker = mediaType.startsWith('application/vnd.docker')
  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }))
  const config = await pushBlob(app, name, configBytes)
  const layerBytes = Array.from({ length: options.layers ?? 2 }, (_, i) => Buffer.from(`${seed} layer ${i}`))
  const layers = await Promise.all(layerBytes.map(async (bytes) => await pushBlob(app, name, bytes)))
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType,
    ...(options.artifactType === undefined ? {} : { artifactType: options.artifactType }),
    config: { mediaType: docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json', digest: config, size: configBytes.length },
    layers: layers.map((digest, i) => ({ mediaType: docker ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: layerBytes[i]?.length })),
    ...(options.subject === undefined ? {} : { subject: options.subject }),
    ...(options.annotations === undefined ? {} : { annotations: options.annotations })
  }))
  return { manifest, digest: digestOf(manifest), config, layers }
}

/** PUTs a manifest; returns the response. */
export async function putManifest (app: FastifyInstance, name: string, reference: string, manifest: Buffer, mediaType = 'application/vnd.oci.image.manifest.v1+json', query?: { tag?: readonly string[] }) {
  return await app.inject({ method: 'PUT', url: urls.manifest(name, reference, query), payload: manifest, headers: { 'content-type': mediaType } })
}
