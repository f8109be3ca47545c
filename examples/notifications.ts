/**
 * The example server's notification settings. The endpoints are distribution's
 * `notifications` section of the config file (a list, kept as the file's section); like
 * distribution, its `REGISTRY_NOTIFICATIONS_ENDPOINTS` variable replaces the list with one
 * written as YAML (or JSON), and `REGISTRY_NOTIFICATIONS_EVENTS_INCLUDEREFERENCES` the flag.
 */

import { Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { parse as parseYaml } from 'yaml'
import { EndpointSchema, type NotificationsOptions } from '../lib/notifications/options.js'
import { ConfigError } from '../lib/config/file.js'

export const NOTIFY_SETTINGS = {
  notificationsEndpoints: Type.String({
    file: 'notifications.endpoints',
    defaultText: '(none)',
    description: 'Webhook endpoints, as distribution\'s `notifications.endpoints` (see "Notifications"): a list in the file; in the variable, the same list as YAML or JSON.'
  }),
  notificationsIncludeReferences: Type.Boolean({
    file: 'notifications.events.includereferences',
    default: false,
    description: 'List a manifest\'s references in its push notification.'
  })
}

const Endpoints = Type.Array(EndpointSchema)

/** A setting's value and where it came from (the flag, variable or file key). */
interface Setting { value: string, source: string, fromFile?: { value: unknown } }

/**
 * The plugin's `notifications` option: the file's section, with the variables' values over it.
 * `parseBoolean` is the server's own reading of booleans.
 */
export function notificationsOf (
  section: NotificationsOptions | undefined,
  endpoints: Setting | undefined,
  includeReferences: Setting | undefined,
  parseBoolean: (raw: Setting) => boolean
): NotificationsOptions | undefined {
  let options = section
  // A value from the file is in the section already (the reader keeps the section whole).
  if (endpoints !== undefined && endpoints.fromFile === undefined) {
    let list: unknown
    try {
      list = parseYaml(endpoints.value, { version: '1.1' })
    } catch (error) {
      throw new ConfigError(`${endpoints.source}: not valid YAML: ${(error as Error).message.split('\n')[0] ?? ''}`)
    }
    const problem = Value.Errors(Endpoints, list).First()
    if (problem !== undefined) throw new ConfigError(`${endpoints.source}${problem.path.replace(/\//g, '.')}: ${problem.message}`)
    options = { ...options, endpoints: list as NotificationsOptions['endpoints'] }
  }
  if (includeReferences !== undefined && includeReferences.fromFile === undefined) {
    options = { ...options, events: { ...options?.events, includereferences: parseBoolean(includeReferences) } }
  }
  return options
}
