/**
 * The command line: `fastify-oci-registry conformance <url> [options]` runs the conformance
 * checks against a registry and prints each result (or, with --json, the whole report).
 */

import { parseArgs } from 'node:util'
import { CATEGORIES, formatResult, formatSummary, runConformance, type Category } from './run.js'

export const USAGE = `Usage: fastify-oci-registry conformance <url> [options]

Checks a registry against the OCI Distribution Spec: pull, push, content discovery
(tags, referrers) and content management (deletes). Pushes to the repositories below
and deletes what it pushed when the registry allows deletes.

Options:
  --user <name>              user name, when the registry asks for credentials (env OCI_USERNAME)
  --pass <password>          password (env OCI_PASSWORD)
  --categories <list>        comma-separated: ${CATEGORIES.join(',')} (default: all)
  --repository <name>        repository to push to (default conformance/repo1)
  --cross-repository <name>  second repository, for mounts (default conformance/repo2)
  --json                     print the report as JSON (with the exchanges of failed checks)
  -h, --help                 print this help

Exit status: 0 when no check failed, 1 when one did, 2 on a usage error.
`

export interface Output {
  stdout: (text: string) => void
  stderr: (text: string) => void
}

function usageError (output: Output, message: string): number {
  output.stderr(`${message}\n\n${USAGE}`)
  return 2
}

/** Runs the command line; returns the exit status. */
export async function main (argv: readonly string[], env: Record<string, string | undefined>, output: Output): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    output.stdout(USAGE)
    return command === undefined ? 2 : 0
  }
  if (command !== 'conformance') return usageError(output, `unknown command "${command}"`)
  let parsed
  try {
    parsed = parseArgs({
      args: [...rest],
      allowPositionals: true,
      options: {
        user: { type: 'string' },
        pass: { type: 'string' },
        categories: { type: 'string' },
        repository: { type: 'string' },
        'cross-repository': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' }
      }
    })
  } catch (error) {
    return usageError(output, (error as Error).message)
  }
  const { values, positionals } = parsed
  if (values.help === true) {
    output.stdout(USAGE)
    return 0
  }
  if (positionals.length !== 1) return usageError(output, 'expected one registry URL')
  const url = positionals[0] as string
  try {
    const parsedUrl = new URL(url)
    if (parsedUrl.protocol !== 'http:' && parsedUrl.protocol !== 'https:') throw new Error('not http(s)')
  } catch {
    return usageError(output, `"${url}" is not an http:// or https:// URL`)
  }
  let categories: Category[] | undefined
  if (values.categories !== undefined) {
    const names = values.categories.split(',').map((name) => name.trim()).filter((name) => name !== '')
    const unknown = names.filter((name) => !(CATEGORIES as readonly string[]).includes(name))
    if (unknown.length > 0 || names.length === 0) return usageError(output, `unknown categories: ${unknown.join(', ') || '(none given)'}`)
    categories = names as Category[]
  }
  const username = values.user ?? env.OCI_USERNAME
  const password = values.pass ?? env.OCI_PASSWORD
  const json = values.json === true
  const report = await runConformance({
    url,
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    ...(categories === undefined ? {} : { categories }),
    ...(values.repository === undefined ? {} : { repository: values.repository }),
    ...(values['cross-repository'] === undefined ? {} : { crossRepository: values['cross-repository'] }),
    ...(json ? {} : { onResult: (result) => output.stdout(`${formatResult(result)}\n`) })
  })
  output.stdout(json ? `${JSON.stringify(report, null, 2)}\n` : `\n${formatSummary(report)}\n`)
  return report.summary.failed > 0 ? 1 : 0
}
