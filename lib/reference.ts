/**
 * The grammar of repository names, tags and references from the OCI Distribution Spec.
 * Every other module validates names and tags through this one.
 */

import { RegistryError } from './errors.js'
import { parseDigest } from './digest.js'

/** One path component of a repository name. */
export const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*'
/** A repository name: components separated by `/`. */
export const NAME_PATTERN = `${NAME_COMPONENT}(?:/${NAME_COMPONENT})*`
/** A tag. */
export const TAG_PATTERN = '[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}'
/**
 * An upload id, as this registry makes them (UUIDs) and as distribution makes them. Every id
 * of this grammar is also a valid storage path segment (letters, digits, `_`, `-`: never `.`
 * or `..`), so a malformed id is refused as unknown before it can reach storage.
 */
export const UPLOAD_ID_PATTERN = '[A-Za-z0-9_-]{1,128}'
/**
 * The longest name accepted. The spec bounds the name with the registry host at 255
 * characters; like CNCF distribution we bound the repository path itself.
 */
export const MAX_NAME_LENGTH = 255

const nameRegex = new RegExp(`^${NAME_PATTERN}$`)
const tagRegex = new RegExp(`^${TAG_PATTERN}$`)

export function isValidName (name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && nameRegex.test(name)
}

export function isValidTag (tag: string): boolean {
  return tagRegex.test(tag)
}

/** Throws NAME_INVALID unless `name` is a valid repository name. */
export function assertName (name: string): string {
  if (name.length > MAX_NAME_LENGTH) {
    throw new RegistryError('NAME_INVALID', { name: name.slice(0, 64) + '...', reason: `longer than ${MAX_NAME_LENGTH} characters` })
  }
  if (!isValidName(name)) {
    throw new RegistryError('NAME_INVALID', { name, reason: 'does not match the repository name grammar' })
  }
  return name
}

/** Throws TAG_INVALID unless `tag` is a valid tag. */
export function assertTag (tag: string): string {
  if (!isValidTag(tag)) throw new RegistryError('TAG_INVALID', { tag, reason: `does not match ${TAG_PATTERN}` })
  return tag
}

export type Reference = { kind: 'tag', tag: string } | { kind: 'digest', digest: string }

/** A manifest reference is a digest when it has the digest's shape, otherwise a tag. */
export function parseReference (reference: string): Reference {
  if (reference.includes(':')) return { kind: 'digest', digest: parseDigest(reference).digest }
  return { kind: 'tag', tag: assertTag(reference) }
}
