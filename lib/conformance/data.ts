/**
 * Content the conformance checks push: random blobs, image manifests, indexes and artifacts of
 * every shape the OCI distribution-spec conformance suite exercises (uncompressed layers, a
 * large manifest, nested and empty indexes, artifacts with and without layers, subjects,
 * descriptors with `data`, non-distributable layers, unknown fields, sha512). Random on each
 * run, so that runs against the same registry do not see each other's content.
 */

import { randomBytes } from 'node:crypto'
import { digestOf, type Algorithm } from '../digest.js'
import { MediaTypes } from '../manifest/media-types.js'

export const LayerTypes = {
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  tar: 'application/vnd.oci.image.layer.v1.tar',
  nondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  nondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar'
} as const

/** Artifact types of the example artifacts. */
export const ArtifactTypes = {
  a: 'application/vnd.example.conformance.a+json',
  b: 'application/vnd.example.conformance.b+json'
} as const

export const EMPTY_JSON = Buffer.from('{}')

export interface Blob {
  content: Buffer
  digest: string
}

export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  artifactType?: string
  annotations?: Record<string, string>
  platform?: { architecture: string, os: string }
  urls?: string[]
  data?: string
}

export interface Manifest {
  content: Buffer
  digest: string
  mediaType: string
  descriptor: Descriptor
  /** The subject's digest, when the manifest has one. */
  subject?: string
}

/** A set of content: blobs to push first, manifests in push order (children before parents), tags. */
export interface ContentSet {
  name: string
  blobs: Blob[]
  manifests: Manifest[]
  tags: Record<string, string>
  /** Push manifests with `?tag=` instead of by tag (OCI 1.1). */
  tagParameters?: boolean
}

export function blob (content: Buffer, algorithm: Algorithm = 'sha256'): Blob {
  return { content, digest: digestOf(content, algorithm) }
}

export function randomBlob (size: number, algorithm: Algorithm = 'sha256'): Blob {
  return blob(randomBytes(size), algorithm)
}

function manifest (json: Record<string, unknown>, algorithm: Algorithm = 'sha256', extra: Partial<Descriptor> = {}): Manifest {
  const content = Buffer.from(JSON.stringify(json))
  const mediaType = json.mediaType as string
  const digest = digestOf(content, algorithm)
  const subject = (json.subject as Descriptor | undefined)?.digest
  return { content, digest, mediaType, descriptor: { mediaType, digest, size: content.length, ...extra }, ...(subject === undefined ? {} : { subject }) }
}

export function descriptorOf (item: Blob, mediaType: string, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType, digest: item.digest, size: item.content.length, ...extra }
}

export interface ImageOptions {
  algorithm?: Algorithm
  layers?: number
  layerType?: string
  layerSize?: number
  platform?: { architecture: string, os: string }
  artifactType?: string
  /** Config bytes and media type (default: an image config). */
  config?: { content: Buffer, mediaType: string }
  /** Layers given as they are (instead of random ones). */
  layerBlobs?: Array<{ blob: Blob, mediaType: string }>
  annotations?: Record<string, string>
  subject?: Descriptor
  /** Descriptors of layers that are not pushed (non-distributable). */
  foreignLayers?: Descriptor[]
  /** Put each blob's bytes in its descriptor's `data` field. */
  dataField?: boolean
  /** An unknown field in the manifest and the config, which a registry must keep. */
  customField?: boolean
}

