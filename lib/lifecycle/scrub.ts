/**
 * The integrity scrub: re-hashes stored blobs against their digests and checks that every
 * manifest's references (config, layers, index children) are there.
 *
 * - Streaming: a blob is hashed as it is read, never held whole; `bytesPerSecond` throttles the
 *   reads so a scrub does not starve the registry's own traffic.
 * - Incremental: when a blob is verified, the time (with the blob's size and modification time)
 *   is recorded beside distribution's tree; a later run skips blobs verified within `reverify`
 *   whose data has not changed since. `full` hashes everything again.
 * - A blob whose bytes do not match its digest is quarantined: its data is moved aside (out of
 *   distribution's tree), every process's caches forget it, and so pulls answer 404 rather than
 *   wrong bytes, and the next push of that digest uploads it again. It is reported in the log,
 *   as a `blob.quarantined` event, and in the run's report (`scrub.completed`, the admin API).
 * - Only what the scrub finds is changed: a missing reference is reported, never repaired.
 */

import { randomUUID } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { Type, type Static } from '@sinclair/typebox'
import { Digester, isDigestString, isSupportedAlgorithm } from '../digest.js'
import { EMPTY_BLOB_DIGEST } from '../manifest/media-types.js'
import { parseManifest } from '../manifest/parse.js'
import { childNames, isPathNotFound, type FileInfo } from '../storage/driver.js'
import { digestParts, pathFor } from '../storage/paths.js'
import type { RegistryService } from '../storage/registry.js'
import type { EventOrigin } from '../events.js'
import type { RunTrigger, ScrubReport } from './reports.js'
import { readOnlyError } from '../policies.js'

/** The plugin option `scrub`: a scheduled scrub and the defaults of every run. */
export const ScrubOptionsSchema = Type.Object({
  enabled: Type.Optional(Type.Boolean({ default: false, description: 'Scrub on a schedule (default false).' })),
  intervalSeconds: Type.Optional(Type.Integer({ minimum: 1, default: 24 * 3600, description: 'Time between scheduled runs (default 24 hours).' })),
  bytesPerSecond: Type.Optional(Type.Integer({ minimum: 0, default: 0, description: 'Most bytes read per second while hashing; 0 is no limit (default 0).' })),
  reverifySeconds: Type.Optional(Type.Integer({ minimum: 0, default: 7 * 24 * 3600, description: 'A blob verified this recently, and unchanged since, is not hashed again (default one week).' }))
}, { additionalProperties: false, description: 'Integrity scrub: re-hash blobs, check manifests\' references, quarantine corrupt blobs.' })

export type ScrubOptions = Static<typeof ScrubOptionsSchema>

export interface ResolvedScrubOptions {
  enabled: boolean
  intervalSeconds: number
  bytesPerSecond: number
  reverifySeconds: number
}

const defaults = ScrubOptionsSchema.properties

export function resolveScrubOptions (options: ScrubOptions = {}): ResolvedScrubOptions {
  return {
    enabled: options.enabled ?? defaults.enabled.default,
    intervalSeconds: options.intervalSeconds ?? defaults.intervalSeconds.default,
    bytesPerSecond: options.bytesPerSecond ?? defaults.bytesPerSecond.default,
    reverifySeconds: options.reverifySeconds ?? defaults.reverifySeconds.default
  }
}

/** What a run reports as it goes: one call per blob hashed or skipped and per manifest checked. */
export type ScrubProgress = (step: {
  phase: 'blobs' | 'manifests'
  /** A blob digest, or a manifest as `repository@digest`. */
  item: string
  done: number
  total: number
  /** Bytes hashed so far. */
  bytes: number
  outcome: 'verified' | 'skipped' | 'corrupt' | 'checked' | 'missing'
}) => void

export interface ScrubLogger {
  info: (object: Record<string, unknown>, message: string) => void
  warn: (object: Record<string, unknown>, message: string) => void
}

export interface ScrubRunOptions {
  trigger: RunTrigger
  /** The report's id (default: a new UUID). */
  id?: string
  /** Only the repositories whose names match this glob (`*` within a component, `**` across), and the blobs they hold. */
  repository?: string
  /** Hash every blob, however recently verified. */
  full?: boolean
  bytesPerSecond?: number
  reverifySeconds?: number
  progress?: ScrubProgress
  log?: ScrubLogger
  origin?: EventOrigin
}

/** Reports kept in storage for the admin API. */
const KEPT_REPORTS = 10

/** A name glob as a regular expression: `**` spans components, `*` and `?` stay inside one. */
export function globPattern (glob: string): RegExp {
  let source = ''
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i] as string
    if (char === '*' && glob[i + 1] === '*') {
      source += '.*'
      i++
    } else if (char === '*') {
      source += '[^/]*'
    } else if (char === '?') {
      source += '[^/]'
    } else {
      source += char.replace(/[.+^${}()|[\]\\-]/g, '\\$&')
    }
  }
  return new RegExp(`^${source}$`)
}

