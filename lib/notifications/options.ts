/**
 * Options of the notifications (webhooks): CNCF distribution's `notifications` section as it is
 * (`events.includereferences`, `endpoints` with `name`, `url`, `headers`, `timeout`,
 * `threshold`, `backoff`, `ignoredmediatypes`, `ignore`, `disabled`), plus this project's keys
 * in the same style: `format`, `secret`, `maxattempts`, `maxbackoff`. The same schema reads the
 * config file's section and validates the plugin option.
 */

import { Type, type Static } from '@sinclair/typebox'
import { DURATION_PATTERN, parseDuration } from '../config/duration.js'

/** A Go duration (`500ms`, `10s`), as distribution writes it, or milliseconds. */
const Duration = Type.Union([
  Type.String({ pattern: DURATION_PATTERN }),
  Type.Integer({ minimum: 0 })
])
const Strings = Type.Array(Type.String())

export const EVENT_ACTIONS = ['push', 'pull', 'mount', 'delete'] as const
export type EventAction = typeof EVENT_ACTIONS[number]

export const NOTIFICATION_FORMATS = ['envelope', 'cloudevents'] as const
export type NotificationFormat = typeof NOTIFICATION_FORMATS[number]

export const EndpointSchema = Type.Object({
  name: Type.String({ minLength: 1, description: 'Name of the endpoint, in logs, stats and dead letters.' }),
  url: Type.String({ pattern: '^https?://', description: 'URL events are POSTed to.' }),
  disabled: Type.Optional(Type.Boolean({ description: 'Send nothing to this endpoint (default false).' })),
  headers: Type.Optional(Type.Record(Type.String(), Strings, { description: 'Static headers of each request: a list of values per name.' })),
  timeout: Type.Optional(Duration),
  threshold: Type.Optional(Type.Integer({ minimum: 0, description: 'Failures in a row retried at once before backing off (default 3).' })),
  backoff: Type.Optional(Duration),
  ignoredmediatypes: Type.Optional(Strings),
  ignore: Type.Optional(Type.Object({
    mediatypes: Type.Optional(Strings),
    actions: Type.Optional(Type.Array(Type.Union(EVENT_ACTIONS.map((action) => Type.Literal(action)))))
  }, { additionalProperties: false })),
  // This project's keys.
  format: Type.Optional(Type.Union(NOTIFICATION_FORMATS.map((format) => Type.Literal(format)), { description: 'distribution\'s envelope (default) or CloudEvents 1.0 JSON.' })),
  secret: Type.Optional(Type.String({ minLength: 1, description: 'Key of the HMAC-SHA256 signature of each request.' })),
  maxattempts: Type.Optional(Type.Integer({ minimum: 1, description: 'Attempts before an event goes to the dead letters (default 20).' })),
  maxbackoff: Type.Optional(Duration)
}, { additionalProperties: false })

export const NotificationsOptionsSchema = Type.Object({
  events: Type.Optional(Type.Object({
    includereferences: Type.Optional(Type.Boolean({ description: 'List a manifest\'s references in its push event (default false).' }))
  }, { additionalProperties: false })),
  endpoints: Type.Optional(Type.Array(EndpointSchema))
}, { additionalProperties: false, description: 'Webhooks, as CNCF distribution\'s `notifications`, from a durable outbox; see [Notifications](#notifications).' })

export type EndpointOptions = Static<typeof EndpointSchema>
export type NotificationsOptions = Static<typeof NotificationsOptionsSchema>

/** Defaults of an endpoint, in milliseconds where a duration. */
export const ENDPOINT_DEFAULTS = {
  timeoutMs: 5000,
  threshold: 3,
  backoffMs: 1000,
  maxBackoffMs: 5 * 60_000,
  maxAttempts: 20,
  format: 'envelope' as NotificationFormat
}

/** An endpoint with every default filled. */
export interface Endpoint {
  name: string
  url: string
  headers: Record<string, string[]>
  timeoutMs: number
  threshold: number
  backoffMs: number
  maxBackoffMs: number
  maxAttempts: number
  ignoredMediaTypes: ReadonlySet<string>
  ignoredActions: ReadonlySet<EventAction>
  format: NotificationFormat
  secret: string | undefined
}

export interface ResolvedNotifications {
  includeReferences: boolean
  /** The enabled endpoints. */
  endpoints: Endpoint[]
}

function milliseconds (value: string | number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value === 'number') return value
  // The schema's pattern admits only what parseDuration reads.
  return parseDuration(value) ?? fallback
}

/** Fills defaults; leaves out disabled endpoints. Throws a TypeError for two endpoints of one name. */
export function resolveNotifications (options: NotificationsOptions | undefined): ResolvedNotifications {
  const endpoints: Endpoint[] = []
  const names = new Set<string>()
  for (const endpoint of options?.endpoints ?? []) {
    if (names.has(endpoint.name)) throw new TypeError(`notifications.endpoints: two endpoints are named '${endpoint.name}'`)
    names.add(endpoint.name)
    if (endpoint.disabled === true) continue
    endpoints.push({
      name: endpoint.name,
      url: endpoint.url,
      headers: endpoint.headers ?? {},
      timeoutMs: milliseconds(endpoint.timeout, ENDPOINT_DEFAULTS.timeoutMs),
      threshold: endpoint.threshold ?? ENDPOINT_DEFAULTS.threshold,
      backoffMs: milliseconds(endpoint.backoff, ENDPOINT_DEFAULTS.backoffMs),
      maxBackoffMs: milliseconds(endpoint.maxbackoff, ENDPOINT_DEFAULTS.maxBackoffMs),
      maxAttempts: endpoint.maxattempts ?? ENDPOINT_DEFAULTS.maxAttempts,
      // distribution reads both keys; so does this.
      ignoredMediaTypes: new Set([...(endpoint.ignoredmediatypes ?? []), ...(endpoint.ignore?.mediatypes ?? [])]),
      ignoredActions: new Set(endpoint.ignore?.actions ?? []),
      format: endpoint.format ?? ENDPOINT_DEFAULTS.format,
      secret: endpoint.secret
    })
  }
  return { includeReferences: options?.events?.includereferences ?? false, endpoints }
}
