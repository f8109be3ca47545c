/**
 * The error of a configured feature whose optional package is not installed. In a module of its
 * own: the import seam (optional.ts) names the optional modules' types, which a consumer without
 * those packages must never load.
 */

/** A configured feature needs a package that is not installed. */
export class MissingDependencyError extends Error {
  readonly code = 'ERR_OCI_REGISTRY_MISSING_DEPENDENCY'

  constructor (readonly feature: string, readonly packages: readonly string[], options?: { cause?: unknown }) {
    super(`${feature} needs ${packages.join(' and ')}, which ${packages.length === 1 ? 'is' : 'are'} not installed: npm install ${packages.join(' ')}`, options)
    this.name = 'MissingDependencyError'
  }
}