/** An image manifest with its config and layers. */
export function image (options: ImageOptions = {}): { blobs: Blob[], manifest: Manifest } {
  const algorithm = options.algorithm ?? 'sha256'
  const layerType = options.layerType ?? LayerTypes.gzip
  const layers = options.layerBlobs ?? Array.from({ length: options.layers ?? 2 }, () => ({ blob: randomBlob(options.layerSize ?? 512, algorithm), mediaType: layerType }))
  const platform = options.platform ?? { architecture: 'amd64', os: 'linux' }
  const config = options.config === undefined
    ? {
        content: Buffer.from(JSON.stringify({
          ...platform,
          created: new Date(0).toISOString(),
          rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.blob.digest) },
          config: {},
          ...(options.customField === true ? { [`org.example.custom-${randomBytes(4).toString('hex')}`]: 'kept as is' } : {})
        })),
        mediaType: MediaTypes.ociConfig
      }
    : options.config
  const configBlob = blob(config.content, algorithm)
  const withData = (item: Blob, descriptor: Descriptor): Descriptor => options.dataField === true ? { ...descriptor, data: item.content.toString('base64') } : descriptor
  const json: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    ...(options.artifactType === undefined ? {} : { artifactType: options.artifactType }),
    config: withData(configBlob, descriptorOf(configBlob, config.mediaType)),
    layers: [
      ...layers.map((layer) => withData(layer.blob, descriptorOf(layer.blob, layer.mediaType))),
      ...(options.foreignLayers ?? [])
    ],
    ...(options.subject === undefined ? {} : { subject: options.subject }),
    ...(options.annotations === undefined ? {} : { annotations: options.annotations }),
    ...(options.customField === true ? { [`org.example.custom-${randomBytes(4).toString('hex')}`]: { kept: true } } : {})
  }
  const extra: Partial<Descriptor> = {
    ...(options.artifactType === undefined ? {} : { artifactType: options.artifactType }),
    ...(options.platform === undefined ? {} : { platform: options.platform })
  }
  return { blobs: [configBlob, ...layers.map((layer) => layer.blob)], manifest: manifest(json, algorithm, extra) }
}

export interface IndexOptions {
  algorithm?: Algorithm
  artifactType?: string
  annotations?: Record<string, string>
  subject?: Descriptor
  customField?: boolean
}

/** An image index over the given manifests. */
export function index (manifests: Descriptor[], options: IndexOptions = {}): Manifest {
  return manifest({
    schemaVersion: 2,
    mediaType: MediaTypes.ociIndex,
    ...(options.artifactType === undefined ? {} : { artifactType: options.artifactType }),
    manifests,
    ...(options.subject === undefined ? {} : { subject: options.subject }),
    ...(options.annotations === undefined ? {} : { annotations: options.annotations }),
    ...(options.customField === true ? { [`org.example.custom-${randomBytes(4).toString('hex')}`]: 'kept as is' } : {})
  }, options.algorithm ?? 'sha256', options.artifactType === undefined ? {} : { artifactType: options.artifactType })
}

