/**
 * Segmented files: how a file that grew over several writers is kept in S3, where objects cannot
 * be appended to. The file's segments are completed objects named `<key>~<id>` (`~` is not a
 * path character, so they are never listed as files), and at `<key>` a small index object,
 * marked by user metadata that also holds the file's size, names them in order. Every segment
 * but the last is at least 5 MiB (S3's smallest part), so that a multipart copy can join them
 * into one plain object. This file is the format only; the I/O is in objects.ts.
 */

import { randomBytes } from 'node:crypto'

/** User metadata marking an index object; its value is the file's size. */
export const SEGMENTED_META = 'registry-segmented-size'
export const SEGMENT_SEPARATOR = '~'

export interface Segment {
  key: string
  size: number
}

/** What a HEAD or GET tells of a key. */
export interface ObjectInfo {
  /** The file's size: the object's, or the sum of its segments' for an index. */
  size: number
  modTime: Date
  /** Segments when the key holds an index. */
  segmented: boolean
  etag?: string
}

interface SegmentIndex {
  segments: Array<[string, number]>
}

export function infoOf (length: number | undefined, modified: Date | undefined, metadata: Record<string, string> | undefined): ObjectInfo {
  const segmented = metadata?.[SEGMENTED_META]
  return {
    size: segmented === undefined ? (length ?? 0) : Number(segmented),
    modTime: modified ?? new Date(),
    segmented: segmented !== undefined
  }
}

/** The key prefix of a file's segments. */
export function segmentPrefix (key: string): string {
  return `${key}${SEGMENT_SEPARATOR}`
}

/** A fresh key for a segment of the file at `key`. */
export function newSegmentKey (key: string): string {
  return `${segmentPrefix(key)}${randomBytes(8).toString('hex')}`
}

export function totalSize (segments: Segment[]): number {
  return segments.reduce((sum, segment) => sum + segment.size, 0)
}

/** The index object of a file of `segments`: its body and metadata. */
export function encodeIndex (key: string, segments: Segment[]): { body: Buffer, metadata: Record<string, string> } {
  const prefix = segmentPrefix(key)
  const index: SegmentIndex = { segments: segments.map((segment) => [segment.key.slice(prefix.length), segment.size]) }
  return { body: Buffer.from(JSON.stringify(index)), metadata: { [SEGMENTED_META]: String(totalSize(segments)) } }
}

/** The segments an index names; undefined when the body is not an index. */
export function decodeIndex (key: string, body: Buffer): Segment[] | undefined {
  let index: SegmentIndex
  try {
    index = JSON.parse(body.toString('utf8')) as SegmentIndex
  } catch {
    return undefined
  }
  if (!Array.isArray(index?.segments)) return undefined
  return index.segments.map(([id, size]) => ({ key: `${segmentPrefix(key)}${id}`, size }))
}

/**
 * The file a listed key belongs to, when it is a segment (`dir/name~id` → `dir/name`);
 * undefined for any other key.
 */
export function fileOfSegment (name: string): string | undefined {
  const separator = name.indexOf(SEGMENT_SEPARATOR)
  return separator > 0 ? name.slice(0, separator) : undefined
}
