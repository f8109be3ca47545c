/**
 * `npm run bench`: our example server against CNCF distribution 2.8.2 on this machine, side by
 * side in one run. Each round runs every case against both servers, alternating which goes
 * first; the report gives per-case medians with min and max, the ratio ours/reference, and each
 * server's peak RSS and CPU seconds. `--help` lists the options.
 */

import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, freemem, release, tmpdir, totalmem } from 'node:os'
import { dirname, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { CASES, MiB, TargetState, Unsupported, roundContent, type Settings } from './cases.js'
import { LIMITS } from './limits.js'
import { Usage, rssBytes } from './proc.js'
import { startOurs, startReference, type Target, type TargetName } from './targets.js'

const HELP = `Usage: npm run bench -- [options]

  --rounds <n>          rounds; each runs every case on both servers (default 3)
  --cases <list>        comma-separated cases, or "limits" for all machine limits
                        (default: every case and every limit)
                        cases: ${CASES.map((c) => c.name).join(', ')}
                        limits: ${LIMITS.map((c) => c.name).join(', ')}
  --size <bytes>        size of the big blob, with K, M or G (binary) (default 1G)
  --duration <s>        length of each timed load case (default 10)
  --connections <n>     connections of the load cases (default 64)
  --workers <n>         our server's --workers (default 2)
  --targets <list>      ours,reference (default both)
  --dir <dir>           where the storage roots are made (default the system temp dir)
  --out <file>          JSON results (default bench/results/latest.json)
  --profile <dir>       run our server with node --cpu-prof, profiles written to <dir>
  --node-args <args>    more node flags for our server, space-separated
`

function parseSize (text: string): number {
  const match = /^(\d+(?:\.\d+)?)([KMG]?)i?B?$/i.exec(text.trim())
  if (match === null) throw new Error(`--size: cannot read "${text}"`)
  const unit = { '': 1, K: 1024, M: MiB, G: 1024 * MiB }[(match[2] as string).toUpperCase() as '' | 'K' | 'M' | 'G']
  const size = Math.round(Number(match[1]) * unit)
  if (size < MiB) throw new Error('--size: at least 1M (the range reads are 1 MiB)')
  return size
}

function positive (text: string, name: string): number {
  const value = Number(text)
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}: expected a positive number, got "${text}"`)
  return value
}

interface Outcome {
  status: 'ok' | 'failed' | 'unsupported'
  value?: number
  extras?: Record<string, number>
  error?: string
  cpuSeconds?: number
  peakRss?: number
  idleRss?: number
}

interface Summary {
  status: 'ok' | 'failed' | 'unsupported'
  error?: string
  median?: number
  min?: number
  max?: number
  values: number[]
  extras: Record<string, number>
  cpuSeconds?: number
  peakRss?: number
  /** Largest peak minus the idle RSS measured just before the same run. */
  peakOverIdle?: number
}

function median (values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] as number : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

function summarize (outcomes: readonly Outcome[]): Summary {
  const failed = outcomes.find((outcome) => outcome.status === 'failed')
  if (failed !== undefined) return { status: 'failed', error: failed.error ?? 'failed', values: [], extras: {} }
  const unsupported = outcomes.find((outcome) => outcome.status === 'unsupported')
  if (unsupported !== undefined || outcomes.length === 0) return { status: 'unsupported', error: unsupported?.error ?? 'not run', values: [], extras: {} }
  const values = outcomes.map((outcome) => outcome.value as number)
  const extras: Record<string, number> = {}
  for (const key of Object.keys(outcomes[0]?.extras ?? {})) extras[key] = median(outcomes.map((outcome) => outcome.extras?.[key] ?? NaN))
  const summary: Summary = { status: 'ok', median: median(values), min: Math.min(...values), max: Math.max(...values), values, extras }
  const measured = outcomes.filter((outcome) => outcome.peakRss !== undefined)
  if (measured.length > 0) {
    summary.cpuSeconds = median(measured.map((outcome) => outcome.cpuSeconds as number))
    summary.peakRss = Math.max(...measured.map((outcome) => outcome.peakRss as number))
    summary.peakOverIdle = Math.max(...measured.map((outcome) => (outcome.peakRss as number) - (outcome.idleRss as number)))
  }
  return summary
}

function fmt (value: number | undefined): string {
  if (value === undefined || Number.isNaN(value)) return '-'
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US')
  if (Math.abs(value) >= 10) return value.toFixed(1)
  return value.toFixed(2)
}

const mb = (bytes: number | undefined): string => bytes === undefined ? '-' : `${Math.round(bytes / MiB)}`

function table (rows: string[][]): string {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? []
  return rows.map((row) => row.map((cell, column) => column === 0 ? cell.padEnd(widths[column] as number) : cell.padStart(widths[column] as number)).join('  ')).join('\n')
}

function cell (summary: Summary | undefined): string {
  if (summary === undefined) return '-'
  if (summary.status !== 'ok') return summary.status.toUpperCase()
  return `${fmt(summary.median)} (${fmt(summary.min)}-${fmt(summary.max)})`
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      cases: { type: 'string' },
      size: { type: 'string', default: '1G' },
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '64' },
      workers: { type: 'string', default: '2' },
      targets: { type: 'string', default: 'ours,reference' },
      dir: { type: 'string', default: tmpdir() },
      out: { type: 'string', default: 'bench/results/latest.json' },
      profile: { type: 'string' },
      'node-args': { type: 'string', default: '' },
      help: { type: 'boolean', default: false }
    }
  })
  if (values.help === true) {
    process.stdout.write(HELP)
    return
  }
  const settings: Settings = {
    size: parseSize(values.size as string),
    durationMs: positive(values.duration as string, '--duration') * 1000,
    connections: Math.floor(positive(values.connections as string, '--connections'))
  }
  const rounds = Math.floor(positive(values.rounds as string, '--rounds'))
  const workers = Math.floor(positive(values.workers as string, '--workers'))
  const requested = (values.cases ?? [...CASES, ...LIMITS].map((c) => c.name).join(',')).split(',').map((name) => name.trim()).filter((name) => name !== '')
  const names = new Set(requested.flatMap((name) => name === 'limits' ? LIMITS.map((c) => c.name) : [name]))
  for (const name of names) {
    if (![...CASES, ...LIMITS].some((c) => c.name === name)) throw new Error(`--cases: unknown case "${name}"`)
  }
  const cases = CASES.filter((c) => names.has(c.name))
  const limits = LIMITS.filter((c) => names.has(c.name))
  const targetNames = (values.targets as string).split(',').map((name) => name.trim()) as TargetName[]
  for (const name of targetNames) {
    if (name !== 'ours' && name !== 'reference') throw new Error(`--targets: unknown target "${name}"`)
  }
  const dir = resolve(values.dir as string)
  const nodeArgs = [
    ...(values.profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${resolve(values.profile)}`]),
    ...(values['node-args'] as string).split(' ').filter((arg) => arg !== '')
  ]

  const log = (text: string): void => { process.stderr.write(`${text}\n`) }
  log(`bench: ${rounds} round(s), cases ${[...names].join(', ')}; big blob ${settings.size} bytes, load ${settings.durationMs / 1000} s at ${settings.connections} connections`)

  const targets: Target[] = []
  const states: TargetState[] = []
  const outcomes = new Map<string, Map<TargetName, Outcome[]>>()
  const limitOutcomes = new Map<string, Outcome[]>()
  const idleByRound: Record<string, number[]> = {}
  const record = (caseName: string, target: TargetName, outcome: Outcome): void => {
    const byTarget = outcomes.get(caseName) ?? new Map<TargetName, Outcome[]>()
    outcomes.set(caseName, byTarget)
    byTarget.set(target, [...(byTarget.get(target) ?? []), outcome])
  }
  try {
    if (cases.length > 0) {
      for (const name of targetNames) {
        const target = name === 'ours' ? await startOurs({ dir, workers, nodeArgs }) : await startReference({ dir })
        targets.push(target)
        states.push(new TargetState(target, settings.connections))
        idleByRound[name] = [rssBytes(target.pids())]
        log(`bench: ${name} at ${target.origin}: ${target.description}`)
      }
    }
    for (let round = 1; round <= rounds; round++) {
      const content = roundContent(settings)
      // Alternate who goes first, so that neither always inherits the other's dirty pages.
      const order = round % 2 === 1 ? states : [...states].reverse()
      for (const definition of cases) {
        for (const state of order) {
          const { target } = state
          if (!target.alive()) {
            record(definition.name, target.name, { status: 'failed', error: 'the server is not running' })
            continue
          }
          let outcome: Outcome
          let usage: Usage | undefined
          try {
            await definition.prepare?.(state, content)
            usage = new Usage(target.pids())
            const figure = await definition.run(state, content, settings)
            outcome = { status: 'ok', value: figure.value, extras: figure.extras }
          } catch (error) {
            outcome = error instanceof Unsupported
              ? { status: 'unsupported', error: error.message }
              : { status: 'failed', error: error instanceof Error ? error.message : String(error) }
          }
          const used = usage?.stop()
          if (outcome.status === 'ok' && used !== undefined) Object.assign(outcome, { cpuSeconds: used.cpuSeconds, peakRss: used.peakRss, idleRss: used.idleRss })
          record(definition.name, target.name, outcome)
          log(`round ${round} ${definition.name} ${target.name}: ${outcome.status === 'ok' ? `${fmt(outcome.value)} ${definition.unit} ${Object.entries(outcome.extras ?? {}).map(([k, v]) => `${k} ${fmt(v)}`).join(' ')}, peak RSS ${mb(used?.peakRss)} MiB (idle ${mb(used?.idleRss)}), CPU ${fmt(used?.cpuSeconds)} s` : `${outcome.status}: ${outcome.error ?? ''}`}`)
        }
      }
      for (const definition of limits) {
        let outcome: Outcome
        try {
          const figure = await definition.run(settings, dir)
          outcome = { status: 'ok', value: figure.value, extras: figure.extras }
        } catch (error) {
          outcome = { status: 'failed', error: error instanceof Error ? error.message : String(error) }
        }
        limitOutcomes.set(definition.name, [...(limitOutcomes.get(definition.name) ?? []), outcome])
        log(`round ${round} ${definition.name}: ${outcome.status === 'ok' ? `${fmt(outcome.value)} ${definition.unit}` : `failed: ${outcome.error ?? ''}`}`)
      }
      for (const state of states) {
        await state.reclaim()
        idleByRound[state.target.name]?.push(rssBytes(state.target.pids()))
      }
    }
  } finally {
    for (const state of states) await state.client.close()
    for (const target of targets) await target.stop()
  }

  const report = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryBytes: totalmem(), freeMemoryBytes: freemem(), kernel: release(), node: process.version },
    settings: { rounds, workers, ...settings, cases: [...names] },
    targets: Object.fromEntries(targets.map((target) => [target.name, target.description])),
    cases: cases.map((definition) => {
      const byTarget = outcomes.get(definition.name)
      const summaries = Object.fromEntries(targetNames.map((name) => [name, summarize(byTarget?.get(name) ?? [])]))
      const ours = summaries.ours
      const reference = summaries.reference
      const ratio = ours?.status === 'ok' && reference?.status === 'ok' ? (ours.median as number) / (reference.median as number) : undefined
      return { name: definition.name, unit: definition.unit, description: definition.description, ratio, results: summaries, rounds: Object.fromEntries(targetNames.map((name) => [name, byTarget?.get(name) ?? []])) }
    }),
    limits: limits.map((definition) => ({ name: definition.name, unit: definition.unit, description: definition.description, result: summarize(limitOutcomes.get(definition.name) ?? []) })),
    idleRssByRound: idleByRound
  }

  const out = resolve(values.out as string)
  await mkdir(dirname(out), { recursive: true })
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`)

  const lines: string[] = []
  if (report.cases.length > 0) {
    const rows = [['case', 'unit', ...targetNames.map((name) => `${name} median (min-max)`), 'ours/ref', ...targetNames.flatMap((name) => [`${name} peak/idle+ MiB`, `${name} CPU s`])]]
    for (const result of report.cases) {
      rows.push([result.name, result.unit, ...targetNames.map((name) => cell(result.results[name])), result.ratio === undefined ? '-' : `${result.ratio.toFixed(2)}x`,
        ...targetNames.flatMap((name) => {
          const summary = result.results[name]
          return [summary?.status === 'ok' ? `${mb(summary.peakRss)}/+${mb(summary.peakOverIdle)}` : '-', fmt(summary?.cpuSeconds)]
        })])
      const extraKeys = Object.keys(targetNames.map((name) => result.results[name]).find((summary) => summary?.status === 'ok')?.extras ?? {})
      for (const key of extraKeys) {
        const ours = result.results.ours?.extras[key]
        const reference = result.results.reference?.extras[key]
        rows.push([`  ${key}`, '', ...targetNames.map((name) => fmt(result.results[name]?.extras[key])), ours !== undefined && reference !== undefined ? `${(ours / reference).toFixed(2)}x` : '-', ...targetNames.flatMap(() => ['', ''])])
      }
    }
    lines.push(table(rows))
    for (const result of report.cases) {
      for (const name of targetNames) {
        const summary = result.results[name]
        if (summary !== undefined && summary.status !== 'ok') lines.push(`${result.name} on ${name}: ${summary.status}: ${summary.error ?? ''}`)
      }
    }
    lines.push(`idle RSS (MiB) at start and after each round: ${Object.entries(idleByRound).map(([name, list]) => `${name} ${list.map(mb).join(', ')}`).join('; ')}`)
  }
  if (report.limits.length > 0) {
    lines.push('', table([['limit', 'unit', 'median (min-max)', 'what'], ...report.limits.map((limit) => [limit.name, limit.unit, cell(limit.result), limit.description])]))
  }
  lines.push('', `${report.machine.cpus} x ${report.machine.cpuModel ?? '?'}, ${mb(report.machine.memoryBytes)} MiB, Linux ${report.machine.kernel}, node ${report.machine.node}; results in ${out}`)
  process.stdout.write(`${lines.join('\n')}\n`)
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  process.exit(1)
})
