import t from 'tap'
import {
  ErrorCodes, RegistryError, errorDescriptors, errorDescriptor, fromErrorBody, registerError, toErrorBody, isRegistryError
} from '../../lib/errors.js'

const specCodes = [
  'BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID', 'MANIFEST_UNKNOWN', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'UNAUTHORIZED',
  'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS'
]
const distributionExtras = ['UNKNOWN', 'UNAVAILABLE', 'MANIFEST_UNVERIFIED', 'TAG_INVALID', 'RANGE_INVALID', 'PAGINATION_NUMBER_INVALID']

t.test('every OCI code and distribution extra is registered with distribution\'s status', async (t) => {
  const expected: Record<string, number> = {
    BLOB_UNKNOWN: 404,
    BLOB_UPLOAD_INVALID: 400,
    BLOB_UPLOAD_UNKNOWN: 404,
    DIGEST_INVALID: 400,
    MANIFEST_BLOB_UNKNOWN: 400,
    MANIFEST_INVALID: 400,
    MANIFEST_UNKNOWN: 404,
    NAME_INVALID: 400,
    NAME_UNKNOWN: 404,
    SIZE_INVALID: 400,
    UNAUTHORIZED: 401,
    DENIED: 403,
    UNSUPPORTED: 405,
    TOOMANYREQUESTS: 429,
    UNKNOWN: 500,
    UNAVAILABLE: 503,
    MANIFEST_UNVERIFIED: 400,
    TAG_INVALID: 400,
    RANGE_INVALID: 416,
    PAGINATION_NUMBER_INVALID: 400
  }
  for (const code of [...specCodes, ...distributionExtras]) {
    t.equal(errorDescriptor(code)?.httpStatus, expected[code], `${code} status`)
  }
  t.equal(Object.keys(ErrorCodes).length, specCodes.length + distributionExtras.length)
})

for (const descriptor of errorDescriptors()) {
  t.test(`${descriptor.code} round-trips through the error body`, async (t) => {
    const detail = { digest: 'sha256:abc', nested: [1, 'two', null] }
    const error = new RegistryError(descriptor, detail)
    t.equal(error.statusCode, descriptor.httpStatus)
    t.equal(error.message, descriptor.message)
    t.ok(descriptor.description.length > 0, 'has a description')
    const wire = JSON.parse(JSON.stringify(toErrorBody(error)))
    t.same(wire, { errors: [{ code: descriptor.code, message: descriptor.message, detail }] })
    const [parsed] = fromErrorBody(wire, descriptor.httpStatus)
    t.ok(parsed !== undefined && isRegistryError(parsed))
    t.equal(parsed?.code, descriptor.code)
    t.equal(parsed?.message, descriptor.message)
    t.same(parsed?.detail, detail)
    t.equal(parsed?.statusCode, descriptor.httpStatus)
  })
}

t.test('registering a duplicate or malformed descriptor is refused', async (t) => {
  t.throws(() => registerError({ code: 'BLOB_UNKNOWN', message: 'x', description: 'x', httpStatus: 404 }), /already registered/)
  t.throws(() => registerError({ code: 'lower', message: 'x', description: 'x', httpStatus: 400 }), TypeError)
  t.throws(() => registerError({ code: 'NOT_AN_ERROR_STATUS', message: 'x', description: 'x', httpStatus: 200 }), TypeError)
})

t.test('users may register extra descriptors', async (t) => {
  const quota = registerError({ code: 'QUOTA_EXCEEDED', message: 'quota exceeded', description: 'The repository is full.', httpStatus: 507 })
  const error = new RegistryError(quota, { limit: 10 })
  t.equal(error.statusCode, 507)
  t.same(fromErrorBody(toErrorBody(error))[0]?.toJSON(), { code: 'QUOTA_EXCEEDED', message: 'quota exceeded', detail: { limit: 10 } })
})

t.test('an error without detail omits it; unknown codes and bodies parse to something usable', async (t) => {
  t.same(toErrorBody(new RegistryError('NAME_UNKNOWN')), { errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }] })
  const [unknownCode] = fromErrorBody({ errors: [{ code: 'SOMETHING_NEW', message: 'new' }] }, 418)
  t.equal(unknownCode?.code, 'SOMETHING_NEW')
  t.equal(unknownCode?.statusCode, 418)
  const [notABody] = fromErrorBody('<html>', 502)
  t.equal(notABody?.code, 'UNKNOWN')
  t.equal(notABody?.statusCode, 502)
})

t.test('a status override is kept, headers travel with the error', async (t) => {
  const error = new RegistryError('RANGE_INVALID', undefined, { headers: { Range: '0-9' } })
  t.same(error.headers, { Range: '0-9' })
  t.equal(new RegistryError('SIZE_INVALID', undefined, { statusCode: 413 }).statusCode, 413)
})
