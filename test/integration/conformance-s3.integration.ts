/** The conformance suite against our registry on S3 (s3rver), with deletes enabled: every check passes. */

import t from 'tap'
import { conformancePasses } from '../conformance/passes.js'

t.test('the conformance suite passes against our registry (s3, deletes enabled)', async (t) => {
  await conformancePasses(t, 's3')
})