const PLATFORMS = [{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm64', os: 'linux' }]

/** Images for two platforms and an index over them. */
function multiPlatform (options: ImageOptions & IndexOptions = {}): { blobs: Blob[], manifests: Manifest[] } {
  const images = PLATFORMS.map((platform) => image({ ...options, platform, subject: undefined, annotations: undefined, artifactType: options.artifactType }))
  const top = index(images.map((item) => item.manifest.descriptor), {
    ...(options.algorithm === undefined ? {} : { algorithm: options.algorithm }),
    ...(options.artifactType === undefined ? {} : { artifactType: options.artifactType }),
    ...(options.annotations === undefined ? {} : { annotations: options.annotations }),
    ...(options.subject === undefined ? {} : { subject: options.subject }),
    ...(options.customField === undefined ? {} : { customField: options.customField })
  })
  return { blobs: images.flatMap((item) => item.blobs), manifests: [...images.map((item) => item.manifest), top] }
}

function single (name: string, tag: string, item: { blobs: Blob[], manifest: Manifest }): ContentSet {
  return { name, blobs: item.blobs, manifests: [item.manifest], tags: { [tag]: item.manifest.digest } }
}

function last<T> (items: T[]): T {
  return items[items.length - 1] as T
}

const emptyConfig = { content: EMPTY_JSON, mediaType: MediaTypes.ociEmpty }

/**
 * The content sets of the push checks, one per shape of content; each is pushed, pulled back
 * byte for byte, and deleted by the checks.
 */
export function contentSets (): ContentSet[] {
  const sets: ContentSet[] = []
  sets.push(single('image', 'image', image()))
  sets.push(single('image with uncompressed layers', 'image-uncompressed', image({ layerType: LayerTypes.tar })))
  const large: Record<string, string> = {}
  // Close to the 4 MiB manifest limit of common registries, as the OCI suite does.
  for (let i = 0; i < 390; i++) large[`org.example.large-annotation-${i}`] = 'A'.repeat(10000)
  sets.push(single('image with a large manifest', 'large-manifest', image({ annotations: large })))

  const multi = multiPlatform()
  sets.push({ name: 'index', blobs: multi.blobs, manifests: multi.manifests, tags: { index: last(multi.manifests).digest } })

  const inner1 = multiPlatform()
  const inner2 = multiPlatform()
  const outer = index([last(inner1.manifests).descriptor, last(inner2.manifests).descriptor])
  sets.push({ name: 'nested index', blobs: [...inner1.blobs, ...inner2.blobs], manifests: [...inner1.manifests, ...inner2.manifests, outer], tags: { 'index-of-index': outer.digest } })

  const empty = index([])
  sets.push({ name: 'empty index', blobs: [], manifests: [empty], tags: { 'empty-index': empty.digest } })

  sets.push(single('artifact', 'artifact', image({ artifactType: ArtifactTypes.a, config: emptyConfig, layers: 1, layerType: ArtifactTypes.a })))
  const artifactIndex = multiPlatform({ artifactType: ArtifactTypes.a, config: emptyConfig, layers: 1, layerType: ArtifactTypes.a })
  sets.push({ name: 'artifact index', blobs: artifactIndex.blobs, manifests: artifactIndex.manifests, tags: { 'artifact-index': last(artifactIndex.manifests).digest } })
  sets.push(single('artifact without layers', 'artifact-without-layers', image({ artifactType: ArtifactTypes.a, config: emptyConfig, layerBlobs: [{ blob: blob(EMPTY_JSON), mediaType: MediaTypes.ociEmpty }] })))
  sets.push(single('descriptors with data', 'data-field', image({ dataField: true, layerSize: 64 })))

  const foreign = [
    { mediaType: LayerTypes.nondistributableGzip, digest: digestOf(randomBytes(256)), size: 123456 },
    { mediaType: LayerTypes.nondistributable, digest: digestOf(randomBytes(256)), size: 12345 }
  ].map((layer) => ({ ...layer, urls: [`https://store.example.com/blobs/sha256/${layer.digest.slice(7)}`] }))
  sets.push(single('non-distributable layers', 'non-distributable', image({ layers: 1, foreignLayers: foreign })))

  const custom = multiPlatform({ customField: true })
  sets.push({ name: 'unknown fields', blobs: custom.blobs, manifests: custom.manifests, tags: { 'custom-fields': last(custom.manifests).digest } })
  sets.push(single('image without layers', 'no-layers', image({ layers: 0 })))

  const sha512 = multiPlatform({ algorithm: 'sha512' })
  sets.push({ name: 'sha512 content', blobs: sha512.blobs, manifests: sha512.manifests, tags: {} })

  const tagged = multiPlatform()
  sets.push({
    name: 'tags as parameters',
    blobs: tagged.blobs,
    manifests: tagged.manifests,
    tags: { 'tag-param-a': last(tagged.manifests).digest, 'tag-param-b': last(tagged.manifests).digest },
    tagParameters: true
  })

  const subject = image()
  const referrers = [
    image({ subject: subject.manifest.descriptor }),
    image({ artifactType: ArtifactTypes.a, config: emptyConfig, layers: 1, layerType: ArtifactTypes.a, subject: subject.manifest.descriptor, annotations: { 'org.opencontainers.conformance': 'a' } }),
    image({ artifactType: ArtifactTypes.b, config: emptyConfig, layers: 1, layerType: 'application/octet-stream', subject: subject.manifest.descriptor, annotations: { 'org.opencontainers.conformance': 'b' } })
  ]
  sets.push({
    name: 'artifacts with a subject',
    blobs: [...subject.blobs, ...referrers.flatMap((item) => item.blobs)],
    manifests: [subject.manifest, ...referrers.map((item) => item.manifest)],
    tags: { 'subject-image': subject.manifest.digest, 'tagged-artifact': (referrers[1] as { manifest: Manifest }).manifest.digest }
  })
  return sets
}
