/**
 * Typed events of the write path: emitted after a change is committed to storage (and every
 * cache updated), and for pulls. Notifications, replication, retention, usage and a UI are
 * listeners; none of them writes.
 *
 * A listener is called in registration order. By default the emitter does not wait for it, and
 * its failure is logged, never seen by the client: the change is committed already. A listener
 * registered with `{ wait: true }` is awaited before the request that caused the event answers
 * (a durable outbox appends there, so an acknowledged push always has its event recorded); its
 * failure is logged too.
 */

import type { GcReport, ScrubReport } from './lifecycle/reports.js'

/** Who caused a change and through which request, as far as the registry knows. */
export interface EventOrigin {
  /** The authenticated user; undefined when anonymous or when auth is off. */
  actor?: string
  /** The HTTP request, when the change came through one. */
  request?: {
    id: string
    addr?: string
    host?: string
    method?: string
    userAgent?: string
  }
}

interface StoreEventBase {
  time: Date
  origin: EventOrigin
}

interface EventBase extends StoreEventBase {
  repository: string
}

/** Every event type with its payload. */
export interface RegistryEventMap {
  'repository.created': EventBase
  'blob.pushed': EventBase & { digest: string, size: number }
  'blob.mounted': EventBase & { digest: string, size: number, from?: string }
  'blob.deleted': EventBase & { digest: string }
  'blob.pulled': EventBase & { digest: string, size: number }
  'manifest.pushed': EventBase & { digest: string, mediaType: string, size: number, tags: string[], subject?: string, references: string[] }
  'manifest.deleted': EventBase & { digest: string, tags: string[] }
  'manifest.pulled': EventBase & { digest: string, mediaType: string, size: number, tag?: string }
  'tag.updated': EventBase & { tag: string, digest: string, previous?: string }
  'tag.deleted': EventBase & { tag: string, digest: string }
  // Store-wide events of the storage lifecycle: no repository.
  'gc.completed': StoreEventBase & { report: GcReport }
  'scrub.completed': StoreEventBase & { report: ScrubReport }
  'blob.quarantined': StoreEventBase & { digest: string, reason: string }
}

export type RegistryEventType = keyof RegistryEventMap

/** An event as delivered: its payload with its type. */
export type RegistryEvent<K extends RegistryEventType = RegistryEventType> = K extends RegistryEventType
  ? RegistryEventMap[K] & { type: K }
  : never

export type EventListener<K extends RegistryEventType> = (event: RegistryEvent<K>) => void | Promise<void>

export interface ListenOptions {
  /** Await the listener before the request answers (see the module comment). */
  wait?: boolean
}

export interface EventLogger {
  error: (object: Record<string, unknown>, message: string) => void
}

/** Every event type, in a stable order (docs and tests list them from here). */
export const EVENT_TYPES: readonly RegistryEventType[] = [
  'repository.created', 'blob.pushed', 'blob.mounted', 'blob.deleted', 'blob.pulled',
  'manifest.pushed', 'manifest.deleted', 'manifest.pulled', 'tag.updated', 'tag.deleted',
  'gc.completed', 'scrub.completed', 'blob.quarantined'
]

interface Registration {
  listener: (event: RegistryEvent) => void | Promise<void>
  wait: boolean
}

/** The typed emitter on the registry (`app.ociRegistry.events`). */
export class RegistryEvents {
  private readonly listeners = new Map<RegistryEventType | '*', Registration[]>()
  private log: EventLogger | undefined

  constructor (log?: EventLogger) {
    this.log = log
  }

  /** Sets where listener failures are logged. */
  setLogger (log: EventLogger): void {
    this.log = log
  }

  /** Listens to one event type; returns a function that removes the listener. */
  on<K extends RegistryEventType> (type: K, listener: EventListener<K>, options: ListenOptions = {}): () => void {
    return this.add(type, listener as Registration['listener'], options)
  }

  /** Listens to every event type; returns a function that removes the listener. */
  onAny (listener: (event: RegistryEvent) => void | Promise<void>, options: ListenOptions = {}): () => void {
    return this.add('*', listener, options)
  }

  private add (key: RegistryEventType | '*', listener: Registration['listener'], options: ListenOptions): () => void {
    const registration: Registration = { listener, wait: options.wait ?? false }
    this.listeners.set(key, [...(this.listeners.get(key) ?? []), registration])
    return () => {
      this.listeners.set(key, (this.listeners.get(key) ?? []).filter((entry) => entry !== registration))
    }
  }

  /** Whether anyone listens to this type: a read path skips building an event nobody wants. */
  wanted (type: RegistryEventType): boolean {
    return (this.listeners.get(type)?.length ?? 0) > 0 || (this.listeners.get('*')?.length ?? 0) > 0
  }

  /**
   * Delivers events to their listeners; resolves when every waiting listener has finished.
   * Never rejects: a listener's failure is logged.
   */
  async emit (...events: RegistryEvent[]): Promise<void> {
    const waiting: Array<Promise<void>> = []
    for (const event of events) {
      for (const registration of [...(this.listeners.get(event.type) ?? []), ...(this.listeners.get('*') ?? [])]) {
        const settled = this.call(registration, event)
        if (registration.wait) waiting.push(settled)
      }
    }
    if (waiting.length > 0) await Promise.all(waiting)
  }

  private async call (registration: Registration, event: RegistryEvent): Promise<void> {
    try {
      await registration.listener(event)
    } catch (error) {
      this.log?.error({ err: error, event: event.type, repository: 'repository' in event ? event.repository : undefined }, 'event listener failed')
    }
  }
}
