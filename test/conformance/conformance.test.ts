import t from 'tap'
import { conformancePasses } from './passes.js'

// On S3 the same run takes a minute on s3rver: it is in the integration tier (conformance-s3).
for (const kind of ['inmemory', 'filesystem'] as const) {
  t.test(`the conformance suite passes against our registry (${kind}, deletes enabled)`, async (t) => {
    await conformancePasses(t, kind)
  })
}
