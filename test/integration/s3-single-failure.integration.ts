/**
 * Publishing on S3 is correct whichever single S3 call of a chunked push fails: POST, a PATCH past
 * S3's smallest part, another PATCH, then PUT, so that multipart uploads, part copies and their
 * completion are each failed in turn (the sweep is in test/http/s3-single-failure.ts).
 */

import t from 'tap'
import { randomBytes } from 'node:crypto'
import { chunked, everyFailure, MiB } from '../http/s3-single-failure.js'

// 60 failed pushes of 5 MiB, each retried: on a loaded machine this needs more than tap's 600 s.
t.setTimeout(1_500_000)

t.test('any single S3 call failing in a chunked push with parts', async (t) => {
  await everyFailure(t, chunked, randomBytes(5 * MiB + 2000))
})
