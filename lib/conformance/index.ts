/** The conformance suite: checks of the OCI Distribution Spec any registry can be run against. */

export { runConformance, formatResult, formatSummary, CATEGORIES } from './run.js'
export type { Category, CheckResult, CheckStatus, ConformanceOptions, ConformanceReport } from './run.js'
export { main as conformanceCli, USAGE } from './cli.js'
