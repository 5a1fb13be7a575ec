// `sluice start | check | schema | demo`. Exit codes: 0 ok, 1 runtime failure, 2 bad config or usage.
import { Command, CommanderError } from 'commander'
import type { FastifyInstance } from 'fastify'
import { assetPath, readAsset } from '../assets.js'
import { loadConfig, type CompiledConfig } from '../config/index.js'
import { jsonSchema } from '../config/schema.js'
import { startLegacyApp } from '../demo/legacy-app.js'
import { ConfigError, SluiceError } from '../errors.js'
import type { ReloadResult } from '../plugin.js'
import { buildProxy } from '../server.js'
import { describeConfig, startProblems } from './describe.js'
import { registerAccounts } from './accounts.js'
import { registerControls } from './controls.js'
import { registerAudit, registerPseudonym } from './audit.js'
import { registerReplay } from './replay.js'

// Files next to the package, or the single executable's assets (src/assets.ts).
const demoConfig = () => assetPath('examples/demo.yaml', () => new URL('../../examples/demo.yaml', import.meta.url))
const VERSION = (
  JSON.parse(readAsset('package.json', () => new URL('../../package.json', import.meta.url))) as { version: string }
).version

export async function main(argv: string[]): Promise<number | undefined> {
  let code: number | undefined
  const program = new Command('sluice')
    .description("Stop bulk data extraction through your web app's own endpoints.")
    .version(VERSION, '-V, --version')
    .exitOverride()
    .showHelpAfterError()

  program
    .command('start')
    .description('run the proxy in front of the upstream named in the config')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .option('-p, --port <port>', 'listen on this port instead of listen.port', parsePort)
    .action(async (opts: { config: string; port?: number }) => {
      const config = await loadOrReport(opts.config)
      if (!config) return void (code = 2)
      if (opts.port !== undefined) config.listen.port = opts.port
      // The admin API lists recent incidents: the runtime reports into this list from the start.
      const app = await buildProxy(config)
      await listen(app, config)
      // SIGHUP (and the admin API's POST /reload) re-read the file: a valid config is swapped in
      // whole, an invalid one is logged with its errors and the running one stays.
      const reload = async (): Promise<ReloadResult> => {
        let next: CompiledConfig
        try {
          next = await loadConfig(opts.config)
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err
          const errors = err
            .format()
            .split('\n')
            .filter((l) => l.trim() !== '')
          app.sluice.reporter.event('reload', { outcome: 'refused', file: opts.config, errors })
          app.log.error(
            { event: 'sluice.reload', outcome: 'refused', errors },
            `${opts.config} has errors; the running configuration stays`,
          )
          return { ok: false, errors }
        }
        if (opts.port !== undefined) next.listen.port = opts.port
        return app.sluice.reload(next)
      }
      const onHup = () =>
        void reload().catch((err: unknown) =>
          app.log.error({ event: 'sluice.reload', err: (err as Error).message }, 'reload failed'),
        )
      process.on('SIGHUP', onHup)
      const admin = await app.sluice.runtime.startAdmin(reload)
      app.log.info(
        {
          event: 'sluice.started',
          upstream: config.upstream.url,
          mode: config.shadow ? 'shadow' : 'enforce',
          routes: config.routes.map((r) => r.name),
        },
        'sluice started',
      )
      await untilSignal(app)
      process.removeListener('SIGHUP', onHup)
      await admin?.close()
      code = 0
      // Everything sluice opened is closed; a stray handle of a dependency must not keep a
      // stopped proxy alive.
      setTimeout(() => process.exit(code), 2000).unref()
    })

  program
    .command('check')
    .description('validate config files and print the effective routes and limits')
    .option('-c, --config <file>', 'YAML configuration file')
    .argument('[files...]', 'more configuration files')
    .action(async (files: string[], opts: { config?: string }) => {
      const all = [...(opts.config ? [opts.config] : []), ...files]
      if (all.length === 0)
        throw new CommanderError(2, 'sluice.usage', 'error: name a config file: sluice check -c sluice.yaml')
      let failed = 0
      for (const file of all) {
        const config = await loadOrReport(file)
        if (!config) {
          failed++
          continue
        }
        console.log(`${file}: OK\n${describeConfig(config)}\n`)
        for (const problem of startProblems(config)) console.error(`${file}: warning: ${problem}`)
      }
      code = failed > 0 ? 2 : 0
    })

  program
    .command('schema')
    .description('print the JSON Schema of the configuration (for editor autocomplete)')
    .action(() => {
      console.log(JSON.stringify(jsonSchema(true), null, 2))
    })

  program
    .command('demo')
    .description('run a bundled legacy address-book app with sluice in front of it (examples/demo.yaml)')
    .option('-p, --port <port>', 'sluice port', parsePort, 8080)
    .option('--app-port <port>', 'demo app port', parsePort, 3000)
    .action(async (opts: { port: number; appPort: number }) => {
      const config = await loadOrReport(demoConfig())
      if (!config) return void (code = 2)
      const legacy = await startLegacyApp({ port: opts.appPort }).catch((err: unknown) => {
        const e = err as NodeJS.ErrnoException
        const why =
          e.code === 'EADDRINUSE'
            ? 'the address is already in use (another demo still running?): pick another port with --app-port'
            : e.code === 'EACCES'
              ? 'permission denied (ports below 1024 need privileges)'
              : e.message
        throw new SluiceError('SLUICE_ERR_LISTEN', `the demo app cannot listen on 127.0.0.1:${opts.appPort}: ${why}`)
      })
      config.upstream.url = legacy.url
      config.listen.port = opts.port
      const app = await buildProxy(config)
      app.addHook('onClose', () => legacy.close())
      const url = await listen(app, config)
      console.error(demoBanner(url, legacy.url))
      await untilSignal(app)
    })

  registerReplay(program, (exit) => void (code = exit))
  registerAudit(program, (exit) => void (code = exit))
  registerPseudonym(program, (exit) => void (code = exit))
  registerAccounts(program, (exit) => void (code = exit))
  registerControls(program, (exit) => void (code = exit))

  try {
    await program.parseAsync(argv, { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander prints its own errors (commander.*) before throwing; ours (a bad port, a missing
      // file argument, no admin token) carry their message only: print it, never exit quietly.
      if (!err.code.startsWith('commander.') && err.message !== '') console.error(err.message)
      return err.exitCode === 0 ? 0 : 2
    }
    if (err instanceof SluiceError) {
      console.error(`sluice: ${err.message} (${err.code})`)
      return 1
    }
    throw err
  }
  return code
}

async function loadOrReport(file: string): Promise<CompiledConfig | undefined> {
  try {
    return await loadConfig(file)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    console.error(
      `${err.format()}\n${file}: ${err.issues.length} problem${err.issues.length === 1 ? '' : 's'}, not started`,
    )
    return undefined
  }
}

async function listen(app: FastifyInstance, config: CompiledConfig): Promise<string> {
  try {
    return await app.listen({
      host: config.listen.host,
      port: config.listen.port,
      listenTextResolver: (address) => `sluice listening on ${address}`,
    })
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    // Release what was opened (a Redis connection would keep the process alive).
    await app.close().catch(() => undefined)
    const why =
      e.code === 'EADDRINUSE'
        ? 'the address is already in use'
        : e.code === 'EACCES'
          ? 'permission denied (ports below 1024 need privileges)'
          : e.message
    throw new SluiceError('SLUICE_ERR_LISTEN', `cannot listen on ${config.listen.host}:${config.listen.port}: ${why}`)
  }
}

/** SIGTERM/SIGINT: stop accepting, let in-flight requests finish (bounded), exit 0. */
function untilSignal(app: FastifyInstance): Promise<void> {
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      app.log.info({ event: 'sluice.stopping', signal }, 'stopping')
      const force = setTimeout(() => {
        app.log.warn('in-flight requests did not finish within 10s; exiting')
        resolve()
      }, 10_000)
      force.unref()
      // A keep-alive connection whose request finishes after close() began would otherwise
      // stay open until the client drops it: close each one as soon as it is idle.
      const sweep = setInterval(() => app.server.closeIdleConnections(), 50)
      sweep.unref()
      app.close().then(
        () => {
          clearTimeout(force)
          clearInterval(sweep)
          resolve()
        },
        () => {
          clearInterval(sweep)
          resolve()
        },
      )
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
  })
}

