/**
 * The registry's definitions for code that does not register the plugin: error descriptors,
 * route descriptors, the URL builder, digest and name grammar, manifest media types, the
 * storage contract, its drivers and the storage services.
 */

export * from './errors.js'
export * from './routes.js'
export * from './urls.js'
export * from './digest.js'
export * from './reference.js'
export * from './paging.js'
export * from './options.js'
export * from './manifest/media-types.js'
export { parseManifest, parseDescriptor, inferMediaType, mediaTypeOf, type Descriptor, type ParsedManifest } from './manifest/parse.js'
export { verifySchema1, SCHEMA1_MEDIA_TYPE, SCHEMA1_SIGNED_MEDIA_TYPE, type Schema1Manifest } from './manifest/schema1.js'
export * from './storage/driver.js'
export { StorageBase, wrapDriver, observeStorage, type StorageAction, type StorageActionEvent, type StorageActionListener } from './storage/base.js'
export { pathFor, digestParts, ROOT as STORAGE_ROOT, type PathSpec } from './storage/paths.js'
export { InMemoryDriver } from './storage/drivers/inmemory.js'
export { FilesystemDriver, type FilesystemDriverOptions } from './storage/drivers/filesystem.js'
export { RegistryService, type RegistryServiceOptions } from './storage/registry.js'
export { Repository, type MountAccess, type CompleteUploadOptions } from './storage/repository.js'
export * from './events.js'
export * from './policies.js'
export { BlobStore, LinkedBlobStore, type BlobDescriptor, type ByteRange } from './storage/blobs.js'
export { UploadStore, UploadSessions, uploadRange, type UploadState, type ByteSource } from './storage/uploads.js'
export { ManifestStore, TagStore, ReferrerStore, type StoredManifest, type PutManifestResult, type Schema1Verifier } from './storage/manifests.js'
export { MissingDependencyError } from './missing-dependency.js'
