/**
 * Storage lifecycle commands on a storage tree, without a server:
 *
 *   fastify-oci-registry reindex [--config FILE | storage flags] [--json]
 *   fastify-oci-registry scrub [--config FILE | storage flags] [--repository GLOB] [--full] [--json]
 *
 * The storage comes from the same flags, variables and config file as `serve`. Progress goes
 * through lib/lifecycle/progress.ts when given a stream (a redrawn bar on a terminal), else as
 * plain lines on standard error; `--json` prints the report alone.
 */

import { parseArgs } from 'node:util'
import { ConfigError, parseConfig, type ServerConfig } from './config.js'
import { createDriver } from '../plugins/storage.js'
import { RegistryService } from '../lib/storage/registry.js'
import { reindex } from '../lib/lifecycle/reindex.js'
import { scrub } from '../lib/lifecycle/scrub.js'
import { Progress, type ProgressStream } from '../lib/lifecycle/progress.js'

export interface Output {
  stdout: (text: string) => void
  stderr: (text: string) => void
  /** Where a long command draws its progress (a terminal gets a redrawn line); else plain lines on stderr. */
  progress?: ProgressStream
}

/** How a command reports what it is doing: one line at a time. */
export interface LineProgress {
  line: (text: string) => void
}

/** Progress as plain lines on standard error (standard output keeps the report). */
export function plainProgress (output: Output): LineProgress {
  return { line: (text) => { output.stderr(`${text}\n`) } }
}

const STORAGE_HELP = `Storage: --config <file> (CNCF distribution's config.yml), or --storage <driver> with
--root <dir> or the S3 flags, and their environment variables, as for \`serve\`.`

export const REINDEX_USAGE = `Usage: fastify-oci-registry reindex [--config FILE | storage flags] [--json]

Rebuilds the registry's own records from the storage tree: the catalog's index of
repositories, the reverse index of tags, and storage usage. Run it on a tree written by
CNCF distribution, or after another program changed the tree.

Options:
  --json       print the report as JSON
  -h, --help   print this help

${STORAGE_HELP}
`

export const SCRUB_USAGE = `Usage: fastify-oci-registry scrub [--config FILE | storage flags] [--repository GLOB] [--full] [--json]

Re-hashes stored blobs against their digests and checks every manifest's references.
A blob whose bytes do not match is quarantined (moved aside: pulls answer 404 and the
next push of that digest uploads it again). Blobs verified within the reverify period
(storage.scrub.reverify) are skipped unless --full.

Options:
  --repository <glob>  only repositories matching it (\`*\` within a component, \`**\` across)
                       and the blobs they hold
  --full               hash every blob, however recently verified
  --json               print the report as JSON
  -h, --help           print this help

The throttle is storage.scrub.bytespersecond. Exit status: 0 when nothing was found
wrong, 1 when a blob was corrupt or a reference missing, 2 on a usage error.

${STORAGE_HELP}
`

interface Parsed {
  values: Record<string, string | boolean | undefined>
  storageArgs: string[]
}

/** Takes the command's own options out; the rest are storage settings for parseConfig. */
function parseCommand (argv: readonly string[], own: Record<string, { type: 'string' | 'boolean' }>): Parsed {
  const { tokens } = parseArgs({ args: [...argv], options: own, strict: false, tokens: true })
  const values: Record<string, string | boolean | undefined> = {}
  const storageArgs: string[] = []
  for (const token of tokens) {
    if (token.kind === 'option' && Object.hasOwn(own, token.name)) {
      values[token.name] = token.value ?? true
    } else if (token.kind === 'option') {
      storageArgs.push(token.rawName, ...(token.value === undefined ? [] : [token.value]))
    } else if (token.kind === 'positional') {
      storageArgs.push(token.value)
    }
  }
  return { values, storageArgs }
}

