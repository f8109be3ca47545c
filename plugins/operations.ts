/**
 * What the operations plugins (metrics, health, ...) give the host: one object, decorated on the
 * host as `ociRegistryOperations` and filled by each plugin that is on. A host serves them
 * elsewhere (the example server's debug listener), and plugins reach each other through it
 * (a module with figures of its own adds them to `metrics`).
 */

import type { RegistryMetrics } from '../lib/metrics/metrics.js'
import type { HealthChecks } from '../lib/health/checks.js'
import type { UsageTracker } from '../lib/lifecycle/usage.js'

export interface RegistryOperations {
  /** The Prometheus metrics, when the `metrics` option is on. */
  metrics?: RegistryMetrics
  /** The dependency checks, when the `health` option is on (`debugHealth()` is distribution's `/debug/health`). */
  health?: HealthChecks
  /** The usage records kept by the write path: `flush()` waits for the updates in flight. */
  usage?: UsageTracker
}

declare module 'fastify' {
  interface FastifyInstance {
    ociRegistryOperations: RegistryOperations
  }
}
