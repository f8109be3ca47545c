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
 *
 * Link files hold a digest string.
 *
 * The registry's own records live beside that tree, under `_oci`, where distribution never
 * looks (it reads `blobs/` and `repositories/` only). A repository name is one segment there,
 * its `/` written `..` (which no valid name contains):
 *
 *   /docker/registry/v2/_oci
 *     catalog/built                                         the index was built from the tree
 *     catalog/repositories/<name>                           a repository that holds something
 *     maintenance/readonly                                  the read-only switch of the admin API (JSON)
 *     manifesttags/built                                    every tag is in the reverse index below
 *     manifesttags/repositories/<name>/<alg>/<hex>/<tag>    the tag was set to the manifest
 *     usage/repositories/<name>                             what a repository uses (JSON)
 *     scrub/verified/<alg>/<hex>                            when the blob's bytes were last verified
 *     scrub/reports                                         the last scrub reports (JSON)
 *     quarantine/<alg>/<hex>/data                           a blob whose bytes did not match its digest
 *     leases/<name>                                         who runs a store-wide task
 *     blobuse/holds/<id>                                    blobs a change in flight relies on
 *     blobuse/released/<time>-<id>                          a hold ended at <time> (ms), until a collection drops it
 *     blobuse/removals/<id>                                 blobs a collection is removing
 *     notifications/<endpoint>/                             webhooks' durable outbox
 *       outbox/<key>                                        an event not yet delivered, keys in order
 *       deadletters/<key>                                   an event given up on, until replayed
 *       lease                                               which process delivers (`owner` and expiry)
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
  | { kind: 'catalogBuilt' }
  | { kind: 'catalogIndexRoot' }
  | { kind: 'catalogIndexEntry', name: string }
  | { kind: 'manifestTagsBuilt' }
  | { kind: 'readOnlySwitch' }
  | { kind: 'tagsOfManifest', name: string, algorithm: string, hex: string }
  | { kind: 'tagOfManifest', name: string, algorithm: string, hex: string, tag: string }
  | { kind: 'usageRoot' }
  | { kind: 'usageRecord', name: string }
  | { kind: 'scrubVerified', algorithm: string, hex: string }
  | { kind: 'scrubReports' }
  | { kind: 'quarantinedBlob', algorithm: string, hex: string }
  | { kind: 'notificationOutbox', endpoint: string }
  | { kind: 'notificationEntry', endpoint: string, key: string }
  | { kind: 'notificationDeadLetters', endpoint: string }
  | { kind: 'notificationDeadLetter', endpoint: string, key: string }
  | { kind: 'notificationLease', endpoint: string }
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

/** A repository name as one path segment of the registry's own records (`a/b` is `a..b`). */
export function nameSegment (name: string): string {
  return name.replaceAll('/', '..')
}

/** The repository name of a segment written by `nameSegment`. */
export function nameOfSegment (segment: string): string {
  return segment.replaceAll('..', '/')
}

/**
 * An endpoint's name as one path component: as it is when it is made of path characters,
 * else hex-encoded behind `x-`, so that any name is a valid path and two names never share one.
 */
function endpointComponent (name: string): string {
  return /^(?!x-)[A-Za-z0-9][A-Za-z0-9_-]*$/.test(name) ? name : `x-${Buffer.from(name, 'utf8').toString('hex')}`
}

export function pathFor (spec: PathSpec): string {
  const repo = (name: string): string => `${ROOT}/repositories/${name}`
  const own = `${ROOT}/_oci`
  const notifications = (endpoint: string): string => `${own}/notifications/${endpointComponent(endpoint)}`
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
    case 'lease': return `${own}/leases/${spec.task}`
    case 'blobHoldsRoot': return `${own}/blobuse/holds`
    case 'blobHold': return `${own}/blobuse/holds/${spec.id}`
    case 'blobReleasedRoot': return `${own}/blobuse/released`
    case 'blobReleased': return `${own}/blobuse/released/${spec.time}-${spec.id}`
    case 'blobRemovalsRoot': return `${own}/blobuse/removals`
    case 'blobRemoval': return `${own}/blobuse/removals/${spec.id}`
    case 'referrerLink': return `${repo(spec.name)}/_referrers/${spec.subjectAlgorithm}/${spec.subjectHex}/${spec.algorithm}/${spec.hex}/link`
    case 'catalogBuilt': return `${own}/catalog/built`
    case 'catalogIndexRoot': return `${own}/catalog/repositories`
    case 'catalogIndexEntry': return `${own}/catalog/repositories/${nameSegment(spec.name)}`
    case 'manifestTagsBuilt': return `${own}/manifesttags/built`
    case 'readOnlySwitch': return `${own}/maintenance/readonly`
    case 'tagsOfManifest': return `${own}/manifesttags/repositories/${nameSegment(spec.name)}/${spec.algorithm}/${spec.hex}`
    case 'tagOfManifest': return `${own}/manifesttags/repositories/${nameSegment(spec.name)}/${spec.algorithm}/${spec.hex}/${spec.tag}`
    case 'usageRoot': return `${own}/usage/repositories`
    case 'usageRecord': return `${own}/usage/repositories/${nameSegment(spec.name)}`
    case 'scrubVerified': return `${own}/scrub/verified/${spec.algorithm}/${spec.hex}`
    case 'scrubReports': return `${own}/scrub/reports`
    case 'quarantinedBlob': return `${own}/quarantine/${spec.algorithm}/${spec.hex}/data`
    case 'notificationOutbox': return `${notifications(spec.endpoint)}/outbox`
    case 'notificationEntry': return `${notifications(spec.endpoint)}/outbox/${spec.key}`
    case 'notificationDeadLetters': return `${notifications(spec.endpoint)}/deadletters`
    case 'notificationDeadLetter': return `${notifications(spec.endpoint)}/deadletters/${spec.key}`
    case 'notificationLease': return `${notifications(spec.endpoint)}/lease`
  }
}
