/**
 * Policy hooks of the write path: each change to a repository is shown to every hook before it
 * is committed, and a hook refuses it by throwing a `RegistryError` (the client gets that error,
 * and nothing is stored). Read-only mode is one; immutable tags and quotas register here too.
 *
 * Hooks see a change as early as the registry knows it: an upload is checked when it starts,
 * at each chunk and before its last bytes are read; a manifest once it is parsed and validated,
 * so a hook can look at its digest, media type, size, tags and references.
 */

import { RegistryError } from './errors.js'
import type { EventOrigin } from './events.js'

interface ChangeBase {
  repository: string
  origin: EventOrigin
}

export type RepositoryChange = ChangeBase & (
  | { action: 'upload.start' }
  | { action: 'upload.append', uuid: string }
  | { action: 'upload.cancel', uuid: string }
  /** Completing an upload (or a one-request upload): the blob is about to be published and linked. */
  | { action: 'blob.push', digest: string }
  | { action: 'blob.mount', digest: string, from?: string }
  | { action: 'blob.delete', digest: string }
  | { action: 'manifest.put', digest: string, mediaType: string, size: number, tags: string[], subject?: string, references: string[] }
  | { action: 'manifest.delete', digest: string }
  | { action: 'tag.delete', tag: string }
)

export type ChangeAction = RepositoryChange['action']

/** A policy hook: returns to allow the change, throws a `RegistryError` to refuse it. */
export type PolicyHook = (change: RepositoryChange) => void | Promise<void>

/** The hooks on the registry (`app.ociRegistry.policies`), run in registration order. */
export class Policies {
  private hooks: PolicyHook[] = []

  /** Adds a hook; returns a function that removes it. */
  add (hook: PolicyHook): () => void {
    this.hooks = [...this.hooks, hook]
    return () => { this.hooks = this.hooks.filter((entry) => entry !== hook) }
  }

  /** Runs every hook; the first refusal is thrown. */
  async check (change: RepositoryChange): Promise<void> {
    for (const hook of this.hooks) await hook(change)
  }
}

/**
 * Read-only mode (distribution's `storage.maintenance.readonly`): refuses every change while
 * `isReadOnly()` is true; reads go on. Switchable at run time.
 */
export function readOnlyPolicy (isReadOnly: () => boolean): PolicyHook {
  return (change) => {
    if (isReadOnly()) throw readOnlyError(change.action)
  }
}

/** distribution's answer to a change while read-only: 405 UNSUPPORTED. */
export function readOnlyError (action: string): RegistryError {
  return new RegistryError('UNSUPPORTED', { reason: 'the registry is in read-only mode', action }, { statusCode: 405 })
}
