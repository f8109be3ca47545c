/** Manifest media types the registry accepts and serves. */

export const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json'
} as const

export type ManifestKind = 'image' | 'index' | 'schema1'

/**
 * The manifest media types, with what each one is. A Map, never a plain object: the keys looked
 * up come from clients, and `constructor` or `__proto__` must not pass for a media type.
 */
export const manifestKinds: ReadonlyMap<string, ManifestKind> = new Map<string, ManifestKind>([
  [MediaTypes.ociManifest, 'image'],
  [MediaTypes.dockerManifest, 'image'],
  [MediaTypes.ociIndex, 'index'],
  [MediaTypes.dockerManifestList, 'index'],
  [MediaTypes.dockerSchema1Signed, 'schema1'],
  [MediaTypes.dockerSchema1, 'schema1']
])

/** The empty JSON object `{}` that artifacts use as config: its content is known. */
export const EMPTY_BLOB_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'

export function isManifestMediaType (mediaType: string): boolean {
  return manifestKinds.has(mediaType)
}

/** The media type of a Content-Type header, without parameters, lower case. */
export function baseMediaType (contentType: string | undefined): string | undefined {
  const base = contentType?.split(';')[0]?.trim().toLowerCase()
  return base === undefined || base === '' ? undefined : base
}
