/** The typed registry client: transport, authentication and the API's operations. */

export { RegistryClient, nextLink } from './client.js'
export type { RegistryClientOptions, BlobInfo, ManifestResponse, PutManifestResult, TagPage, BlobUploadMethod, PushBlobOptions } from './client.js'
export { formatExchange, headerOf } from './http.js'
export type { ClientRequest, ClientResponse, StreamedResponse, Exchange, RecordedMessage, RequestBody, HeaderValues } from './http.js'
export { parseChallenge, basicAuthorization, tokenOf } from './auth.js'
export type { Challenge } from './auth.js'
