/**
 * Type tests, checked by `tsc --noEmit` (npm test's type-check), never run: a misspelt error
 * code does not compile, and a code a user registers compiles once added to ErrorCodeMap.
 */

import { RegistryError, registerError, type ErrorCode, type ErrorDescriptor } from '../../lib/errors.js'
import { RegistryClientError, type ClientErrorCode, type Descriptor, type ReferrerList } from '../../lib/client/index.js'

declare module '../../lib/errors.js' {
  interface ErrorCodeMap {
    TYPE_TEST_QUOTA: ErrorDescriptor
  }
}

export const known = new RegistryError('BLOB_UNKNOWN', { digest: 'sha256:...' })
// @ts-expect-error a misspelt code is a type error
export const misspelt = new RegistryError('BLOB_UNKNWN')
// @ts-expect-error so is any code nobody registered
export const unregistered = new RegistryError('SOMETHING_ELSE' as string)

registerError({ code: 'TYPE_TEST_QUOTA', message: 'quota exceeded', description: 'The repository is full.', httpStatus: 507 })
export const augmented = new RegistryError('TYPE_TEST_QUOTA')

export function handle (error: RegistryError): string {
  const code: ErrorCode = error.code
  // @ts-expect-error comparing with a code that does not exist is a type error
  if (error.code === 'MANIFEST_UNKNWN') return 'never'
  return code
}

export function clientCode (error: RegistryClientError): ClientErrorCode {
  // @ts-expect-error the client's codes are a closed union
  if (error.code === 'REFUSED') return 'TIMEOUT'
  return error.code
}

export function referrerDigests (list: ReferrerList): string[] {
  const first: Descriptor | undefined = list.manifests[0]
  return first === undefined ? [] : list.manifests.map((descriptor) => descriptor.digest)
}
