/**
 * What an endpoint receives: the registry's events turned into CNCF distribution's notification
 * events, field by field (its `notifications/event.go` and `bridge.go`), sent one per envelope
 * `{"events":[...]}` of media type `application/vnd.docker.distribution.events.v1+json`; or,
 * for an endpoint of `format: cloudevents`, as a CloudEvents 1.0 JSON event whose data is the
 * same event.
 */

import { createHmac, randomUUID } from 'node:crypto'
import type { RegistryEvent, RegistryEventType } from '../events.js'
import { UrlBuilder } from '../urls.js'
import type { Endpoint, EventAction } from './options.js'

export const EVENTS_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v1+json'

/** distribution's media type of a blob's event: it does not know what a blob holds. */
export const BLOB_MEDIA_TYPE = 'application/octet-stream'

/** Headers of every delivery (see the README's "Notifications" for how a receiver checks them). */
export const HEADERS = {
  /** The event's id: the same on every attempt, for the receiver to drop repeats. */
  id: 'X-Registry-Event-Id',
  /** Seconds since the epoch when this attempt was signed. */
  timestamp: 'X-Registry-Timestamp',
  /** `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the endpoint's secret>`. */
  signature: 'X-Registry-Signature'
} as const

export interface TargetRecord {
  mediaType?: string
  size?: number
  digest?: string
  length?: number
  repository: string
  fromRepository?: string
  url?: string
  tag?: string
  references?: Array<{ digest: string }>
}

/** distribution's `Event`, as JSON. */
export interface NotificationEvent {
  id: string
  timestamp: string
  action: EventAction
  target: TargetRecord
  request: { id: string, addr?: string, host?: string, method: string, useragent: string }
  actor: { name?: string }
  source: { addr?: string, instanceID?: string }
}

/** An event as kept in the outbox: distribution's event and the registry event type it came from. */
export interface OutboxEvent {
  /** The registry's event type, e.g. `manifest.pushed` (CloudEvents' type is `registry.` + it). */
  type: RegistryEventType
  event: NotificationEvent
}

export interface EventContext {
  /** The registry node (`source`): its host and port (once listening), and an id that changes at each start. */
  source: () => { addr?: string, instanceID: string }
  /** A configured public base URL wins over the request's host in `target.url`. */
  publicUrl?: string | undefined
  includeReferences: boolean
}

/** The base of `target.url`: the public URL, or the host the request named. */
function urlsFor (event: RegistryEvent, context: EventContext): UrlBuilder {
  if (context.publicUrl !== undefined) return new UrlBuilder({ base: context.publicUrl })
  const host = event.origin.request?.host
  return new UrlBuilder({ base: host === undefined ? '' : `http://${host}` })
}

/**
 * distribution's events for one registry event: none for the types it has no event for
 * (repository created, tag updated: a manifest push names its tag), one per tag for a manifest
 * pushed under several tags.
 */
export function notificationEvents (event: RegistryEvent, context: EventContext): OutboxEvent[] {
  if (!('repository' in event)) return []
  const repository = event.repository
  const make = (action: EventAction, target: Omit<TargetRecord, 'repository'>): OutboxEvent => ({
    type: event.type,
    event: {
      id: randomUUID(),
      timestamp: event.time.toISOString(),
      action,
      target: { ...target, repository },
      request: {
        id: event.origin.request?.id ?? '',
        ...(event.origin.request?.addr === undefined ? {} : { addr: event.origin.request.addr }),
        ...(event.origin.request?.host === undefined ? {} : { host: event.origin.request.host }),
        method: event.origin.request?.method ?? '',
        useragent: event.origin.request?.userAgent ?? ''
      },
      actor: event.origin.actor === undefined ? {} : { name: event.origin.actor },
      source: context.source()
    }
  })
  const urls = (): UrlBuilder => urlsFor(event, context)
  switch (event.type) {
    case 'blob.pushed':
    case 'blob.pulled': {
      const action = event.type === 'blob.pushed' ? 'push' : 'pull'
      return [make(action, { mediaType: BLOB_MEDIA_TYPE, size: event.size, digest: event.digest, length: event.size, url: urls().blob(repository, event.digest) })]
    }
    case 'blob.mounted':
      return [make('mount', {
        mediaType: BLOB_MEDIA_TYPE,
        size: event.size,
        digest: event.digest,
        length: event.size,
        ...(event.from === undefined ? {} : { fromRepository: event.from }),
        url: urls().blob(repository, event.digest)
      })]
    case 'blob.deleted':
    case 'manifest.deleted':
      return [make('delete', { digest: event.digest })]
    case 'tag.deleted':
      return [make('delete', { tag: event.tag })]
    case 'manifest.pushed': {
      const target = {
        mediaType: event.mediaType,
        size: event.size,
        digest: event.digest,
        length: event.size,
        url: urls().manifest(repository, event.digest),
        ...(context.includeReferences && event.references.length > 0 ? { references: event.references.map((digest) => ({ digest })) } : {})
      }
      if (event.tags.length === 0) return [make('push', target)]
      return event.tags.map((tag) => make('push', { ...target, tag }))
    }
    case 'manifest.pulled':
      return [make('pull', {
        mediaType: event.mediaType,
        size: event.size,
        digest: event.digest,
        length: event.size,
        url: urls().manifest(repository, event.digest),
        ...(event.tag === undefined ? {} : { tag: event.tag })
      })]
    default:
      return []
  }
}

/** The registry event types that become notifications, and the action of each. */
export const NOTIFIED_TYPES: ReadonlyMap<RegistryEventType, EventAction> = new Map([
  ['blob.pushed', 'push'], ['blob.pulled', 'pull'], ['blob.mounted', 'mount'], ['blob.deleted', 'delete'],
  ['manifest.pushed', 'push'], ['manifest.pulled', 'pull'], ['manifest.deleted', 'delete'], ['tag.deleted', 'delete']
])

/** Whether an endpoint wants an event: neither its action nor its target's media type is ignored. */
export function wanted (endpoint: Endpoint, event: NotificationEvent): boolean {
  if (endpoint.ignoredActions.has(event.action)) return false
  return event.target.mediaType === undefined || !endpoint.ignoredMediaTypes.has(event.target.mediaType)
}

/** Formats an event for an endpoint; returns the request's body and content type. */
export type Formatter = (event: OutboxEvent) => { body: string, contentType: string }

export const envelopeFormatter: Formatter = (event) => ({
  body: JSON.stringify({ events: [event.event] }),
  contentType: EVENTS_MEDIA_TYPE
})

/** The CloudEvents type of a registry event type: `registry.manifest.pushed`. */
export function cloudEventType (type: RegistryEventType): string {
  return `registry.${type}`
}

/** The signature header's value for a body signed at `timestamp` (seconds). */
export function signature (secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`
}

/** The headers of one delivery attempt. */
export function deliveryHeaders (endpoint: Endpoint, event: OutboxEvent, body: string, contentType: string, now: Date): Headers {
  const headers = new Headers()
  for (const [name, values] of Object.entries(endpoint.headers)) {
    for (const value of values) headers.append(name, value)
  }
  headers.set('content-type', contentType)
  headers.set(HEADERS.id, event.event.id)
  if (endpoint.secret !== undefined) {
    const timestamp = Math.floor(now.getTime() / 1000)
    headers.set(HEADERS.timestamp, String(timestamp))
    headers.set(HEADERS.signature, signature(endpoint.secret, timestamp, body))
  }
  return headers
}
