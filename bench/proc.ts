/**
 * What a server process costs, read from /proc: the processes of a server (a cluster primary
 * and its workers), their CPU time and their resident memory, peak included.
 */

import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux, asked once). */
const TICKS = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function statFields (pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return text.slice(text.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/** The process and all its descendants. */
export function processTree (root: number): number[] {
  const children = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const fields = statFields(Number(entry))
    if (fields === undefined) continue
    const parent = Number(fields[1])
    const list = children.get(parent) ?? []
    list.push(Number(entry))
    children.set(parent, list)
  }
  const tree: number[] = []
  const pending = [root]
  while (pending.length > 0) {
    const pid = pending.pop() as number
    tree.push(pid)
    pending.push(...(children.get(pid) ?? []))
  }
  return tree
}

/** User plus system CPU seconds of the processes (0 for one that is gone). */
export function cpuSeconds (pids: readonly number[]): number {
  let ticks = 0
  for (const pid of pids) {
    const fields = statFields(pid)
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command name.
    if (fields !== undefined) ticks += Number(fields[11]) + Number(fields[12])
  }
  return ticks / TICKS
}

function statusKiB (pid: number, key: 'VmRSS' | 'VmHWM'): number {
  try {
    const match = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match === null ? 0 : Number(match[1])
  } catch {
    return 0
  }
}

/** Resident set size of the processes together, in bytes. */
export function rssBytes (pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + statusKiB(pid, 'VmRSS'), 0) * 1024
}

/** Sum of the processes' peak resident sizes since start or the last reset, in bytes. */
export function peakRssBytes (pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + statusKiB(pid, 'VmHWM'), 0) * 1024
}

/** Resets the peak resident size of each process to its current size (Linux clear_refs 5). */
export function resetPeak (pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5')
    } catch {
      // Not permitted, or gone: the peak then counts from the process's start.
    }
  }
}

/**
 * Watches a server while a case runs: CPU seconds spent, and the peak resident size, both
 * as the sum over its processes. For one process the peak is the kernel's high water mark
 * (exact); for several it is the largest sum sampled every 50 ms, since adding up each
 * process's own peak would count peaks reached at different times as one.
 */
export class Usage {
  private readonly cpuStart: number
  private sampledPeak: number
  private readonly timer: NodeJS.Timeout
  readonly idleRss: number

  constructor (private readonly pids: readonly number[], intervalMs = 50) {
    resetPeak(pids)
    this.idleRss = rssBytes(pids)
    this.sampledPeak = this.idleRss
    this.cpuStart = cpuSeconds(pids)
    this.timer = setInterval(() => {
      this.sampledPeak = Math.max(this.sampledPeak, rssBytes(this.pids))
    }, intervalMs)
  }

  stop (): { cpuSeconds: number, peakRss: number, idleRss: number, endRss: number } {
    clearInterval(this.timer)
    const endRss = rssBytes(this.pids)
    return {
      cpuSeconds: cpuSeconds(this.pids) - this.cpuStart,
      peakRss: Math.max(this.sampledPeak, endRss, this.pids.length === 1 ? peakRssBytes(this.pids) : 0),
      idleRss: this.idleRss,
      endRss
    }
  }
}
