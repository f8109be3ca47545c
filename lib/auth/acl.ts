/**
 * The access-control list of the bundled token service: rules that give a user, a group, any
 * authenticated user or anyone at all some actions on repositories matched by a glob (or on
 * the catalog). A token grants the intersection of what was asked and what the rules allow.
 */

import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { resourceType, type ResourceActions } from './access.js'

const Action = Type.Union([Type.Literal('pull'), Type.Literal('push'), Type.Literal('delete'), Type.Literal('*')])

export const AclRuleSchema = Type.Object({
  user: Type.Optional(Type.String({ minLength: 1, description: 'A user name, or `*` for any authenticated user.' })),
  group: Type.Optional(Type.String({ minLength: 1, description: 'A group of `groups`.' })),
  anonymous: Type.Optional(Type.Literal(true, { description: 'Anyone, with or without credentials.' })),
  repository: Type.Optional(Type.String({ minLength: 1, description: 'Repository glob: `*` within a path component, `**` across components, `$' + '{user}` the caller.' })),
  registry: Type.Optional(Type.Literal('catalog', { description: 'The catalog (`registry:catalog:*`).' })),
  actions: Type.Array(Action, { minItems: 1 })
}, { additionalProperties: false })

export const AclSchema = Type.Object({
  groups: Type.Optional(Type.Record(Type.String(), Type.Array(Type.String()))),
  rules: Type.Array(AclRuleSchema)
}, { additionalProperties: false })

export type AclRule = Static<typeof AclRuleSchema>
export type AclDocument = Static<typeof AclSchema>

/** The list used when none is configured: any authenticated user may do anything, as htpasswd mode allows. */
export const DEFAULT_ACL: AclDocument = {
  rules: [
    { user: '*', repository: '**', actions: ['*'] },
    { user: '*', registry: 'catalog', actions: ['*'] }
  ]
}

/** The placeholder of the caller's name in a repository glob. */
const USER_PLACEHOLDER = '$' + '{user}'
const GLOB = /^(?:[a-z0-9._\-/*]|\$\{user\})+$/

function escapeRegExp (text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')
}

/**
 * Compiles a repository glob for one caller: `*` matches within a component (never `/`), `**`
 * matches across components, `${user}` is the caller's name taken literally. Anchored at both
 * ends, so `foo/*` matches `foo/bar` but neither `foobar` nor `foo/bar/baz`.
 */
export function globToRegExp (glob: string, user: string | undefined): RegExp | undefined {
  let source = ''
  for (const token of glob.match(/\*\*|\*|\$\{user\}|[^*$]+|\$/g) ?? []) {
    if (token === '**') source += '.*'
    else if (token === '*') source += '[^/]*'
    else if (token === USER_PLACEHOLDER) {
      if (user === undefined) return undefined
      source += escapeRegExp(user)
    } else source += escapeRegExp(token)
  }
  return new RegExp(`^${source}$`)
}

type Subject = { kind: 'user', name: string } | { kind: 'authenticated' } | { kind: 'group', name: string } | { kind: 'anyone' }

interface CompiledRule {
  subject: Subject
  target: { kind: 'repository', glob: string } | { kind: 'catalog' }
  actions: string[]
}

export class Acl {
  private constructor (private readonly rules: CompiledRule[], private readonly groups: Map<string, Set<string>>) {}

  /** Validates a list (as read from JSON); throws a TypeError naming every problem. */
  static from (document: unknown): Acl {
    if (!Value.Check(AclSchema, document)) {
      const problems = [...Value.Errors(AclSchema, document)].map((error) => `${error.path === '' ? '(acl)' : error.path}: ${error.message}`)
      throw new TypeError(`invalid access-control list: ${[...new Set(problems)].join('; ')}`)
    }
    const groups = new Map(Object.entries(document.groups ?? {}).map(([name, members]) => [name, new Set(members)]))
    const rules = document.rules.map((rule, index): CompiledRule => {
      const where = `rule ${index + 1}`
      const subjects = [rule.user, rule.group, rule.anonymous].filter((value) => value !== undefined)
      if (subjects.length !== 1) throw new TypeError(`invalid access-control list: ${where} needs exactly one of user, group, anonymous`)
      if ((rule.repository === undefined) === (rule.registry === undefined)) throw new TypeError(`invalid access-control list: ${where} needs exactly one of repository, registry`)
      if (rule.group !== undefined && !groups.has(rule.group)) throw new TypeError(`invalid access-control list: ${where} names unknown group ${rule.group}`)
      if (rule.repository !== undefined && !GLOB.test(rule.repository)) throw new TypeError(`invalid access-control list: ${where} has a bad repository glob ${rule.repository}`)
      const subject: Subject = rule.anonymous === true
        ? { kind: 'anyone' }
        : rule.group !== undefined
          ? { kind: 'group', name: rule.group }
          : rule.user === '*' ? { kind: 'authenticated' } : { kind: 'user', name: rule.user as string }
      return {
        subject,
        target: rule.repository !== undefined ? { kind: 'repository', glob: rule.repository } : { kind: 'catalog' },
        actions: rule.actions
      }
    })
    return new Acl(rules, groups)
  }

  private applies (subject: Subject, user: string | undefined): boolean {
    switch (subject.kind) {
      case 'anyone': return true
      case 'authenticated': return user !== undefined
      case 'user': return user === subject.name
      case 'group': return user !== undefined && (this.groups.get(subject.name)?.has(user) ?? false)
    }
  }

  /** The actions the rules give `user` (undefined: anonymous) on one resource. */
  allowed (user: string | undefined, type: string, name: string): Set<string> {
    const allowed = new Set<string>()
    const bare = resourceType(type)
    for (const rule of this.rules) {
      if (!this.applies(rule.subject, user)) continue
      if (rule.target.kind === 'catalog') {
        if (bare !== 'registry' || name !== 'catalog') continue
      } else {
        if (bare !== 'repository') continue
        const regex = globToRegExp(rule.target.glob, user)
        if (regex === undefined || !regex.test(name)) continue
      }
      for (const action of rule.actions) allowed.add(action)
    }
    return allowed
  }

  /** The intersection of the requested scopes and what the rules allow; resources left with no action are dropped. */
  grant (user: string | undefined, requested: readonly ResourceActions[]): ResourceActions[] {
    const granted: ResourceActions[] = []
    for (const scope of requested) {
      const allowed = this.allowed(user, scope.type, scope.name)
      const actions = scope.actions.filter((action) => allowed.has('*') || allowed.has(action))
      if (actions.length > 0) granted.push({ type: resourceType(scope.type), name: scope.name, actions })
    }
    return granted
  }
}