interface VerifiedRecord {
  verifiedAt: string
  size: number
  modTime: string
}

async function readJson<T> (registry: RegistryService, path: string): Promise<T | undefined> {
  try {
    return JSON.parse((await registry.driver.getContent(path)).toString('utf8')) as T
  } catch (error) {
    if (isPathNotFound(error) || error instanceof SyntaxError) return undefined
    throw error
  }
}

async function digestsUnder (registry: RegistryService, root: string): Promise<string[]> {
  const digests: string[] = []
  for (const algorithm of await childNames(registry.driver, root)) {
    for (const hex of await childNames(registry.driver, `${root}/${algorithm}`)) digests.push(`${algorithm}:${hex}`)
  }
  return digests
}

/** Every blob in the store, from a walk of distribution's blobs directory. */
async function allBlobs (registry: RegistryService): Promise<string[]> {
  const root = pathFor({ kind: 'blobsRoot' })
  const found: string[] = []
  try {
    for await (const info of registry.driver.walk(root)) {
      const match = /^([^/]+)\/[^/]+\/([^/]+)\/data$/.exec(info.path.slice(root.length + 1))
      if (info.isDir || match === null) continue
      const digest = `${match[1] as string}:${match[2] as string}`
      if (isDigestString(digest)) found.push(digest)
    }
  } catch (error) {
    if (!isPathNotFound(error)) throw error
  }
  return found
}

/** Hashes a blob's data as it streams, no faster than `bytesPerSecond` when set. */
async function hashBlob (registry: RegistryService, digest: string, bytesPerSecond: number): Promise<string> {
  const { algorithm } = digestParts(digest)
  if (!isSupportedAlgorithm(algorithm)) throw new Error(`unsupported digest algorithm ${algorithm}`)
  const digester = new Digester(algorithm)
  const started = performance.now()
  const stream = await registry.driver.reader(pathFor({ kind: 'blobData', ...digestParts(digest) }))
  for await (const chunk of stream as AsyncIterable<Uint8Array>) {
    digester.update(chunk)
    if (bytesPerSecond > 0) {
      const due = (digester.size / bytesPerSecond) * 1000 - (performance.now() - started)
      if (due > 0) await delay(due)
    }
  }
  return digester.digest()
}

/**
 * Moves a corrupt blob's data aside and makes every process forget it. The blob directory stays:
 * a push of the digest that publishes good data meanwhile must not be removed with it.
 */
async function quarantine (registry: RegistryService, digest: string): Promise<void> {
  await registry.driver.move(pathFor({ kind: 'blobData', ...digestParts(digest) }), pathFor({ kind: 'quarantinedBlob', ...digestParts(digest) }))
  await registry.cache.blobsRemoved([digest])
  try {
    await registry.driver.delete(pathFor({ kind: 'scrubVerified', ...digestParts(digest) }))
  } catch (error) {
    if (!isPathNotFound(error)) throw error
  }
}

/** The last runs' reports, newest first. */
export async function readScrubReports (registry: RegistryService): Promise<ScrubReport[]> {
  return await readJson<ScrubReport[]>(registry, pathFor({ kind: 'scrubReports' })) ?? []
}

async function keepReport (registry: RegistryService, report: ScrubReport): Promise<void> {
  const reports = [report, ...await readScrubReports(registry)].slice(0, KEPT_REPORTS)
  await registry.driver.putContent(pathFor({ kind: 'scrubReports' }), JSON.stringify(reports))
}

