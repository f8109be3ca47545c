/** The `metrics` option of the registry plugin: Prometheus metrics, off unless asked for. */

import { Type, type Static } from '@sinclair/typebox'

export const MetricsOptionsSchema = Type.Object({
  enabled: Type.Optional(Type.Boolean({ default: false, description: 'Collect Prometheus metrics (default false).' })),
  path: Type.Optional(Type.Union([Type.String({ pattern: '^/[^\\s?#]*$' }), Type.Literal(false)], {
    default: '/metrics',
    description: 'Path of the text exposition on the registry\'s listener (under the plugin\'s prefix); `false` serves none, for a host that serves `app.ociRegistryOperations.metrics` elsewhere (a debug listener).'
  })),
  processMetrics: Type.Optional(Type.Boolean({ default: true, description: 'Add Node\'s process metrics (`process_*`, `nodejs_*`) (default true).' }))
}, { additionalProperties: false, description: 'Prometheus metrics; see [Metrics](#metrics).' })

export type MetricsOptions = Static<typeof MetricsOptionsSchema>

export interface ResolvedMetricsOptions {
  enabled: boolean
  path: string | false
  processMetrics: boolean
}

const defaults = MetricsOptionsSchema.properties

/** The options with their defaults (validated already by the registry's schema). */
export function resolveMetricsOptions (options: MetricsOptions = {}): ResolvedMetricsOptions {
  return {
    enabled: options.enabled ?? defaults.enabled.default as boolean,
    path: options.path ?? defaults.path.default as string,
    processMetrics: options.processMetrics ?? defaults.processMetrics.default as boolean
  }
}
