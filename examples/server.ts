/**
 * The example server: the registry plugin on a bare Fastify instance, configured from flags,
 * environment variables and a config file (see config.ts, or run with --help). With `--workers N`
 * a primary process forks N workers sharing the port through node:cluster.
 */

import cluster, { type Worker } from 'node:cluster'
import type { EventEmitter } from 'node:events'
import { createPrivateKey, createPublicKey } from 'node:crypto'
import { mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import { pino, type LoggerOptions } from 'pino'
import ociRegistry, { registryFrameworkErrors, type RegistryOptions } from '../plugins/registry.js'
import type { AclDocument } from '../lib/auth/acl.js'
import { debugListener, listenDebug } from './debug-listener.js'
import { ConfigError, DEFAULT_TIMEOUTS, helpText, noticeText, parseConfig, wantsHelp, type LogLevel, type ServerConfig, type Timeouts } from './config.js'

const SIGNALS = ['SIGINT', 'SIGTERM'] as const

function prettyAvailable (): boolean {
  // Pretty output is for people at a terminal; pipes and log collectors get JSON lines.
  if (process.stdout.isTTY !== true) return false
  try {
    createRequire(import.meta.url).resolve('pino-pretty')
    return true
  } catch {
    return false
  }
}

/** Pino options: JSON lines, or pino-pretty when stdout is a terminal and it is installed. */
export function loggerOptions (level: LogLevel, pretty: boolean = prettyAvailable()): LoggerOptions {
  return pretty
    ? { level, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'hostname' } } }
    : { level }
}

/**
 * Options of Node's server for the timeouts. Node checks the headers and request deadlines on a
 * timer (30 s by default): it runs often enough here for a short header timeout to hold.
 */
function timeoutServerOptions (timeouts: Timeouts): Record<string, number> {
  return {
    headersTimeout: timeouts.headerMs,
    connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(timeouts.headerMs / 4)))
  }
}

/** HTTPS (and HTTP/2 with HTTP/1.1 beside it) and timeout options of Fastify. */
function serverOptions (tls: ServerConfig['tls'], timeouts: Timeouts): Record<string, unknown> {
  const node = timeoutServerOptions(timeouts)
  const fastify = {
    // Idle means no byte either way: every byte read or written restarts it, so a slow but
    // progressing upload or download is never cut, while a stalled one is closed.
    connectionTimeout: timeouts.idleMs,
    keepAliveTimeout: timeouts.keepAliveMs,
    requestTimeout: timeouts.requestMs
  }
  if (tls === undefined) return { ...fastify, http: node }
  const https = { cert: readFileSync(tls.certificate), key: readFileSync(tls.key), ...node }
  return tls.http2 ? { ...fastify, http2: true, https: { ...https, allowHTTP1: true } } : { ...fastify, https }
}

/**
 * A client that half-closes its connection after a complete request (a FIN after the last
 * byte) still gets its answer, then the connection closes: RFC 9112 section 9.6 says a half
 * close neither ends a request nor tells that the client lost interest. Node's HTTP server
 * aborts such a request unless its `httpAllowHalfOpen` is set (a Node server property that
 * Fastify has no option for).
 */
export function answerHalfClosedConnections (app: FastifyInstance): void {
  (app.server as { httpAllowHalfOpen?: boolean }).httpAllowHalfOpen = true
}

/**
 * The Fastify instance with the registry registered (and the bundled token service, when token
 * mode runs it), not listening. `logger` replaces the logger options (tests capture the log).
 */
