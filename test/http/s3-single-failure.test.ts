/**
 * Publishing on S3 is correct whichever single S3 call of a two-step push fails (the sweep is in
 * s3-single-failure.ts). The chunked push with multipart parts, six times slower on s3rver,
 * runs in the integration tier.
 */

import t from 'tap'
import { randomBytes } from 'node:crypto'
import { everyFailure, twoStep } from './s3-single-failure.js'

t.test('any single S3 call failing in a two-step push', async (t) => {
  await everyFailure(t, twoStep, randomBytes(100_000))
})