async function openRegistry (storageArgs: readonly string[], env: Record<string, string | undefined>): Promise<{ registry: RegistryService, config: ServerConfig }> {
  const config = parseConfig(storageArgs, env)
  return { registry: new RegistryService(await createDriver(config.registry.storage ?? { driver: 'inmemory' })), config }
}

function failed (output: Output, error: unknown): number {
  if (error instanceof ConfigError) {
    output.stderr(`${error.message}\n`)
    return 2
  }
  output.stderr(`${error instanceof Error ? error.message : String(error)}\n`)
  return 1
}

export async function reindexMain (argv: readonly string[], env: Record<string, string | undefined>, output: Output): Promise<number> {
  const { values, storageArgs } = parseCommand(argv, { json: { type: 'boolean' }, help: { type: 'boolean' } })
  if (values.help === true || argv.includes('-h')) {
    output.stdout(REINDEX_USAGE)
    return 0
  }
  let registry: RegistryService
  try {
    registry = (await openRegistry(storageArgs, env)).registry
  } catch (error) {
    return failed(output, error)
  }
  try {
    const progress = plainProgress(output)
    const report = await reindex(registry, ({ repository, tags }) => { progress.line(`indexed ${repository} (${tags} tags)`) })
    if (values.json === true) {
      output.stdout(`${JSON.stringify(report, null, 2)}\n`)
    } else {
      output.stdout(`reindexed ${report.repositories} repositories, ${report.tags} tags, ${report.usage.totalBytes} bytes stored in ${report.durationMs} ms\n`)
    }
    return 0
  } catch (error) {
    return failed(output, error)
  } finally {
    await registry.close()
  }
}

export async function scrubMain (argv: readonly string[], env: Record<string, string | undefined>, output: Output): Promise<number> {
  const { values, storageArgs } = parseCommand(argv, { json: { type: 'boolean' }, full: { type: 'boolean' }, repository: { type: 'string' }, help: { type: 'boolean' } })
  if (values.help === true || argv.includes('-h')) {
    output.stdout(SCRUB_USAGE)
    return 0
  }
  if (values.repository === true || values.repository === '') {
    output.stderr(`--repository needs a glob\n\n${SCRUB_USAGE}`)
    return 2
  }
  let opened: { registry: RegistryService, config: ServerConfig }
  try {
    opened = await openRegistry(storageArgs, env)
  } catch (error) {
    return failed(output, error)
  }
  const { registry, config } = opened
  try {
    const progress = output.progress === undefined ? undefined : new Progress(output.progress, { label: 'scrub' })
    const lines = plainProgress(output)
    const settings = config.registry.scrub ?? {}
    const report = await scrub(registry, {
      trigger: 'cli',
      full: values.full === true,
      ...(typeof values.repository === 'string' ? { repository: values.repository } : {}),
      ...(settings.bytesPerSecond === undefined ? {} : { bytesPerSecond: settings.bytesPerSecond }),
      ...(settings.reverifySeconds === undefined ? {} : { reverifySeconds: settings.reverifySeconds }),
      progress: (step) => {
        if (progress === undefined) lines.line(`${step.phase} ${step.done}/${step.total} ${step.outcome} ${step.item}`)
        else progress.update({ phase: step.phase, done: step.done, total: step.total, bytes: step.bytes })
      }
    })
    progress?.done()
    if (values.json === true) {
      output.stdout(`${JSON.stringify(report, null, 2)}\n`)
    } else {
      output.stdout([
        `scrubbed ${report.blobsChecked} blobs (${report.bytesChecked} bytes), skipped ${report.blobsSkipped} verified recently, checked ${report.manifestsChecked} manifests in ${report.durationMs} ms`,
        ...report.corrupt.map((digest) => `corrupt, quarantined: ${digest}`),
        ...report.missingReferences.map((reference) => `missing reference: ${reference}`)
      ].join('\n') + '\n')
    }
    return report.corrupt.length > 0 || report.missingReferences.length > 0 ? 1 : 0
  } catch (error) {
    return failed(output, error)
  } finally {
    await registry.close()
  }
}
