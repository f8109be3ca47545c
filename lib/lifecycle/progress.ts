/**
 * Progress of a long command (gc, scrub) on its error stream: on a terminal, one line redrawn in
 * place with a moving bar, the repositories and bytes walked and the throughput; elsewhere (a
 * pipe, a log collector), a plain line now and then and at each change of phase. The total is
 * not known before the walk ends, so the bar shows activity, not a fraction.
 */

export interface ProgressStream {
  write: (text: string) => unknown
  isTTY?: boolean
  columns?: number
}

export interface ProgressCounts {
  /** What the command is doing (`mark`, `sweep`, `blobs`). */
  phase: string
  /** Repositories walked, for a command that walks them. */
  repositories?: number
  /** Items of the phase done, out of `total`, for a command that knows its total. */
  done?: number
  total?: number
  bytes: number
}

export interface ProgressOptions {
  /** Names the command on each line. */
  label: string
  /** Redraw on a terminal at most this often (default 100 ms). */
  ttyIntervalMs?: number
  /** A plain line at most this often (default 10 s). */
  plainIntervalMs?: number
  /** The clock; replaced in tests. */
  now?: () => number
}

const BAR_WIDTH = 20
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

/** 1536 → `1.5 KiB`. */
export function formatBytes (bytes: number): string {
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024
    unit++
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${UNITS[unit] as string}`
}

export class Progress {
  private readonly tty: boolean
  private readonly now: () => number
  private readonly started: number
  private last = -Infinity
  private lastPhase: string | undefined
  private frame = 0
  private drawn = false

  constructor (private readonly stream: ProgressStream, private readonly options: ProgressOptions) {
    this.tty = stream.isTTY === true
    this.now = options.now ?? Date.now
    this.started = this.now()
  }

  /** The line for these counts, as printed (without the terminal's control characters). */
  line (counts: ProgressCounts): string {
    const seconds = Math.max(0.001, (this.now() - this.started) / 1000)
    const facts = [
      `${counts.phase}:`,
      ...(counts.total === undefined ? [] : [`${counts.done ?? 0}/${counts.total},`]),
      ...(counts.repositories === undefined ? [] : [`${counts.repositories} repositories,`]),
      `${formatBytes(counts.bytes)} walked, ${formatBytes(counts.bytes / seconds)}/s`
    ].join(' ')
    if (!this.tty) return `${this.options.label} ${facts}`
    const position = this.frame % (2 * BAR_WIDTH - 2)
    const at = position < BAR_WIDTH ? position : 2 * BAR_WIDTH - 2 - position
    const bar = Array.from({ length: BAR_WIDTH }, (_, i) => (Math.abs(i - at) <= 1 ? '=' : ' ')).join('')
    return `${this.options.label} [${bar}] ${facts}`
  }

  update (counts: ProgressCounts): void {
    const now = this.now()
    const changed = counts.phase !== this.lastPhase
    const interval = this.tty ? (this.options.ttyIntervalMs ?? 100) : (this.options.plainIntervalMs ?? 10_000)
    if (!changed && now - this.last < interval) return
    this.last = now
    this.lastPhase = counts.phase
    this.frame++
    if (this.tty) {
      const width = this.stream.columns ?? 80
      this.stream.write(`\r${this.line(counts).slice(0, width - 1)}\x1b[K`)
      this.drawn = true
    } else {
      this.stream.write(`${this.line(counts)}\n`)
    }
  }

  /** Ends the redrawn line so that what follows starts on its own. */
  done (): void {
    if (this.tty && this.drawn) this.stream.write('\r\x1b[K')
  }
}
