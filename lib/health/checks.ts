/**
 * Periodic health checks of the registry's dependencies, as CNCF distribution's health package
 * runs them: each check runs every interval, and is unhealthy once it has failed `threshold`
 * times in a row (one success makes it healthy again), so that one slow answer does not take
 * a replica out of rotation. Readiness is every check healthy.
 */

import { stat } from 'node:fs/promises'
import { connect } from 'node:net'

export interface CheckDefinition {
  /** As distribution names them: `storagedriver_<driver>`, `redis`. */
  name: string
  intervalMs: number
  threshold: number
  /** How long the check may take before it fails (default: the interval). */
  timeoutMs?: number
  /** Resolves when the dependency answers; a check slower than its timeout fails. */
  run: () => Promise<void>
}

export interface CheckStatus {
  healthy: boolean
  consecutiveFailures: number
  /** The last failure's message, while unhealthy or failing. */
  lastError?: string
  /** ISO 8601 time of the last check. */
  checkedAt?: string
}

class TimeoutError extends Error {}

async function withTimeout (run: () => Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new TimeoutError(`no answer within ${ms} ms`)) }, ms)
  })
  try {
    await Promise.race([run(), expired])
  } finally {
    clearTimeout(timer)
  }
}

class PeriodicCheck {
  readonly status: CheckStatus = { healthy: true, consecutiveFailures: 0 }
  private timer: NodeJS.Timeout | undefined
  private stopped = true

  constructor (readonly definition: CheckDefinition) {}

  /** Runs the check once and records its result. */
  async runOnce (): Promise<void> {
    const { run, intervalMs, timeoutMs, threshold } = this.definition
    try {
      await withTimeout(run, timeoutMs ?? intervalMs)
      this.status.consecutiveFailures = 0
      this.status.healthy = true
      delete this.status.lastError
    } catch (error) {
      this.status.consecutiveFailures++
      this.status.lastError = error instanceof Error ? error.message : String(error)
      if (this.status.consecutiveFailures >= threshold) this.status.healthy = false
    }
    this.status.checkedAt = new Date().toISOString()
  }

  start (): void {
    this.stopped = false
    this.schedule()
  }

  private schedule (): void {
    if (this.stopped) return
    this.timer = setTimeout(() => {
      // runOnce records failures itself and never rejects.
      this.runOnce().finally(() => { this.schedule() }).catch(() => {})
    }, this.definition.intervalMs).unref()
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.timer)
  }
}

export class HealthChecks {
  private readonly checks: PeriodicCheck[]
  /** Set while the server drains before closing: readiness fails so balancers move away. */
  private draining = false

  constructor (definitions: readonly CheckDefinition[]) {
    this.checks = definitions.map((definition) => new PeriodicCheck(definition))
  }

  /** Runs every check once (awaited), then each on its interval. */
  async start (): Promise<void> {
    await this.runAll()
    for (const check of this.checks) check.start()
  }

  /** Runs every check once now. */
  async runAll (): Promise<void> {
    await Promise.all(this.checks.map(async (check) => { await check.runOnce() }))
  }

  stop (): void {
    for (const check of this.checks) check.stop()
  }

  /** From now on readiness fails: the server is closing. */
  drain (): void {
    this.draining = true
  }

  get ready (): boolean {
    return !this.draining && this.checks.every((check) => check.status.healthy)
  }

  /** Each check's status, by name. */
  status (): Record<string, CheckStatus> {
    return Object.fromEntries(this.checks.map((check) => [check.definition.name, { ...check.status }]))
  }

  /** distribution's `/debug/health` body: the unhealthy checks and their errors (`{}` when healthy). */
  failures (): Record<string, string> {
    return Object.fromEntries(this.checks
      .filter((check) => !check.status.healthy)
      .map((check) => [check.definition.name, check.status.lastError ?? 'unhealthy']))
  }

  /** The readiness answer: status code and body. */
  readiness (): { statusCode: 200 | 503, body: { ready: boolean, draining: boolean, checks: Record<string, CheckStatus> } } {
    const ready = this.ready
    return { statusCode: ready ? 200 : 503, body: { ready, draining: this.draining, checks: this.status() } }
  }

  /** distribution's `/debug/health` answer: 200 and `{}`, or 503 and the failing checks. */
  debugHealth (): { statusCode: 200 | 503, body: Record<string, string> } {
    const failures = this.failures()
    return { statusCode: Object.keys(failures).length === 0 ? 200 : 503, body: failures }
  }
}

/** distribution's file check: fails while the file exists; any other answer of stat passes. */
export async function fileCheck (path: string): Promise<void> {
  const exists = await stat(path).then(() => true, () => false)
  if (exists) throw new Error('file exists')
}

/** distribution's HTTP check: a HEAD of the URI answers `statusCode`. */
export async function httpCheck (uri: string, statusCode: number, headers: Record<string, string[]>, timeoutMs: number): Promise<void> {
  const requestHeaders = new Headers()
  for (const [name, values] of Object.entries(headers)) for (const value of values) requestHeaders.append(name, value)
  const response = await fetch(uri, { method: 'HEAD', headers: requestHeaders, signal: AbortSignal.timeout(timeoutMs) })
  if (response.status !== statusCode) throw new Error(`downstream service returned unexpected status: ${response.status}`)
}

/** distribution's TCP check: a connection to `host:port` opens (and is closed at once). */
export async function tcpCheck (address: string, timeoutMs: number): Promise<void> {
  const colon = address.lastIndexOf(':')
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1')
  const port = Number(address.slice(colon + 1))
  await new Promise<void>((resolve, reject) => {
    const socket = connect({ host, port, timeout: timeoutMs })
    socket.once('connect', () => { socket.destroy(); resolve() })
    socket.once('timeout', () => { socket.destroy(); reject(new Error(`connection to ${address} failed: no answer within ${timeoutMs} ms`)) })
    socket.once('error', (error) => { socket.destroy(); reject(new Error(`connection to ${address} failed: ${error.message}`)) })
  })
}
