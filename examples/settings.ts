/**
 * The builders of the example server's settings: each setting is a TypeBox schema of its value
 * carrying where it comes from (flag, variables, config file key) and how it is shown. SETTINGS
 * (config.ts) and the operations' settings (operations-config.ts) are written with them.
 */

import { Type } from '@sinclair/typebox'

/** Where a setting comes from besides its value's schema. */
export interface Source {
  /** The command-line flag; settings of the config file alone have none. */
  flag?: `--${string}`
  /** Placeholder of the value in `--help`; absent for booleans, which need no value. */
  placeholder?: string
  /** Our environment variables. */
  env?: readonly string[]
  /** CNCF distribution's variables besides the one named after `file`. */
  distributionEnv?: readonly string[]
  /** The config file key, as `section.key`. */
  file?: string
  /** The file key is ours (distribution lacks it): its `REGISTRY_` variable is listed as ours. */
  ours?: boolean
  /** The file key says the opposite of the setting (`storage.redirect.disable`). */
  negate?: boolean
  /** The default as shown to people, when it is not a plain value. */
  defaultText?: string
  description: string
}

export const text = (source: Source, value?: string) => Type.String({ ...source, ...(value === undefined ? {} : { default: value }) })
export const flag = (source: Source, value: unknown = false) => Type.Boolean({ ...source, default: value })
export const integer = (source: Source, minimum: number, maximum: number, value?: number) =>
  Type.Integer({ ...source, minimum, maximum, ...(value === undefined ? {} : { default: value }) })
export const choice = <T extends string>(values: readonly T[], source: Source, value: T) =>
  Type.Union(values.map((name) => Type.Literal(name)), { ...source, default: value })
/** A Go duration (`90s`, `10m`); the default and minimum are in milliseconds. */
export const duration = (source: Source, value: number, minimum = 0) => Type.String({ ...source, format: 'duration', default: value, minimumMs: minimum })
