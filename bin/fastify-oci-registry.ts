#!/usr/bin/env node
/**
 * The command line: `fastify-oci-registry <command> [options]`. `serve` (the default when the
 * first argument is not a command) runs the example server; `conformance` checks a registry.
 * A command is a line in COMMANDS.
 */

interface Command {
  summary: string
  /** Runs the command; resolves to an exit status, or undefined while it keeps serving. */
  run: (argv: readonly string[], env: Record<string, string | undefined>) => Promise<number | undefined>
}

const output = {
  stdout: (text: string) => { process.stdout.write(text) },
  stderr: (text: string) => { process.stderr.write(text) }
}

const COMMANDS: Record<string, Command> = {
  serve: {
    summary: 'Serve a registry (the default). --config <file> reads CNCF distribution\'s config.yml.',
    run: async (argv, env) => {
      const { main } = await import('../examples/server.js')
      await main(argv, env)
      return undefined
    }
  },
  gc: {
    summary: 'Remove blobs no manifest names (offline): fastify-oci-registry gc [--config <file>] [--dry-run] [--delete-untagged] [--json].',
    run: async (argv, env) => {
      const { main } = await import('../examples/gc.js')
      return await main(argv, env, { ...output, progress: process.stderr })
    }
  },
  conformance: {
    summary: 'Check a registry against the OCI Distribution Spec: fastify-oci-registry conformance <url>.',
    run: async (argv, env) => {
      const { main } = await import('../lib/conformance/cli.js')
      return await main(['conformance', ...argv], env, output)
    }
  },
  reindex: {
    summary: 'Rebuild the catalog\'s index, the reverse index of tags and storage usage from the storage tree.',
    run: async (argv, env) => {
      const { reindexMain } = await import('../examples/lifecycle-cli.js')
      return await reindexMain(argv, env, output)
    }
  },
  scrub: {
    summary: 'Re-hash blobs against their digests, check manifests\' references, quarantine corrupt blobs.',
    run: async (argv, env) => {
      const { scrubMain } = await import('../examples/lifecycle-cli.js')
      return await scrubMain(argv, env, { ...output, progress: process.stderr })
    }
  }
}

async function usage (): Promise<string> {
  const { helpText } = await import('../examples/config.js')
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length))
  return [
    'Usage: fastify-oci-registry [command] [options]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`),
    '',
    'Without a command, serve. `fastify-oci-registry <command> --help` describes a command\'s options.',
    '',
    helpText()
  ].join('\n')
}

async function main (argv: readonly string[], env: Record<string, string | undefined>): Promise<number | undefined> {
  const [first, ...rest] = argv
  if (first === 'help' || first === '--help' || first === '-h') {
    output.stdout(await usage())
    return 0
  }
  if (first === undefined || first.startsWith('-')) return await (COMMANDS.serve as Command).run(argv, env)
  const command = Object.hasOwn(COMMANDS, first) ? COMMANDS[first] : undefined
  if (command === undefined) {
    output.stderr(`unknown command "${first}" (${Object.keys(COMMANDS).join(', ')}; see --help)\n`)
    return 2
  }
  return await command.run(rest, env)
}

main(process.argv.slice(2), process.env).then((status) => {
  if (status !== undefined) process.exitCode = status
}, (error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  process.exitCode = 1
})
