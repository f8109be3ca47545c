/**
 * The path mapper: the only code that knows the storage layout. It is CNCF distribution's, so
 * a tree written by one registry is served by the other:
 *
 *   /docker/registry/v2
 *     blobs/<alg>/<hex[0:2]>/<hex>/data                        the content, stored once
 *     repositories/<name>/
 *       _layers/<alg>/<hex>/link                              the blob is in this repository
 *       _manifests/revisions/<alg>/<hex>/link                 a manifest revision
 *       _manifests/tags/<tag>/current/link                    what the tag points at
 *       _manifests/tags/<tag>/index/<alg>/<hex>/link          every revision the tag pointed at
 *       _uploads/<uuid>/data                                  bytes of an upload in progress
 *       _uploads/<uuid>/startedat                             when it started (RFC 3339)
 *       _uploads/<uuid>/completing                            `<digest> <size>` while it is published (this project's)
 *       _uploads/<uuid>/hashstates/<alg>/<offset>             distribution's resumable hash states
 *       _referrers/<alg>/<hex>/<alg>/<hex>/link               a referrer of a subject (this project's)
 *     _leases/<name>                                          who runs a store-wide task (this project's)
 *     _blobuse/holds/<id>                                     blobs a change in flight relies on (this project's)
 *     _blobuse/released/<time>-<id>                           a hold ended at <time> (ms), until a collection drops it (this project's)
 *     _blobuse/removals/<id>                                  blobs a collection is removing (this project's)
 *
 * Link files hold a digest string.
 */

export const ROOT = '/docker/registry/v2'

export type PathSpec =
  | { kind: 'blobsRoot' }
  | { kind: 'blobData', algorithm: string, hex: string }
  | { kind: 'blobDir', algorithm: string, hex: string }
  | { kind: 'repositoriesRoot' }
  | { kind: 'repository', name: string }
  | { kind: 'layer', name: string, algorithm: string, hex: string }
  | { kind: 'layerLink', name: string, algorithm: string, hex: string }
  | { kind: 'layersRoot', name: string }
  | { kind: 'manifestRevisionsRoot', name: string }
  | { kind: 'manifestRevision', name: string, algorithm: string, hex: string }
  | { kind: 'manifestRevisionLink', name: string, algorithm: string, hex: string }
  | { kind: 'tagsRoot', name: string }
  | { kind: 'tag', name: string, tag: string }
  | { kind: 'tagCurrentLink', name: string, tag: string }
  | { kind: 'tagIndexEntry', name: string, tag: string, algorithm: string, hex: string }
  | { kind: 'uploadsRoot', name: string }
  | { kind: 'upload', name: string, uuid: string }
  | { kind: 'uploadData', name: string, uuid: string }
  | { kind: 'uploadStartedAt', name: string, uuid: string }
  | { kind: 'uploadCompleting', name: string, uuid: string }
  | { kind: 'referrersRoot', name: string }
  | { kind: 'referrersOfSubject', name: string, algorithm: string, hex: string }
  | { kind: 'referrer', name: string, subjectAlgorithm: string, subjectHex: string, algorithm: string, hex: string }
  | { kind: 'referrerLink', name: string, subjectAlgorithm: string, subjectHex: string, algorithm: string, hex: string }
  | { kind: 'lease', task: string }
  | { kind: 'blobHoldsRoot' }
  | { kind: 'blobHold', id: string }
  | { kind: 'blobReleasedRoot' }
  | { kind: 'blobReleased', time: number, id: string }
  | { kind: 'blobRemovalsRoot' }
  | { kind: 'blobRemoval', id: string }

/** Splits `alg:hex` for the mapper (digests are validated before they get here). */
export function digestParts (digest: string): { algorithm: string, hex: string } {
  const colon = digest.indexOf(':')
  return { algorithm: digest.slice(0, colon), hex: digest.slice(colon + 1) }
}

export function pathFor (spec: PathSpec): string {
  const repo = (name: string): string => `${ROOT}/repositories/${name}`
  switch (spec.kind) {
    case 'blobsRoot': return `${ROOT}/blobs`
    case 'blobDir': return `${ROOT}/blobs/${spec.algorithm}/${spec.hex.slice(0, 2)}/${spec.hex}`
    case 'blobData': return `${ROOT}/blobs/${spec.algorithm}/${spec.hex.slice(0, 2)}/${spec.hex}/data`
    case 'repositoriesRoot': return `${ROOT}/repositories`
    case 'repository': return repo(spec.name)
    case 'layersRoot': return `${repo(spec.name)}/_layers`
    case 'layer': return `${repo(spec.name)}/_layers/${spec.algorithm}/${spec.hex}`
    case 'layerLink': return `${repo(spec.name)}/_layers/${spec.algorithm}/${spec.hex}/link`
    case 'manifestRevisionsRoot': return `${repo(spec.name)}/_manifests/revisions`
    case 'manifestRevision': return `${repo(spec.name)}/_manifests/revisions/${spec.algorithm}/${spec.hex}`
    case 'manifestRevisionLink': return `${repo(spec.name)}/_manifests/revisions/${spec.algorithm}/${spec.hex}/link`
    case 'tagsRoot': return `${repo(spec.name)}/_manifests/tags`
    case 'tag': return `${repo(spec.name)}/_manifests/tags/${spec.tag}`
    case 'tagCurrentLink': return `${repo(spec.name)}/_manifests/tags/${spec.tag}/current/link`
    case 'tagIndexEntry': return `${repo(spec.name)}/_manifests/tags/${spec.tag}/index/${spec.algorithm}/${spec.hex}/link`
    case 'uploadsRoot': return `${repo(spec.name)}/_uploads`
    case 'upload': return `${repo(spec.name)}/_uploads/${spec.uuid}`
    case 'uploadData': return `${repo(spec.name)}/_uploads/${spec.uuid}/data`
    case 'uploadStartedAt': return `${repo(spec.name)}/_uploads/${spec.uuid}/startedat`
    case 'uploadCompleting': return `${repo(spec.name)}/_uploads/${spec.uuid}/completing`
    case 'referrersRoot': return `${repo(spec.name)}/_referrers`
    case 'referrersOfSubject': return `${repo(spec.name)}/_referrers/${spec.algorithm}/${spec.hex}`
    case 'referrer': return `${repo(spec.name)}/_referrers/${spec.subjectAlgorithm}/${spec.subjectHex}/${spec.algorithm}/${spec.hex}`
    case 'lease': return `${ROOT}/_leases/${spec.task}`
    case 'blobHoldsRoot': return `${ROOT}/_blobuse/holds`
    case 'blobHold': return `${ROOT}/_blobuse/holds/${spec.id}`
    case 'blobReleasedRoot': return `${ROOT}/_blobuse/released`
    case 'blobReleased': return `${ROOT}/_blobuse/released/${spec.time}-${spec.id}`
    case 'blobRemovalsRoot': return `${ROOT}/_blobuse/removals`
    case 'blobRemoval': return `${ROOT}/_blobuse/removals/${spec.id}`
    case 'referrerLink': return `${repo(spec.name)}/_referrers/${spec.subjectAlgorithm}/${spec.subjectHex}/${spec.algorithm}/${spec.hex}/link`
  }
}