export function buildServer (config: Pick<ServerConfig, 'logLevel' | 'registry' | 'tls' | 'tokenService' | 'timeouts' | 'operations'>, logger?: LoggerOptions | { level: string, stream: NodeJS.WritableStream }): FastifyInstance {
  const app = Fastify({
    logger: logger ?? loggerOptions(config.logLevel),
    // Errors Fastify finds before routing (bad percent-encoding) get the spec's body under /v2/.
    frameworkErrors: registryFrameworkErrors(),
    // On close, drop keep-alive connections that are idle but let requests in flight finish.
    forceCloseConnections: 'idle',
    ...serverOptions(config.tls, config.timeouts ?? DEFAULT_TIMEOUTS)
  }) as unknown as FastifyInstance
  answerHalfClosedConnections(app)
  let options: RegistryOptions = { ...config.registry, ...config.operations?.options }
  const bundled = config.tokenService
  if (bundled !== undefined && options.auth?.mode === 'token') {
    const privateKey = createPrivateKey(readFileSync(bundled.key))
    // The registry trusts the bundled service's key besides any configured bundle or key set.
    const publicKey = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString()
    options = { ...options, auth: { ...options.auth, publicKeys: [...(options.auth.publicKeys ?? []), publicKey] } }
    app.register(import('../plugins/token.js'), {
      service: bundled.service,
      issuer: bundled.issuer,
      privateKey,
      ...(bundled.htpasswd === undefined ? {} : { htpasswd: bundled.htpasswd }),
      ...(bundled.acl === undefined ? {} : { acl: JSON.parse(readFileSync(bundled.acl, 'utf8')) as AclDocument })
    })
  }
  app.register(ociRegistry, options)
  return app
}

/**
 * Checks that the filesystem storage root can be written (creating it if needed), so that a bad
 * root fails at start rather than with a 500 at the first push. Returns the problem, if any.
 */
export function storageRootProblem (storage: ServerConfig['registry']['storage']): string | undefined {
  if (storage === undefined || !('driver' in storage) || storage.driver !== 'filesystem') return undefined
  const probe = join(storage.root, `.write-check-${process.pid}`)
  try {
    mkdirSync(storage.root, { recursive: true })
    writeFileSync(probe, '')
    rmSync(probe)
    return undefined
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const reason = code === 'ENOTDIR' || code === 'EEXIST'
      ? 'a part of the path is a file, not a directory'
      : code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'permission denied or read-only file system' : (error as Error).message
    return `cannot write the storage root ${storage.root}: ${reason} (${code ?? 'error'})`
  }
}

/** Fails the start (exit 1) when the storage root cannot be written; logs the config file's one warning. */
function checkAtStart (config: ServerConfig, log: { fatal: (facts: object, message: string) => void, warn: (facts: object, message: string) => void }): void {
  const problem = storageRootProblem(config.registry.storage)
  if (problem !== undefined) {
    log.fatal({}, problem)
    process.exit(1)
  }
  if (config.notices !== undefined) log.warn({ configFile: config.configFile, ...config.notices }, noticeText(config.notices))
}

export interface SignalOptions {
  /** Ends the process; replaced in tests. */
  exit?: (code: number) => void
  /**
   * Exit at once on a second signal. A cluster worker leaves that to its primary: a terminal's
   * Ctrl-C reaches the worker both directly and forwarded, which is not a second request.
   */
  forceOnRepeat?: boolean
  /** Where signals are heard; replaced in tests. */
  emitter?: EventEmitter
}

/**
 * On SIGINT or SIGTERM, closes the server (in-flight requests finish, new ones are refused)
 * then exits 0. Returns a function removing the handlers.
 */
export function handleSignals (app: FastifyInstance, options: SignalOptions = {}): () => void {
  const exit = options.exit ?? ((code: number) => process.exit(code))
  const emitter = options.emitter ?? process
  const forceOnRepeat = options.forceOnRepeat ?? true
  let closing = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (closing) {
      if (forceOnRepeat) {
        app.log.warn({ signal }, 'second signal: exiting without waiting')
        exit(1)
      }
      return
    }
    closing = true
    app.log.info({ signal }, 'shutting down: finishing requests in flight')
    app.close().then(() => {
      app.log.info('server closed')
      exit(0)
    }, (error: unknown) => {
      app.log.error({ err: error }, 'error while closing')
      exit(1)
    })
  }
  for (const signal of SIGNALS) emitter.on(signal, onSignal)
  return () => {
    for (const signal of SIGNALS) emitter.off(signal, onSignal)
  }
}

