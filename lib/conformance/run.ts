/**
 * The conformance runner: the checks of each chosen category in order, each with the exchanges
 * it made recorded, so that a failure is reported with what was sent and what came back.
 */

import { RegistryClient, formatExchange, type Exchange } from '../client/index.js'
import { CATEGORIES, send, type Category, type CheckDefinition, type Context } from './common.js'
import { CheckFailure, Unsupported, expectStatus } from './expect.js'
import { pullChecks } from './pull.js'
import { pushChecks } from './push.js'
import { discoveryChecks } from './discovery.js'
import { managementChecks } from './management.js'

export { CATEGORIES, type Category } from './common.js'

export type CheckStatus = 'pass' | 'fail' | 'unsupported'

export interface CheckResult {
  name: string
  category: Category | 'base'
  status: CheckStatus
  /** Why it failed, or what the registry does not support. */
  message?: string
  durationMs: number
  /** The exchanges of a check that did not pass, oldest first. */
  exchanges?: Exchange[]
}

export interface ConformanceOptions {
  /** Base URL of the registry, e.g. `http://127.0.0.1:5000`. */
  url: string
  username?: string
  password?: string
  /** Categories to run (default: all). */
  categories?: readonly Category[]
  /** Repository the checks push to (default `conformance/repo1`). */
  repository?: string
  /** Second repository, for mounts (default `conformance/repo2`). */
  crossRepository?: string
  timeoutMs?: number
  /** Called after each check, for progress output. */
  onResult?: (result: CheckResult) => void
}

export interface ConformanceReport {
  url: string
  repositories: [string, string]
  categories: Category[]
  durationMs: number
  summary: { total: number, passed: number, failed: number, unsupported: number }
  results: CheckResult[]
}

/** Exchanges kept per failed check: the last ones, where the failure is. */
const KEPT_EXCHANGES = 12

function baseChecks (): CheckDefinition[] {
  return [{
    name: 'GET /v2/ answers 200 (the API version check)',
    run: async (context) => { expectStatus(await send(context, { method: 'GET', url: context.client.urls.apiRoot() }), 200) }
  }]
}

const CATEGORY_CHECKS: Record<Category, () => CheckDefinition[]> = {
  pull: pullChecks,
  push: pushChecks,
  discovery: discoveryChecks,
  management: managementChecks
}

export async function runConformance (options: ConformanceOptions): Promise<ConformanceReport> {
  const started = Date.now()
  let exchanges: Exchange[] = []
  const client = new RegistryClient({
    url: options.url,
    userAgent: 'fastify-oci-registry-conformance',
    ...(options.username === undefined ? {} : { username: options.username }),
    ...(options.password === undefined ? {} : { password: options.password }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    onExchange: (exchange) => { exchanges.push(exchange) }
  })
  const context: Context = {
    client,
    repo: options.repository ?? 'conformance/repo1',
    repo2: options.crossRepository ?? 'conformance/repo2'
  }
  const categories = CATEGORIES.filter((category) => options.categories === undefined || options.categories.includes(category))
  const plan: Array<{ category: Category | 'base', check: CheckDefinition }> = [
    ...baseChecks().map((check) => ({ category: 'base' as const, check })),
    ...categories.flatMap((category) => CATEGORY_CHECKS[category]().map((check) => ({ category, check })))
  ]
  const results: CheckResult[] = []
  for (const { category, check } of plan) {
    exchanges = []
    const start = Date.now()
    let status: CheckStatus = 'pass'
    let message: string | undefined
    try {
      await check.run(context)
    } catch (error) {
      status = error instanceof Unsupported ? 'unsupported' : 'fail'
      message = error instanceof CheckFailure || error instanceof Unsupported
        ? error.message
        : `${(error as Error).name}: ${(error as Error).message}`
    }
    const result: CheckResult = {
      name: check.name,
      category,
      status,
      durationMs: Date.now() - start,
      ...(message === undefined ? {} : { message }),
      ...(status === 'pass' ? {} : { exchanges: exchanges.slice(-KEPT_EXCHANGES) })
    }
    results.push(result)
    options.onResult?.(result)
  }
  const count = (status: CheckStatus): number => results.filter((result) => result.status === status).length
  return {
    url: options.url,
    repositories: [context.repo, context.repo2],
    categories,
    durationMs: Date.now() - started,
    summary: { total: results.length, passed: count('pass'), failed: count('fail'), unsupported: count('unsupported') },
    results
  }
}

const LABELS: Record<CheckStatus, string> = { pass: 'ok  ', fail: 'FAIL', unsupported: 'n/a ' }

/** One check as text: status, category, name; for a failure, the reason and the exchanges. */
export function formatResult (result: CheckResult): string {
  const lines = [`${LABELS[result.status]} [${result.category}] ${result.name} (${result.durationMs} ms)`]
  if (result.message !== undefined) lines.push(`       ${result.message}`)
  if (result.status === 'fail') {
    for (const exchange of result.exchanges ?? []) {
      lines.push(...formatExchange(exchange).split('\n').map((line) => `       ${line}`))
    }
  }
  return lines.join('\n')
}

export function formatSummary (report: ConformanceReport): string {
  const { total, passed, failed, unsupported } = report.summary
  return `${report.url}: ${total} checks, ${passed} passed, ${failed} failed, ${unsupported} not supported by the registry (${report.categories.join(', ')}; ${Math.round(report.durationMs / 100) / 10} s)`
}
