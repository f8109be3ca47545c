/**
 * Access records and grants, in the vocabulary of the Docker token specification: a resource
 * is a `type` (`repository`, `registry`) and a `name`; actions are `pull`, `push`, `delete`, or
 * `*` for any. What a request needs comes from its route descriptor; what a caller has comes
 * from the authentication mode (everything, or a token's `access` claim).
 */

import type { Access } from '../routes.js'
import { isValidName } from '../reference.js'

/** One action on one resource, as a request needs it. */
export interface AccessRecord {
  type: string
  name: string
  action: string
}

/** Actions on one resource, as a token's `access` claim lists them. */
export interface ResourceActions {
  type: string
  name: string
  actions: string[]
}

/**
 * The resource type without its class: the spec deprecates classes and treats
 * `repository(plugin)` as `repository`.
 */
export function resourceType (type: string): string {
  const open = type.indexOf('(')
  return open === -1 ? type : type.slice(0, open)
}

/** The record of the registry's administration (extension routes of access `admin`). */
export const ADMIN_RECORD: AccessRecord = Object.freeze({ type: 'registry', name: 'admin', action: '*' })

function isAdminRecord (type: string, name: string): boolean {
  return resourceType(type) === ADMIN_RECORD.type && name === ADMIN_RECORD.name
}

/**
 * The records a request needs for a descriptor's access level on a repository. Like CNCF
 * distribution, a write needs `pull` too (clients read back what they write), and the catalog
 * needs `registry:catalog:*`; administration needs `registry:admin:*`. `none` needs no
 * record, only an authenticated caller.
 */
export function requiredAccess (access: Access, name: string | undefined): AccessRecord[] {
  const repository = (action: string): AccessRecord => ({ type: 'repository', name: name ?? '', action })
  switch (access) {
    case 'none': return []
    case 'catalog': return [{ type: 'registry', name: 'catalog', action: '*' }]
    case 'admin': return [{ ...ADMIN_RECORD }]
    case 'pull': return [repository('pull')]
    case 'push': return [repository('pull'), repository('push')]
    case 'delete': return [repository('delete')]
  }
}

/** Groups records per resource, keeping first-seen order: `type:name:a,b` each. */
export function groupRecords (records: readonly AccessRecord[]): ResourceActions[] {
  const grouped = new Map<string, ResourceActions>()
  for (const record of records) {
    const key = `${record.type}:${record.name}`
    const entry = grouped.get(key) ?? { type: record.type, name: record.name, actions: [] }
    if (!entry.actions.includes(record.action)) entry.actions.push(record.action)
    grouped.set(key, entry)
  }
  return [...grouped.values()]
}

/** The challenge's `scope` value: resource scopes separated by spaces. */
export function scopeOf (records: readonly AccessRecord[]): string {
  return groupRecords(records).map((entry) => `${entry.type}:${entry.name}:${entry.actions.join(',')}`).join(' ')
}

const RESOURCE_TYPE = /^[a-z0-9]+(?:\([a-z0-9]+\))?$/
const ACTION = /^(?:[a-z]*|\*)$/

/**
 * Parses one resource scope, `type[(class)]:name:action[,action]`. The name may hold one `:`
 * (a host's port), so the type is before the first `:` and the actions after the last. Returns
 * undefined for anything outside the grammar, including repository names that are not valid
 * names (`..`, encoded slashes, upper case), so that no check ever sees them.
 */
export function parseScope (scope: string): ResourceActions | undefined {
  const first = scope.indexOf(':')
  const last = scope.lastIndexOf(':')
  if (first === -1 || last === first) return undefined
  const type = scope.slice(0, first)
  const name = scope.slice(first + 1, last)
  const actions = scope.slice(last + 1).split(',').filter((action) => action !== '')
  if (!RESOURCE_TYPE.test(type) || !actions.every((action) => ACTION.test(action))) return undefined
  const bare = resourceType(type)
  if (bare === 'repository' && !isValidName(name)) return undefined
  if (bare !== 'repository' && !/^[a-z0-9]+$/.test(name)) return undefined
  return { type: bare, name, actions: [...new Set(actions)] }
}

/** What a caller may do: every action everywhere, or the resources and actions it was granted. */
export class Grant {
  private readonly resources: Map<string, Set<string>>

  private constructor (readonly unrestricted: boolean, entries: readonly ResourceActions[], private readonly admin = false) {
    this.resources = new Map()
    for (const entry of entries) {
      const key = `${resourceType(entry.type)}\u0000${entry.name}`
      const actions = this.resources.get(key) ?? new Set<string>()
      for (const action of entry.actions) actions.add(action)
      this.resources.set(key, actions)
    }
  }

  /**
   * Everything on repositories and the catalog: auth off, or a mode that does not restrict an
   * authenticated user. Administration only with `admin` (deny by default).
   */
  static all (options: { admin?: boolean } = {}): Grant {
    return new Grant(true, [], options.admin === true)
  }

  static none (): Grant {
    return new Grant(false, [])
  }

  /** The resources and actions listed, matched by exact type and name; `*` grants any action. */
  static of (entries: readonly ResourceActions[]): Grant {
    return new Grant(false, entries)
  }

  allows (type: string, name: string, action: string): boolean {
    if (this.unrestricted) return this.admin || !isAdminRecord(type, name)
    const actions = this.resources.get(`${resourceType(type)}\u0000${name}`)
    return actions !== undefined && (actions.has('*') || actions.has(action))
  }

  /** The records this grant lacks, in order; empty when it covers them all. */
  missing (records: readonly AccessRecord[]): AccessRecord[] {
    return records.filter((record) => !this.allows(record.type, record.name, record.action))
  }

  /** The granted resources, for logs and tests; empty for an unrestricted grant. */
  entries (): ResourceActions[] {
    return [...this.resources].map(([key, actions]) => {
      const [type = '', name = ''] = key.split('\u0000')
      return { type, name, actions: [...actions] }
    })
  }
}
