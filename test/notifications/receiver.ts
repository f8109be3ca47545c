/**
 * A webhook receiver on loopback for the notifications tests: records every request, answers
 * with the status the test sets (or holds the answer until the test releases it), and lets a
 * test wait for a number of events without sleeping.
 */

import http from 'node:http'
import { EventEmitter } from 'node:events'
import type { AddressInfo } from 'node:net'

export interface Received {
  headers: http.IncomingHttpHeaders
  body: string
  /** The parsed body. */
  json: Record<string, unknown>
}

export interface ReceivedEvent {
  id: string
  action: string
  target: Record<string, unknown> & { repository: string }
  [key: string]: unknown
}

export class Receiver {
  readonly requests: Received[] = []
  /** The status answered; 200 unless a test says otherwise. */
  status = 200
  /** When set, each answer waits for this promise (a slow receiver). */
  hold: Promise<void> | undefined
  private readonly server: http.Server
  private readonly changes = new EventEmitter()

  constructor () {
    this.server = http.createServer((request, response) => {
      const chunks: Buffer[] = []
      request.on('data', (chunk: Buffer) => chunks.push(chunk))
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        const answer = (): void => {
          // Recorded when answered: an answer that is not 2xx was not taken.
          if (this.status >= 200 && this.status < 300) {
            this.requests.push({ headers: request.headers, body, json: JSON.parse(body) as Record<string, unknown> })
          }
          response.writeHead(this.status).end()
          this.changes.emit('change')
        }
        if (this.hold === undefined) answer()
        else this.hold.then(answer, answer)
      })
    })
  }

  async listen (port = 0): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, '127.0.0.1', resolve)
    })
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/events`
  }

  async close (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  /** distribution's events received, in order (envelopes unpacked). */
  events (): ReceivedEvent[] {
    return this.requests.flatMap((request) => (request.json.events as ReceivedEvent[] | undefined) ?? [])
  }

  /** Waits until `predicate` holds of what was received. */
  async until (predicate: () => boolean, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!predicate()) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out; received ${JSON.stringify(this.requests.map((request) => request.json))}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.changes.once('change', () => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }
}
