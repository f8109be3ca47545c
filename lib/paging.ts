/** Paging of sorted lists with `n` and `last`, as tags, catalog and referrers use it. */

import { RegistryError } from './errors.js'

export interface PageRequest {
  /** Most items to return; undefined for all. */
  n?: number
  /** Return items lexically after this one. */
  last?: string
}

export interface Page<T> {
  items: T[]
  /** The `last` of the next page, when more items remain. */
  next?: string
}

/** Parses the `n` query parameter: a non-negative integer, else PAGINATION_NUMBER_INVALID. */
export function parsePageSize (value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  if (!/^[0-9]{1,9}$/.test(value)) throw new RegistryError('PAGINATION_NUMBER_INVALID', { n: value })
  return Number(value)
}

/** One page of `items` (sorted by `key`), after `last`, at most `n` long. */
export function paginate<T> (items: readonly T[], key: (item: T) => string, request: PageRequest): Page<T> {
  let start = 0
  if (request.last !== undefined) {
    const last = request.last
    // Binary search for the first item after `last`.
    let low = 0
    let high = items.length
    while (low < high) {
      const mid = (low + high) >>> 1
      if (key(items[mid] as T) <= last) low = mid + 1
      else high = mid
    }
    start = low
  }
  const end = request.n === undefined ? items.length : Math.min(items.length, start + request.n)
  const page: Page<T> = { items: items.slice(start, end) }
  if (end < items.length && end > start) page.next = key(items[end - 1] as T)
  return page
}

/** Code-unit order, the lexical order the spec means (not locale order). */
export function compareLexically (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
