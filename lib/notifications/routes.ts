/**
 * The notifications' admin API: extension routes (`access: 'admin'`) that list the dead
 * letters and put them back into their queues.
 */

import { Type } from '@sinclair/typebox'
import { defineRoute, withCode } from '../routes.js'
import '../extension-errors.js'

const Filter = Type.Object({
  endpoint: Type.Optional(withCode(Type.String({ minLength: 1, description: 'Only this endpoint\'s dead letters.' }), 'PARAMETER_INVALID')),
  id: Type.Optional(withCode(Type.String({ minLength: 1, description: 'Only the dead letter of this event id.' }), 'PARAMETER_INVALID'))
})

const DeadLetter = Type.Object({
  endpoint: Type.String(),
  key: Type.String({ description: 'Its place in the queue.' }),
  type: Type.String({ description: 'The registry event type, e.g. `manifest.pushed`.' }),
  attempts: Type.Integer(),
  lastError: Type.String(),
  deadAt: Type.String({ description: 'When it was given up on (ISO 8601).' }),
  event: Type.Object({ id: Type.String() }, { additionalProperties: true, description: 'distribution\'s event, as sent.' })
})

export const deadLettersRoute = defineRoute({
  name: 'notification-deadletters',
  path: '/v2/_oci/admin/notifications/deadletters',
  description: 'Events the notifications gave up on after their endpoint\'s `maxattempts`.',
  params: Type.Object({}),
  methods: {
    GET: {
      description: 'Lists the dead letters, per endpoint, oldest first.',
      access: 'admin',
      query: Filter,
      responses: [{ status: 200, description: 'The dead letters.', body: Type.Object({ deadletters: Type.Array(DeadLetter) }), contentType: 'application/json' }],
      errors: ['PARAMETER_INVALID', 'UNSUPPORTED', 'UNAUTHORIZED', 'DENIED']
    }
  }
})

export const replayRoute = defineRoute({
  name: 'notification-deadletters-replay',
  path: '/v2/_oci/admin/notifications/deadletters/replay',
  description: 'Puts dead letters back at the end of their endpoint\'s queue, to be delivered again.',
  params: Type.Object({}),
  methods: {
    POST: {
      description: 'Replays every dead letter, or those of one endpoint, or one event.',
      access: 'admin',
      query: Filter,
      responses: [{ status: 200, description: 'How many were put back.', body: Type.Object({ replayed: Type.Integer() }), contentType: 'application/json' }],
      errors: ['PARAMETER_INVALID', 'UNSUPPORTED', 'UNAUTHORIZED', 'DENIED']
    }
  }
})
