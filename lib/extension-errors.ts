/**
 * Error codes of the registry's own routes under `/v2/_oci/` (the spec's codes cover the
 * distribution API only). Registered when this module loads, which every route descriptor using
 * them imports, so the API reference and the error body know them.
 */

import { registerError, type ErrorDescriptor } from './errors.js'

declare module './errors.js' {
  interface ErrorCodeMap {
    PARAMETER_INVALID: ErrorDescriptor
  }
}

export const PARAMETER_INVALID = registerError({
  code: 'PARAMETER_INVALID',
  message: 'invalid parameter',
  description: 'A query parameter or the body of one of the registry\'s own routes (under `/v2/_oci/`) has a value the route does not accept; `detail` says which and why.',
  httpStatus: 400
})
