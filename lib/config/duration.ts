/**
 * Durations as Go writes them (`90s`, `10m`, `1h30m`, `168h`, `0`), the form CNCF distribution's
 * configuration uses, so that a `config.yml` written for it reads the same here.
 */

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

const PART = /([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)/y

/** A Go duration, e.g. `90s`, `2h10m` or `0`. */
export const DURATION_PATTERN = '^(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$'

export const DURATION_HINT = 'a duration such as 90s, 10m or 168h'

/** Milliseconds of a Go duration (rounded), or undefined when the text is not one. */
export function parseDuration (text: string): number | undefined {
  if (text === '0') return 0
  let total = 0
  let index = 0
  PART.lastIndex = 0
  while (index < text.length) {
    PART.lastIndex = index
    const match = PART.exec(text)
    if (match === null) return undefined
    total += Number(match[1]) * (UNIT_MS[match[2] as string] as number)
    index = PART.lastIndex
  }
  return index === 0 ? undefined : Math.round(total)
}

/** The shortest Go form of a whole number of milliseconds, for help texts and tables. */
export function formatDuration (ms: number): string {
  if (ms === 0) return '0'
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`
  }
  return `${ms}ms`
}