function parsePort(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new CommanderError(2, 'sluice.port', `error: "${value}" is not a port (0-65535)`)
  return n
}

function demoBanner(proxy: string, app: string): string {
  return `
  sluice demo
  ───────────
  legacy address book (unprotected)   ${app}
  sluice in front of it               ${proxy}     config: examples/demo.yaml

  Users: alice / alice-pw, bob / bob-pw, carol / carol-pw, mallory / mallory-pw, trudy / trudy-pw

  Enumerate contacts as mallory, one id after another (copy-paste):

    for i in $(seq 1 60); do curl -s -o /dev/null -w "contact $i → %{http_code}\\n" -u mallory:mallory-pw ${proxy}/api/contacts/$i; done

  → 1-20 are served (200), then mallory is throttled (429: 20 distinct contacts a minute),
    and, as the script keeps hammering, disabled (403: 40 requests a minute) for 15 minutes.

  Page through the whole address book as trudy (mallory is disabled by now), asking for 100000
  contacts a page:

    for p in $(seq 1 5); do curl -s -o /dev/null -w "page $p → %{http_code}\\n" -u trudy:trudy-pw "${proxy}/api/contacts?page=$p&pageSize=100000"; done

  → the app only ever sees pageSize=50; pages 1-2 are served (100 contacts), page 3 is
    withheld: its 50 ids would cross 100 distinct contacts in 10 minutes (429, a proof-of-work
    challenge; a browser solves it by itself and goes on, a script gets nothing more).

  The portal's own pages are guarded too: mirror its HTML address book with wget as carol
  (it follows the pager and every contact link, as a scraper does):

    wget -q --mirror -e robots=off --auth-no-challenge --user carol --password carol-pw -P mirror ${proxy}/addressbook/list.do; grep -rho '<tr data-id="[0-9]*"' mirror | sort -u | wc -l

  → 100 list rows and at most 30 contact pages are saved, then every page is a challenge
    (straight from ${app} the same command saves all 1000). In a browser, log in at ${proxy}/
    and open /addressbook/list.do or the AJAX quick view /addressbook/ajax.html.

  A browser session counts against the user who logged in, however often they log in again:

    curl -s -c s1 -o /dev/null -d 'username=bob&password=bob-pw' ${proxy}/login
    for p in 1 2 3; do curl -s -o /dev/null -w "page $p → %{http_code}\\n" -b s1 "${proxy}/api/contacts?page=$p&pageSize=50"; done
    curl -s -c s2 -o /dev/null -d 'username=bob&password=bob-pw' ${proxy}/login   # a new session …
    curl -s -o /dev/null -w "page 3 → %{http_code}\\n" -b s2 "${proxy}/api/contacts?page=3&pageSize=50"   # … the same budget: 429

  Meanwhile alice is not affected:

    curl -s -u alice:alice-pw ${proxy}/api/contacts/7

  Path tricks are counted or refused, never let through:

    curl -s -u alice:alice-pw "${proxy}/API//contacts/./9;jsessionid=x"    # counted as /api/contacts/9
    curl -s -u alice:alice-pw "${proxy}/api%2fcontacts/9"                  # 400

  Decisions are logged as JSON lines on stdout. Ctrl-C stops both.
`
}
