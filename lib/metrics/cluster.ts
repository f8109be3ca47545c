/**
 * Metrics of a node:cluster: one scrape of any worker sees the whole cluster. Each worker shares
 * its metrics with prom-client's AggregatorRegistry in the primary; a worker asked for metrics
 * asks the primary, which gathers every worker's and answers the sum.
 */

import cluster from 'node:cluster'
import type { Registry } from 'prom-client'

const REQUEST = 'fastify-oci-registry:cluster-metrics'
const RESPONSE = 'fastify-oci-registry:cluster-metrics-result'
/** Longer than prom-client's own 5 s wait for the workers. */
const ANSWER_TIMEOUT_MS = 10_000

interface MetricsMessage {
  type: string
  id: number
  text?: string
  error?: string
}

function isMessage (value: unknown): value is MetricsMessage {
  return typeof value === 'object' && value !== null && typeof (value as MetricsMessage).type === 'string' && typeof (value as MetricsMessage).id === 'number'
}

/** In the primary: answers the workers' requests for the cluster's metrics. */
export async function serveClusterMetrics (): Promise<void> {
  const { AggregatorRegistry } = await import('prom-client')
  const aggregator = new AggregatorRegistry()
  cluster.on('message', (worker, message: unknown) => {
    if (!isMessage(message) || message.type !== REQUEST) return
    aggregator.clusterMetrics().then((text) => {
      worker.send({ type: RESPONSE, id: message.id, text })
    }, (error: unknown) => {
      worker.send({ type: RESPONSE, id: message.id, error: error instanceof Error ? error.message : String(error) })
    })
  })
}

/**
 * In a worker: lets the primary gather this worker's metrics, and returns what asks the
 * primary for the whole cluster's, as Prometheus text.
 */
export async function shareWithCluster (registry: Registry): Promise<() => Promise<string>> {
  const { AggregatorRegistry } = await import('prom-client')
  AggregatorRegistry.setRegistries([registry])
  // Its constructor installs the worker's answer to the primary's requests.
  // eslint-disable-next-line no-new
  new AggregatorRegistry()
  let next = 0
  return async function clusterMetrics (): Promise<string> {
    const id = next++
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        process.off('message', onMessage)
        reject(new Error('the cluster primary did not answer with the metrics'))
      }, ANSWER_TIMEOUT_MS)
      function onMessage (message: unknown): void {
        if (!isMessage(message) || message.type !== RESPONSE || message.id !== id) return
        clearTimeout(timer)
        process.off('message', onMessage)
        if (message.error !== undefined) reject(new Error(message.error))
        else resolve(message.text ?? '')
      }
      process.on('message', onMessage)
      process.send?.({ type: REQUEST, id })
    })
  }
}
