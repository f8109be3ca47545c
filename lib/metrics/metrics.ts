/**
 * The registry's Prometheus metrics (prom-client), one registry of metrics per app. Names follow
 * CNCF distribution's where it has one, so that its dashboards work: `registry_http_*` per route
 * (distribution's `handler` label holds the route descriptor's name), the storage base layer's
 * `registry_storage_action_seconds{driver,action}` and `registry_storage_cache_total{type}`;
 * the others are ours. Every label takes its values from a fixed set (route names, methods,
 * status codes, driver actions), so the number of series is bounded whatever clients send.
 *
 * Other modules add their own figures through `registerGauge` and `registerCounter` (the
 * notification queue, usage per repository with `topWithRest`), without touching this file.
 */

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { StorageActionEvent } from '../storage/base.js'
import type { CacheLookupEvent } from '../storage/cache.js'
import type { RegistryEvent } from '../events.js'

/** Methods as the `method` label knows them; anything else is `other`. */
const METHODS = new Set(['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS'])

/** distribution's request duration buckets (go-metrics), in seconds. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]
/** Sizes from 256 bytes to 4 GiB, by fours. */
const SIZE_BUCKETS = Array.from({ length: 13 }, (_, i) => 256 * 4 ** i)

/** Why a request was refused access, as the `reason` label of auth failures. */
export type AuthFailureReason = 'missing_credentials' | 'invalid_credentials' | 'insufficient_scope' | 'denied'

/** One answered request of the registry's routes. */
export interface RequestObservation {
  /** The route descriptor's name; `unmatched` when the path names no route. */
  handler: string
  method: string
  code: number
  seconds: number
  /** The declared body length, when there was one. */
  requestBytes: number | undefined
  /** The body length answered (0 for HEAD and bodiless answers), when known. */
  responseBytes: number | undefined
}

/** A value of a gauge or counter another module keeps, with its labels. */
export interface Sample<L extends string> {
  labels: Partial<Record<L, string>>
  value: number
}

export interface GaugeDefinition<L extends string> {
  /** `registry_` and the module's name, e.g. `registry_notifications_queue_length`. */
  name: string
  help: string
  labelNames?: readonly L[]
  /** Called at each scrape: the current value, or the values by labels (keep them few). */
  collect: () => number | Array<Sample<L>> | Promise<number | Array<Sample<L>>>
}

export interface CounterDefinition<L extends string> {
  name: string
  help: string
  labelNames?: readonly L[]
}

/** A counter another module increments. */
export interface RegistryCounter<L extends string> {
  inc: (labels?: Partial<Record<L, string>>, value?: number) => void
}

/**
 * The `n` largest entries by value and, when there are more, one `rest` entry summing the
 * others: per-repository figures stay a bounded number of series however many repositories there are.
 */
export function topWithRest (entries: Iterable<readonly [string, number]>, n: number, rest = '(other)'): Array<[string, number]> {
  const sorted = [...entries].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
  const top: Array<[string, number]> = sorted.slice(0, n).map(([key, value]) => [key, value])
  if (sorted.length > n) top.push([rest, sorted.slice(n).reduce((sum, [, value]) => sum + value, 0)])
  return top
}

function checkName (name: string): void {
  if (!/^registry_[a-z0-9_]+$/.test(name)) throw new TypeError(`metric ${name}: names start with registry_ and use a-z, 0-9 and _`)
}

export class RegistryMetrics {
  /** prom-client's registry of this app's metrics (the cluster aggregation shares it). */
  readonly registry = new Registry()

  private readonly requests = new Counter({ name: 'registry_http_requests_total', help: 'Requests answered, by route, method and status code.', labelNames: ['handler', 'method', 'code'], registers: [this.registry] })
  private readonly duration = new Histogram({ name: 'registry_http_request_duration_seconds', help: 'Time from the request to its answer, by route and method.', labelNames: ['handler', 'method'], buckets: DURATION_BUCKETS, registers: [this.registry] })
  private readonly requestSize = new Histogram({ name: 'registry_http_request_size_bytes', help: 'Declared request body sizes, by route.', labelNames: ['handler'], buckets: SIZE_BUCKETS, registers: [this.registry] })
  private readonly responseSize = new Histogram({ name: 'registry_http_response_size_bytes', help: 'Response body sizes, by route.', labelNames: ['handler'], buckets: SIZE_BUCKETS, registers: [this.registry] })
  private readonly inFlight = new Gauge({ name: 'registry_http_in_flight_requests', help: 'Requests being served, by route.', labelNames: ['handler'], registers: [this.registry] })
  private readonly storageSeconds = new Histogram({ name: 'registry_storage_action_seconds', help: 'Time of each storage driver action, by driver and action.', labelNames: ['driver', 'action'], buckets: DURATION_BUCKETS, registers: [this.registry] })
  private readonly storageErrors = new Counter({ name: 'registry_storage_action_errors_total', help: 'Storage driver actions that failed, by driver and action.', labelNames: ['driver', 'action'], registers: [this.registry] })
  private readonly cache = new Counter({ name: 'registry_storage_cache_total', help: 'Cache lookups (type Request) and their results (Hit, Miss, Error), by cache.', labelNames: ['type', 'cache'], registers: [this.registry] })
  private readonly pushed = new Counter({ name: 'registry_bytes_pushed_total', help: 'Bytes of blobs and manifests pushed (committed), by kind.', labelNames: ['kind'], registers: [this.registry] })
  private readonly pulled = new Counter({ name: 'registry_bytes_pulled_total', help: 'Bytes of blobs and manifests answered to GET requests, by kind.', labelNames: ['kind'], registers: [this.registry] })
  private readonly uploads = new Gauge({ name: 'registry_uploads_in_progress', help: 'Upload requests (POST, PATCH, PUT of blob uploads) being served.', registers: [this.registry] })
  private readonly authFailures = new Counter({ name: 'registry_auth_failures_total', help: 'Requests refused access, by reason.', labelNames: ['reason'], registers: [this.registry] })
  private readonly gcRuns = new Counter({ name: 'registry_gc_runs_total', help: 'Garbage collection runs completed, by dry run.', labelNames: ['dry_run'], registers: [this.registry] })
  private readonly gcBytesFreed = new Counter({ name: 'registry_gc_bytes_freed_total', help: 'Bytes of blobs removed by garbage collection.', registers: [this.registry] })
  private readonly gcRemoved = new Counter({ name: 'registry_gc_removed_total', help: 'Blobs and manifests removed by garbage collection, by kind.', labelNames: ['kind'], registers: [this.registry] })
  private readonly scrubRuns = new Counter({ name: 'registry_scrub_runs_total', help: 'Integrity scrub runs completed.', registers: [this.registry] })
  private readonly scrubBytes = new Counter({ name: 'registry_scrub_bytes_checked_total', help: 'Bytes of blobs hashed by integrity scrubs.', registers: [this.registry] })
  private readonly scrubCorrupt = new Counter({ name: 'registry_scrub_corrupt_blobs_total', help: 'Blobs whose bytes did not match their digest.', registers: [this.registry] })
  private readonly quarantined = new Counter({ name: 'registry_blobs_quarantined_total', help: 'Blobs moved to quarantine.', registers: [this.registry] })

