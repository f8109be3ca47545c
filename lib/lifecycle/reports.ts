/**
 * What a garbage collection or an integrity scrub did: the shapes the log, the admin API, the
 * CLI's `--json`, metrics and events share.
 */

/** What started a run. */
export type RunTrigger = 'schedule' | 'admin' | 'cli'

/** One garbage collection run. */
export interface GcReport {
  id: string
  trigger: RunTrigger
  /** ISO 8601 time the run started. */
  startedAt: string
  durationMs: number
  /** Nothing was removed; `removed` lists what a real run would remove. */
  dryRun: boolean
  deleteUntagged: boolean
  repositories: number
  manifestsMarked: number
  blobsMarked: number
  manifestsSwept: number
  blobsSwept: number
  bytesFreed: number
  /** What was (or, in a dry run, would be) removed: blob digests, and manifests as `repository@digest`. */
  removed: { blobs: string[], manifests: string[] }
}

/** One integrity scrub run. */
export interface ScrubReport {
  id: string
  trigger: RunTrigger
  startedAt: string
  durationMs: number
  blobsChecked: number
  bytesChecked: number
  /** Blobs verified recently enough that this run did not hash them again. */
  blobsSkipped: number
  manifestsChecked: number
  /** Blobs whose bytes did not match their digest, now quarantined. */
  corrupt: string[]
  /** Manifest references that name something missing, as `repository@digest -> digest`. */
  missingReferences: string[]
}
