/**
 * `fastify-oci-registry gc`: an offline garbage collection of a storage tree (ours or CNCF
 * distribution's), configured as the server is (`--config`, storage flags and variables).
 * Prints what it removed (or, with `--dry-run`, what a run would remove): one blob digest per
 * line, then one `repository@digest` per manifest; with `--json`, the report. Progress goes to
 * the error stream.
 */

import { RegistryCache } from '../lib/storage/cache.js'
import { RegistryService } from '../lib/storage/registry.js'
import { resolveOptions } from '../lib/options.js'
import { GarbageCollector } from '../lib/lifecycle/gc.js'
import { Progress, formatBytes, type ProgressStream } from '../lib/lifecycle/progress.js'
import { SharedHolds } from '../lib/storage/shared-holds.js'
import { createCache, createDriver } from '../plugins/storage.js'
import { gcLease } from '../plugins/gc.js'
import { ConfigError, parseConfig } from './config.js'

export const GC_USAGE = `Usage: fastify-oci-registry gc [--config <file> | storage flags] [--dry-run] [--delete-untagged] [--json]

Removes the blobs no manifest of any repository names, and the repository links to them,
from the storage the server would use with the same configuration (see serve --help for
--config, --storage, --root and the --s3-* flags and their variables). Run it while no
registry writes to the storage, or let the registry's online collection do it (storage.gc).

Options:
  --dry-run          remove nothing; print what a run would remove
  --delete-untagged  also remove manifests no tag points at (but the children of a tagged
                     index and the referrers of kept manifests)
  --json             print the report as JSON
  -h, --help         print this help

Exit status: 0 when the run finished, 1 when it failed, 2 on a usage error.
`

export interface GcOutput {
  stdout: (text: string) => void
  stderr: (text: string) => void
  /** Where progress is drawn (a terminal gets a redrawn line). */
  progress?: ProgressStream
}

const OWN_FLAGS = new Set(['--dry-run', '--delete-untagged', '--json'])

/** Runs the command; resolves to the exit status. */
export async function main (argv: readonly string[], env: Record<string, string | undefined>, output: GcOutput): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    output.stdout(GC_USAGE)
    return 0
  }
  const own = new Set(argv.filter((arg) => OWN_FLAGS.has(arg)))
  let config
  try {
    config = parseConfig(argv.filter((arg) => !OWN_FLAGS.has(arg)), env)
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    output.stderr(`${error.message}\n\n${GC_USAGE}`)
    return 2
  }
  const options = resolveOptions(config.registry)
  const registry = new RegistryService(await createDriver(options.storage), {
    // Removals are announced to running replicas when they share a Redis.
    cache: options.cache.redis === undefined ? new RegistryCache() : await createCache(options.cache)
  })
  // Holds of registries serving the storage with online collection on are respected.
  registry.blobUse.share(new SharedHolds(registry.driver))
  const progress = output.progress === undefined ? undefined : new Progress(output.progress, { label: 'gc' })
  try {
    const collector = new GarbageCollector(registry, { lease: await gcLease(registry, options.cache) })
    const report = await collector.run({
      dryRun: own.has('--dry-run'),
      deleteUntagged: own.has('--delete-untagged'),
      trigger: 'cli',
      ...(progress === undefined ? {} : { onProgress: (counts) => { progress.update(counts) } })
    })
    progress?.done()
    if (own.has('--json')) {
      output.stdout(`${JSON.stringify(report, null, 2)}\n`)
    } else {
      for (const line of [...report.removed.blobs, ...report.removed.manifests]) output.stdout(`${line}\n`)
      const verb = report.dryRun ? 'would remove' : 'removed'
      output.stderr(`gc: ${report.repositories} repositories, ${report.manifestsMarked} manifests and ${report.blobsMarked} blobs marked; ${verb} ${report.manifestsSwept} manifests and ${report.blobsSwept} blobs (${formatBytes(report.bytesFreed)}) in ${(report.durationMs / 1000).toFixed(1)} s\n`)
    }
    return 0
  } catch (error) {
    progress?.done()
    output.stderr(`gc failed: ${error instanceof Error ? error.message : String(error)}\n`)
    return 1
  } finally {
    await registry.close()
  }
}
