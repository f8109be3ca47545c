/**
 * The notifications service: listens to the registry's events, appends what each endpoint wants
 * to its durable outbox before the request answers (a waiting listener), and delivers each
 * endpoint's queue in order, at least once, from a loop of its own: a slow or absent receiver
 * delays its own queue, never a push.
 *
 * A failed delivery is retried at once up to the endpoint's `threshold` of failures in a row
 * (distribution's meaning), then after `backoff`, doubling at each further failure up to
 * `maxbackoff`; after `maxattempts` attempts the event goes to the dead letters and the queue
 * moves on. Attempts are counted in memory: a restart gives an event its attempts again.
 */

import { randomUUID } from 'node:crypto'
import type { RegistryEvent, RegistryEvents } from '../events.js'
import type { Endpoint, NotificationFormat } from './options.js'
import { NOTIFIED_TYPES, deliveryHeaders, notificationEvents, wanted, type EventContext, type Formatter, type OutboxEvent } from './envelope.js'
import type { DeadLetter, OutboxEntry, OutboxStore } from './outbox.js'

export interface NotificationLogger {
  info: (object: Record<string, unknown>, message: string) => void
  warn: (object: Record<string, unknown>, message: string) => void
  error: (object: Record<string, unknown>, message: string) => void
}

/** Sends one request; `fetch` unless a test or an embedder gives another. */
export type Sender = (url: string, init: { method: 'POST', headers: Headers, body: string, signal: AbortSignal }) => Promise<{ status: number, body: { cancel: () => Promise<void> } | null }>

export interface NotificationServiceOptions {
  store: OutboxStore
  endpoints: readonly Endpoint[]
  /** The formatter of each format the endpoints use. */
  formatters: ReadonlyMap<NotificationFormat, Formatter>
  context: EventContext
  log?: NotificationLogger
  /** How long a process's claim to deliver an endpoint lasts without renewal (default 15 s). */
  leaseMs?: number
  /** How often an idle queue looks for events other processes appended (default 1 s). */
  pollMs?: number
  send?: Sender
}

/** The queue figures of one endpoint, as this process sees them (the process that delivers sees them whole). */
export interface EndpointStats {
  name: string
  /** Events waiting to be delivered. */
  pending: number
  /** Events delivered since start. */
  delivered: number
  /** Failed attempts since start. */
  failures: number
  /** Events moved to the dead letters since start. */
  deadLettered: number
  /** At least `threshold` failures in a row, not yet followed by a success. */
  failing: boolean
  /** This process holds the endpoint's lease and delivers its events. */
  delivering: boolean
}

export interface NotificationStats {
  endpoints: EndpointStats[]
}

/** A dead letter with its endpoint, as the admin API lists it. */
export type EndpointDeadLetter = DeadLetter & { endpoint: string }

const BATCH = 100
const defaultSend: Sender = async (url, init) => await fetch(url, { ...init, redirect: 'manual' })

/** Resolves after `ms`, or at once when `signal` aborts; true unless aborted. */
async function sleep (ms: number, signal: AbortSignal, wake?: (wake: () => void) => void): Promise<boolean> {
  if (signal.aborted) return false
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done)
    wake?.(done)
  })
  return !signal.aborted
}

/** The wait before the next attempt after `failures` failures in a row. */
export function retryDelay (endpoint: Endpoint, failures: number): number {
  if (failures < endpoint.threshold) return 0
  const exponent = Math.min(failures - Math.max(endpoint.threshold, 1), 30)
  return Math.min(endpoint.backoffMs * 2 ** exponent, endpoint.maxBackoffMs)
}

class EndpointQueue {
  private pending = 0
  private delivered = 0
  private failures = 0
  private deadLettered = 0
  private failuresInARow = 0
  private holding = false
  private readonly appends = new Set<Promise<void>>()
  private wakeIdle: (() => void) | undefined
  private loop: Promise<void> | undefined
  private renewal: NodeJS.Timeout | undefined

  constructor (
    readonly endpoint: Endpoint,
    private readonly format: Formatter,
    private readonly service: { store: OutboxStore, owner: string, leaseMs: number, pollMs: number, send: Sender, log: NotificationLogger | undefined, stopped: AbortSignal }
  ) {}

