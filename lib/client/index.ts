/** The typed registry client: transport, authentication and the API's operations. */

export { RegistryClient, nextLink } from './client.js'
export type { RegistryClientOptions, BlobInfo, ManifestResponse, PushedManifest, ReferrerList, TagPage, BlobUploadMethod, PushBlobOptions } from './client.js'
export { formatExchange, headerOf } from './http.js'
export type { ClientRequest, ClientResponse, StreamedResponse, Exchange, RecordedMessage, RequestBody, HeaderValues } from './http.js'
export { parseChallenge, basicAuthorization, tokenOf } from './auth.js'
export type { Challenge } from './auth.js'
export { RegistryClientError, isRegistryClientError } from './errors.js'
export type { ClientErrorCode } from './errors.js'
// The registry's errors, as the client throws them when the registry refuses.
export { RegistryError, isRegistryError, type ErrorCode, type ErrorCodeMap } from '../errors.js'
// The descriptor type of referrers() and manifests, one name across /client and /lib.
export type { Descriptor } from '../manifest/parse.js'