/** Runs one scrub; resolves to its report once it is kept and announced. */
export async function scrub (registry: RegistryService, options: ScrubRunOptions): Promise<ScrubReport> {
  if (registry.readOnly) throw readOnlyError('scrub')
  const startedAt = new Date()
  const started = performance.now()
  const id = options.id ?? randomUUID()
  const bytesPerSecond = options.bytesPerSecond ?? defaults.bytesPerSecond.default
  const reverifyMs = 1000 * (options.reverifySeconds ?? defaults.reverifySeconds.default)
  const origin = options.origin ?? {}
  const report: ScrubReport = {
    id,
    trigger: options.trigger,
    startedAt: startedAt.toISOString(),
    durationMs: 0,
    blobsChecked: 0,
    bytesChecked: 0,
    blobsSkipped: 0,
    manifestsChecked: 0,
    corrupt: [],
    missingReferences: []
  }
  options.log?.info({ scrub: id, trigger: options.trigger, repository: options.repository }, 'scrub started')

  const pattern = options.repository === undefined ? undefined : globPattern(options.repository)
  const repositories = (await registry.catalog()).filter((name) => pattern === undefined || pattern.test(name))
  const revisions = new Map<string, string[]>()
  for (const name of repositories) revisions.set(name, await digestsUnder(registry, pathFor({ kind: 'manifestRevisionsRoot', name })))

  // Blobs first: a corrupt manifest is quarantined before the manifests are read.
  let blobs: string[]
  if (pattern === undefined) {
    blobs = await allBlobs(registry)
  } else {
    const held = new Set<string>()
    for (const name of repositories) {
      for (const digest of revisions.get(name) ?? []) held.add(digest)
      for (const digest of await digestsUnder(registry, pathFor({ kind: 'layersRoot', name }))) held.add(digest)
    }
    blobs = [...held].sort()
  }
  for (const [index, digest] of blobs.entries()) {
    const outcome = await checkBlob(registry, digest, { full: options.full === true, reverifyMs, bytesPerSecond }, report)
    if (outcome === 'corrupt') {
      options.log?.warn({ scrub: id, digest }, 'scrub: blob does not match its digest; quarantined')
      await registry.events.emit({ type: 'blob.quarantined', time: new Date(), origin, digest, reason: 'content does not match the digest' })
    }
    if (outcome !== 'gone') options.progress?.({ phase: 'blobs', item: digest, done: index + 1, total: blobs.length, bytes: report.bytesChecked, outcome })
  }

  const manifestCount = [...revisions.values()].reduce((total, list) => total + list.length, 0)
  let done = 0
  for (const name of repositories) {
    for (const digest of revisions.get(name) ?? []) {
      const missing = await checkManifest(registry, name, digest)
      report.manifestsChecked++
      for (const reference of missing) report.missingReferences.push(`${name}@${digest} -> ${reference}`)
      if (missing.length > 0) options.log?.warn({ scrub: id, repository: name, digest, missing }, 'scrub: manifest references something missing')
      options.progress?.({ phase: 'manifests', item: `${name}@${digest}`, done: ++done, total: manifestCount, bytes: report.bytesChecked, outcome: missing.length > 0 ? 'missing' : 'checked' })
    }
  }

  report.durationMs = Math.round(performance.now() - started)
  await keepReport(registry, report)
  options.log?.info({ scrub: id, report: { ...report, corrupt: report.corrupt.length, missingReferences: report.missingReferences.length } }, 'scrub completed')
  await registry.events.emit({ type: 'scrub.completed', time: new Date(), origin, report })
  return report
}

async function checkBlob (
  registry: RegistryService,
  digest: string,
  options: { full: boolean, reverifyMs: number, bytesPerSecond: number },
  report: ScrubReport
): Promise<'verified' | 'skipped' | 'corrupt' | 'gone'> {
  const parts = digestParts(digest)
  let info: FileInfo
  try {
    info = await registry.driver.stat(pathFor({ kind: 'blobData', ...parts }))
  } catch (error) {
    // Removed since it was listed (a collection), or only linked: the manifest phase reports what is missing.
    if (isPathNotFound(error)) return 'gone'
    throw error
  }
  if (info.isDir) return 'gone'
  const recordPath = pathFor({ kind: 'scrubVerified', ...parts })
  if (!options.full) {
    const record = await readJson<VerifiedRecord>(registry, recordPath)
    if (record !== undefined && record.size === info.size && record.modTime === info.modTime.toISOString() &&
      Date.now() - Date.parse(record.verifiedAt) < options.reverifyMs) {
      report.blobsSkipped++
      return 'skipped'
    }
  }
  let computed: string
  try {
    computed = await hashBlob(registry, digest, options.bytesPerSecond)
  } catch (error) {
    if (isPathNotFound(error)) return 'gone'
    throw error
  }
  report.blobsChecked++
  report.bytesChecked += info.size
  if (computed !== digest) {
    await quarantine(registry, digest)
    report.corrupt.push(digest)
    return 'corrupt'
  }
  const record: VerifiedRecord = { verifiedAt: new Date().toISOString(), size: info.size, modTime: info.modTime.toISOString() }
  await registry.driver.putContent(recordPath, JSON.stringify(record))
  return 'verified'
}

/** What a manifest names that its repository does not hold; its own bytes missing or unreadable counts too. */
async function checkManifest (registry: RegistryService, name: string, digest: string): Promise<string[]> {
  const repository = registry.repository(name)
  let content: Buffer
  try {
    content = await registry.blobs.getContent(digest)
  } catch {
    return [digest]
  }
  let blobs: string[]
  let children: string[]
  try {
    const parsed = parseManifest(content, undefined)
    blobs = parsed.blobs.map((blob) => blob.digest)
    children = parsed.manifests.map((child) => child.digest)
  } catch {
    // Unparseable bytes under a verified digest: stored as they were pushed; nothing to follow.
    return []
  }
  const missing: string[] = []
  for (const blob of new Set(blobs)) {
    if (blob !== EMPTY_BLOB_DIGEST && !await repository.blobs.isStoredHere(blob)) missing.push(blob)
  }
  for (const child of new Set(children)) {
    if (!await repository.manifests.exists(child)) missing.push(child)
  }
  return missing
}