  /** Appends the events this endpoint wants; resolves once they are in the outbox. */
  async append (events: readonly OutboxEvent[]): Promise<void> {
    const kept = events.filter((event) => wanted(this.endpoint, event.event))
    if (kept.length === 0) return
    const appended = this.service.store.append(this.endpoint.name, kept)
    this.appends.add(appended)
    try {
      await appended
      this.pending += kept.length
    } finally {
      this.appends.delete(appended)
      this.wakeIdle?.()
    }
  }

  /** Dead letters put back: counted, and the loop woken to send them. */
  replayed (count: number): void {
    this.pending += count
    this.wakeIdle?.()
  }

  start (): void {
    const { store, owner, leaseMs } = this.service
    this.renewal = setInterval(() => {
      if (!this.holding) return
      store.acquire(this.endpoint.name, owner, leaseMs).then((held) => { this.holding = held }, (error: unknown) => {
        this.service.log?.error({ err: error, endpoint: this.endpoint.name }, 'notifications: renewing the lease failed')
      })
    }, Math.max(Math.floor(leaseMs / 3), 10)).unref()
    this.loop = this.run()
  }

  async stop (): Promise<void> {
    clearInterval(this.renewal)
    this.wakeIdle?.()
    await this.loop
    if (this.holding) {
      this.holding = false
      await this.service.store.release(this.endpoint.name, this.service.owner).catch(() => {})
    }
  }

  stats (): EndpointStats {
    return {
      name: this.endpoint.name,
      pending: this.pending,
      delivered: this.delivered,
      failures: this.failures,
      deadLettered: this.deadLettered,
      failing: this.failuresInARow > 0 && this.failuresInARow >= this.endpoint.threshold,
      delivering: this.holding
    }
  }

  private async idle (): Promise<boolean> {
    return await sleep(this.service.pollMs, this.service.stopped, (wake) => { this.wakeIdle = wake })
  }

  private async run (): Promise<void> {
    const { store, owner, leaseMs, stopped, log } = this.service
    while (!stopped.aborted) {
      try {
        // Once held, the lease is renewed by its timer: an idle queue costs one listing per poll.
        if (!this.holding) this.holding = await store.acquire(this.endpoint.name, owner, leaseMs)
        if (!this.holding) {
          await this.idle()
          continue
        }
        // An append of this process still being written would sort before what follows it.
        await Promise.allSettled([...this.appends])
        const entries = await store.pending(this.endpoint.name, BATCH)
        if (entries.length < BATCH) this.pending = entries.length
        if (entries.length === 0) {
          await this.idle()
          continue
        }
        for (const entry of entries) {
          if (!await this.deliver(entry)) break
        }
      } catch (error) {
        log?.error({ err: error, endpoint: this.endpoint.name }, 'notifications: the outbox failed')
        await this.idle()
      }
    }
  }

  /** Delivers one entry, retrying; false when stopped or the lease was lost before it was done. */
  private async deliver (entry: OutboxEntry): Promise<boolean> {
    const { store, stopped, log } = this.service
    for (let attempt = 1; ; attempt++) {
      if (stopped.aborted || !this.holding) return false
      let problem: string
      try {
        problem = await this.send(entry)
      } catch (error) {
        problem = stopped.aborted ? 'stopped' : (error as Error).message
      }
      if (problem === '') {
        this.delivered++
        this.failuresInARow = 0
        await store.remove(this.endpoint.name, entry.key)
        this.pending = Math.max(this.pending - 1, 0)
        return true
      }
      if (stopped.aborted) return false
      this.failures++
      this.failuresInARow++
      if (this.failuresInARow === Math.max(this.endpoint.threshold, 1)) {
        log?.warn({ endpoint: this.endpoint.name, reason: problem }, 'notifications: the endpoint is failing')
      }
      if (attempt >= this.endpoint.maxAttempts) {
        await store.bury(this.endpoint.name, { ...entry, attempts: attempt, lastError: problem, deadAt: new Date().toISOString() })
        this.deadLettered++
        this.pending = Math.max(this.pending - 1, 0)
        log?.warn({ endpoint: this.endpoint.name, id: entry.event.id, attempts: attempt, reason: problem }, 'notifications: event moved to the dead letters')
        return true
      }
      if (!await sleep(retryDelay(this.endpoint, this.failuresInARow), stopped)) return false
    }
  }