/** Builds, installs signal handlers and listens; exits 1 when the server cannot start. */
export async function serve (config: ServerConfig): Promise<FastifyInstance> {
  const app = buildServer(config)
  const debug = config.operations?.debug
  const debugServer = debug === undefined ? undefined : debugListener(app, debug)
  // A cluster's primary has checked and warned already.
  if (!cluster.isWorker) checkAtStart(config, app.log)
  handleSignals(app, { forceOnRepeat: !cluster.isWorker })
  try {
    await app.listen({
      host: config.host,
      port: config.port,
      listenTextResolver: (address) => `registry listening at ${address}`
    })
    if (debugServer !== undefined && debug !== undefined) await listenDebug(debugServer, debug)
  } catch (error) {
    app.log.fatal({ err: error }, 'cannot start the server')
    process.exit(1)
  }
  return app
}

/**
 * The cluster primary: forks the workers, restarts one that dies after it started serving,
 * forwards SIGINT and SIGTERM, and exits once every worker has stopped.
 */
function runPrimary (config: ServerConfig): void {
  const log = pino(loggerOptions(config.logLevel))
  const live = new Set<Worker>()
  const served = new Set<number>()
  let stopping = false
  let failed = false

  const fork = (): void => {
    live.add(cluster.fork())
  }
  const finishIfDone = (): void => {
    if (stopping && live.size === 0) {
      log.info('all workers stopped')
      process.exit(failed ? 1 : 0)
    }
  }
  const stop = (signal: NodeJS.Signals): void => {
    stopping = true
    for (const worker of live) worker.process.kill(signal)
    finishIfDone()
  }

  cluster.on('listening', (worker) => {
    served.add(worker.id)
  })
  cluster.on('exit', (worker, code, signal) => {
    live.delete(worker)
    const facts = { workerPid: worker.process.pid, code, signal }
    if (stopping) {
      if (code !== 0) failed = true
      finishIfDone()
    } else if (!served.has(worker.id)) {
      // Restarting a worker that never got to listen would loop forever on a bad setup.
      log.fatal(facts, 'a worker stopped before serving; stopping the others')
      failed = true
      stop('SIGTERM')
    } else {
      log.error(facts, 'a worker died; starting another')
      fork()
    }
  })

  let signalled = false
  for (const name of SIGNALS) {
    process.on(name, (signal: NodeJS.Signals) => {
      if (signalled) {
        log.warn({ signal }, 'second signal: killing workers')
        for (const worker of live) worker.process.kill('SIGKILL')
        process.exit(1)
      }
      signalled = true
      log.info({ signal }, 'shutting down workers')
      stop(signal)
    })
  }

  checkAtStart(config, log)
  // One scrape of any worker's debug listener sees the whole cluster.
  if (config.operations?.debug?.metricsPath !== undefined && config.operations.debug.metricsPath !== false) {
    import('../lib/metrics/cluster.js').then(async ({ serveClusterMetrics }) => { await serveClusterMetrics() }).catch((error: unknown) => {
      log.error({ err: error }, 'cluster metrics unavailable')
    })
  }
  log.info({ workers: config.workers }, 'starting workers')
  for (let i = 0; i < config.workers; i++) fork()
}

export async function main (argv: readonly string[], env: Record<string, string | undefined>): Promise<void> {
  if (wantsHelp(argv)) {
    process.stdout.write(helpText())
    return
  }
  let config: ServerConfig
  try {
    config = parseConfig(argv, env)
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    process.stderr.write(`${error.message}\n`)
    process.exit(2)
  }
  if (config.workers > 1 && cluster.isPrimary) {
    runPrimary(config)
  } else {
    await serve(config)
  }
}

function isEntryPoint (): boolean {
  const entry = process.argv[1]
  if (entry === undefined) return false
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
}

// Workers run this same file (cluster re-executes the entry point), so they pass this check too.
if (isEntryPoint()) {
  main(process.argv.slice(2), process.env).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  })
}
