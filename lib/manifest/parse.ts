/**
 * Parsing and validation of manifests before anything is stored: the body is JSON of a known
 * type, the declared Content-Type and the body's `mediaType` agree, every descriptor is well
 * formed. What the manifest references is checked against the repository by the caller.
 */

import { RegistryError } from '../errors.js'
import { parseDigest } from '../digest.js'
import { MediaTypes, baseMediaType, isManifestMediaType, manifestKinds, type ManifestKind } from './media-types.js'

export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  urls?: string[]
  annotations?: Record<string, string>
  artifactType?: string
  platform?: Record<string, unknown>
}

export interface ParsedManifest {
  mediaType: string
  kind: ManifestKind
  /** Blobs the manifest needs in the repository: config and layers (without external `urls`). */
  blobs: Descriptor[]
  /** Manifests an index lists. */
  manifests: Descriptor[]
  subject?: Descriptor
  /** The artifact type as the referrers API reports it: `artifactType`, else the config's media type. */
  artifactType?: string
  annotations?: Record<string, string>
}

type Json = Record<string, unknown>

function invalid (reason: string, extra: Record<string, unknown> = {}): RegistryError {
  return new RegistryError('MANIFEST_INVALID', { reason, ...extra })
}

function isObject (value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function stringMap (value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined) return undefined
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    throw invalid(`${where} must be an object of strings`)
  }
  return value as Record<string, string>
}

export function parseDescriptor (value: unknown, where: string): Descriptor {
  if (!isObject(value)) throw invalid(`${where} must be a descriptor object`)
  const { mediaType, digest, size, urls, annotations, artifactType, platform } = value
  if (typeof mediaType !== 'string' || mediaType === '') throw invalid(`${where}.mediaType must be a string`)
  if (typeof digest !== 'string') throw invalid(`${where}.digest must be a string`)
  try {
    parseDigest(digest)
  } catch {
    throw new RegistryError('DIGEST_INVALID', { reason: `${where}.digest is not a valid digest`, digest })
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(`${where}.size must be a non-negative integer`)
  const descriptor: Descriptor = { mediaType, digest, size }
  if (urls !== undefined) {
    if (!Array.isArray(urls) || !urls.every((url) => typeof url === 'string')) throw invalid(`${where}.urls must be an array of strings`)
    descriptor.urls = urls as string[]
  }
  const parsedAnnotations = stringMap(annotations, `${where}.annotations`)
  if (parsedAnnotations !== undefined) descriptor.annotations = parsedAnnotations
  if (artifactType !== undefined) {
    if (typeof artifactType !== 'string') throw invalid(`${where}.artifactType must be a string`)
    descriptor.artifactType = artifactType
  }
  if (platform !== undefined) {
    if (!isObject(platform)) throw invalid(`${where}.platform must be an object`)
    descriptor.platform = platform
  }
  return descriptor
}

function parseJson (bytes: Buffer): Json {
  let json: unknown
  try {
    json = JSON.parse(bytes.toString('utf8'))
  } catch {
    throw invalid('the body is not JSON')
  }
  if (!isObject(json)) throw invalid('the body is not a JSON object')
  return json
}

/**
 * The media type of stored manifest bytes, for serving them: the body's `mediaType`, else
 * inferred from its shape (OCI allows manifests without `mediaType`).
 */
export function inferMediaType (json: Json): string {
  if (typeof json.mediaType === 'string' && json.mediaType !== '') return json.mediaType
  if (json.schemaVersion === 1) return Array.isArray(json.signatures) ? MediaTypes.dockerSchema1Signed : MediaTypes.dockerSchema1
  if (Array.isArray(json.manifests)) return MediaTypes.ociIndex
  return MediaTypes.ociManifest
}

/** The media type of stored bytes (see inferMediaType). */
export function mediaTypeOf (bytes: Buffer): string {
  try {
    return inferMediaType(parseJson(bytes))
  } catch {
    return MediaTypes.ociManifest
  }
}

/**
 * Parses a manifest pushed with `contentType`. The type is the body's `mediaType` when it has
 * one (and it must agree with a manifest Content-Type), else the Content-Type, else inferred.
 */
export function parseManifest (bytes: Buffer, contentType: string | undefined): ParsedManifest {
  const json = parseJson(bytes)
  const declared = baseMediaType(contentType)
  const own = typeof json.mediaType === 'string' ? json.mediaType : undefined
  if (json.mediaType !== undefined && typeof json.mediaType !== 'string') throw invalid('mediaType must be a string')
  if (own !== undefined && declared !== undefined && isManifestMediaType(declared) && own !== declared) {
    throw invalid('Content-Type and the manifest\'s mediaType disagree', { contentType: declared, mediaType: own })
  }
  const mediaType = own ?? (declared !== undefined && isManifestMediaType(declared) ? declared : inferMediaType(json))
  const kind = manifestKinds.get(mediaType)
  if (kind === undefined) throw invalid(`unsupported manifest media type ${mediaType}`, { mediaType })
  if (kind === 'schema1') {
    // Verified and parsed by the schema 1 module; here only what every kind shares.
    return { mediaType, kind, blobs: [], manifests: [] }
  }
  if (json.schemaVersion !== 2) throw invalid('schemaVersion must be 2')

  const parsed: ParsedManifest = { mediaType, kind, blobs: [], manifests: [] }
  if (kind === 'image') {
    const config = parseDescriptor(json.config, 'config')
    if (!Array.isArray(json.layers)) throw invalid('layers must be an array')
    const layers = json.layers.map((layer, i) => parseDescriptor(layer, `layers[${i}]`))
    if (json.manifests !== undefined) throw invalid('an image manifest has no manifests')
    parsed.blobs = [config, ...layers.filter((layer) => layer.urls === undefined || layer.urls.length === 0)]
    const artifactType = typeof json.artifactType === 'string' ? json.artifactType : config.mediaType
    parsed.artifactType = artifactType
  } else {
    if (!Array.isArray(json.manifests)) throw invalid('manifests must be an array')
    parsed.manifests = json.manifests.map((manifest, i) => parseDescriptor(manifest, `manifests[${i}]`))
    if (json.layers !== undefined || json.config !== undefined) throw invalid('an index has no config or layers')
    if (typeof json.artifactType === 'string') parsed.artifactType = json.artifactType
  }
  if (json.artifactType !== undefined && typeof json.artifactType !== 'string') throw invalid('artifactType must be a string')
  if (json.subject !== undefined) parsed.subject = parseDescriptor(json.subject, 'subject')
  const annotations = stringMap(json.annotations, 'annotations')
  if (annotations !== undefined) parsed.annotations = annotations
  return parsed
}