  /** One attempt: '' when the endpoint took the event, else why not. */
  private async send (entry: OutboxEntry): Promise<string> {
    const { body, contentType } = this.format(entry)
    const headers = deliveryHeaders(this.endpoint, entry, body, contentType, new Date())
    const signal = AbortSignal.any([AbortSignal.timeout(this.endpoint.timeoutMs), this.service.stopped])
    const response = await this.service.send(this.endpoint.url, { method: 'POST', headers, body, signal })
    await response.body?.cancel().catch(() => {})
    return response.status >= 200 && response.status < 300 ? '' : `answered ${response.status}`
  }
}

export class NotificationService {
  private readonly queues: EndpointQueue[]
  private readonly stopper = new AbortController()
  private readonly detach: Array<() => void> = []
  private started = false

  constructor (private readonly options: NotificationServiceOptions) {
    const shared = {
      store: options.store,
      owner: randomUUID(),
      leaseMs: options.leaseMs ?? 15_000,
      pollMs: options.pollMs ?? 1000,
      send: options.send ?? defaultSend,
      log: options.log,
      stopped: this.stopper.signal
    }
    this.queues = options.endpoints.map((endpoint) => {
      const format = options.formatters.get(endpoint.format)
      if (format === undefined) throw new TypeError(`notifications: no formatter for ${endpoint.format}`)
      return new EndpointQueue(endpoint, format, shared)
    })
  }

  /**
   * Listens to the registry's events, waiting listeners: an event is in the outbox before its
   * request answers. Event types no endpoint wants (pulls, when every endpoint ignores them) are
   * not listened to, so that their requests do not build events at all.
   */
  attach (events: RegistryEvents): void {
    for (const [type, action] of NOTIFIED_TYPES) {
      if (!this.queues.some((queue) => !queue.endpoint.ignoredActions.has(action))) continue
      this.detach.push(events.on(type, async (event) => { await this.record(event as RegistryEvent) }, { wait: true }))
    }
  }

  /** Appends an event's notifications to every endpoint's outbox that wants them. */
  async record (event: RegistryEvent): Promise<void> {
    const notifications = notificationEvents(event, this.options.context)
    if (notifications.length === 0) return
    await Promise.all(this.queues.map(async (queue) => { await queue.append(notifications) }))
  }

  /** Starts delivering. */
  start (): void {
    if (this.started) return
    this.started = true
    for (const queue of this.queues) queue.start()
  }

  /** Stops listening and delivering; what is not delivered stays in the outbox for the next start. */
  async close (): Promise<void> {
    for (const detach of this.detach.splice(0)) detach()
    this.stopper.abort()
    await Promise.all(this.queues.map(async (queue) => { await queue.stop() }))
    await this.options.store.close?.()
  }

  /** Queue figures per endpoint (read-only; for metrics). */
  stats (): NotificationStats {
    return { endpoints: this.queues.map((queue) => queue.stats()) }
  }

  /** Every endpoint's dead letters, oldest first per endpoint. */
  async deadLetters (endpoint?: string): Promise<EndpointDeadLetter[]> {
    const letters: EndpointDeadLetter[] = []
    for (const queue of this.queuesOf(endpoint)) {
      for (const letter of await this.options.store.deadLetters(queue.endpoint.name)) letters.push({ endpoint: queue.endpoint.name, ...letter })
    }
    return letters
  }

  /** Puts dead letters back into their queues (all, or of one endpoint, or of the given event ids); returns how many. */
  async replay (endpoint?: string, ids?: ReadonlySet<string>): Promise<number> {
    let replayed = 0
    for (const queue of this.queuesOf(endpoint)) {
      const count = await this.options.store.replay(queue.endpoint.name, ids)
      queue.replayed(count)
      replayed += count
    }
    return replayed
  }

  /** Whether an endpoint of this name is configured (and enabled). */
  has (endpoint: string): boolean {
    return this.queues.some((queue) => queue.endpoint.name === endpoint)
  }

  private queuesOf (endpoint: string | undefined): EndpointQueue[] {
    return endpoint === undefined ? this.queues : this.queues.filter((queue) => queue.endpoint.name === endpoint)
  }
}
