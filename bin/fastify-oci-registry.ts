#!/usr/bin/env node
/** `fastify-oci-registry conformance <url>`: see lib/conformance/cli.ts. */

import { main } from '../lib/conformance/cli.js'

main(process.argv.slice(2), process.env, {
  stdout: (text) => { process.stdout.write(text) },
  stderr: (text) => { process.stderr.write(text) }
}).then((status) => {
  process.exitCode = status
}, (error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  process.exitCode = 1
})