  constructor (options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry })
  }

  /** A request of a route starts: counted in flight until the returned function is called. */
  requestStarted (handler: string, upload: boolean): () => void {
    this.inFlight.inc({ handler })
    if (upload) this.uploads.inc()
    return () => {
      this.inFlight.dec({ handler })
      if (upload) this.uploads.dec()
    }
  }

  requestFinished (request: RequestObservation): void {
    const method = METHODS.has(request.method) ? request.method : 'other'
    this.requests.inc({ handler: request.handler, method, code: String(request.code) })
    this.duration.observe({ handler: request.handler, method }, request.seconds)
    if (request.requestBytes !== undefined) this.requestSize.observe({ handler: request.handler }, request.requestBytes)
    if (request.responseBytes !== undefined) this.responseSize.observe({ handler: request.handler }, request.responseBytes)
  }

  storageAction (event: StorageActionEvent): void {
    const labels = { driver: event.driver, action: event.action }
    this.storageSeconds.observe(labels, event.seconds)
    if (event.error !== undefined) this.storageErrors.inc(labels)
  }

  cacheLookup (event: CacheLookupEvent): void {
    this.cache.inc({ type: 'Request', cache: event.cache })
    this.cache.inc({ type: event.result === 'hit' ? 'Hit' : event.result === 'miss' ? 'Miss' : 'Error', cache: event.cache })
  }

  bytesPulled (kind: 'blob' | 'manifest', bytes: number): void {
    this.pulled.inc({ kind }, bytes)
  }

  authFailure (reason: AuthFailureReason): void {
    this.authFailures.inc({ reason })
  }

  /** The write path's and the storage lifecycle's events that metrics count. */
  event (event: RegistryEvent): void {
    switch (event.type) {
      case 'blob.pushed': this.pushed.inc({ kind: 'blob' }, event.size); break
      case 'manifest.pushed': this.pushed.inc({ kind: 'manifest' }, event.size); break
      case 'gc.completed': {
        const { report } = event
        this.gcRuns.inc({ dry_run: String(report.dryRun) })
        if (!report.dryRun) {
          this.gcBytesFreed.inc(report.bytesFreed)
          this.gcRemoved.inc({ kind: 'blob' }, report.blobsSwept)
          this.gcRemoved.inc({ kind: 'manifest' }, report.manifestsSwept)
        }
        break
      }
      case 'scrub.completed':
        this.scrubRuns.inc()
        this.scrubBytes.inc(event.report.bytesChecked)
        this.scrubCorrupt.inc(event.report.corrupt.length)
        break
      case 'blob.quarantined': this.quarantined.inc(); break
      default: break
    }
  }

  /** A gauge another module keeps (read at each scrape); throws when the name is taken. */
  registerGauge<L extends string> (definition: GaugeDefinition<L>): void {
    checkName(definition.name)
    const { collect } = definition
    // eslint-disable-next-line no-new -- registered with this registry by its constructor
    new Gauge<L>({
      name: definition.name,
      help: definition.help,
      labelNames: definition.labelNames ?? [],
      registers: [this.registry],
      async collect () {
        const value = await collect()
        this.reset()
        if (typeof value === 'number') this.set(value)
        else for (const sample of value) this.set(sample.labels, sample.value)
      }
    })
  }

  /** A counter another module increments; throws when the name is taken. */
  registerCounter<L extends string> (definition: CounterDefinition<L>): RegistryCounter<L> {
    checkName(definition.name)
    const counter = new Counter<L>({ name: definition.name, help: definition.help, labelNames: definition.labelNames ?? [], registers: [this.registry] })
    return { inc: (labels = {}, value = 1) => { counter.inc(labels, value) } }
  }

  get contentType (): string {
    return this.registry.contentType
  }

  /** The text exposition of this process's metrics. */
  async render (): Promise<string> {
    return await this.registry.metrics()
  }
}
