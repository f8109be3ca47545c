/**
 * The `format: cloudevents` of an endpoint: each event as a CloudEvents 1.0 JSON event
 * (structured mode), built by the CNCF's SDK so that it meets the spec as receivers' SDKs read
 * it. Its type is `registry.` and the registry event's type (`registry.manifest.pushed`); its
 * data is distribution's event. Loaded only when an endpoint asks for it.
 */

import { CloudEvent, HTTP } from 'cloudevents'
import { cloudEventType, type Formatter } from './envelope.js'

export const cloudEventsFormatter: Formatter = (outboxEvent) => {
  const { event } = outboxEvent
  const cloudEvent = new CloudEvent({
    id: event.id,
    type: cloudEventType(outboxEvent.type),
    source: `/v2/${event.target.repository}`,
    time: event.timestamp,
    subject: event.target.tag ?? event.target.digest ?? event.target.repository,
    datacontenttype: 'application/json',
    data: event
  })
  const message = HTTP.structured(cloudEvent)
  return { body: String(message.body), contentType: String(message.headers['content-type']) }
}
