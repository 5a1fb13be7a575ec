// Where the admin CLI (accounts, incidents, reload, …) finds the admin API and its token: --url and
// --token, else SLUICE_ADMIN_URL and SLUICE_ADMIN_TOKEN, else the config (-c FILE: admin.listen,
// admin.token or admin.tokens), else http://127.0.0.1:9090. Who acts and why (--operator, --reason)
// travel as X-Sluice-Operator and X-Sluice-Reason and are recorded with the action.
import { readFileSync } from 'node:fs'
import { Command, CommanderError, Option } from 'commander'
import { parse } from 'yaml'

const ACTIONS = new Set(['unlock', 'reset', 'reload'])

/** What a command's options carry once resolved (the preAction hook fills urlFrom and tokenFrom). */
export interface AdminClientOptions {
  url: string
  token?: string
  config?: string
  operator?: string
  reason?: string
  /** Which flag, variable or file set the URL: named when it cannot be reached. */
  urlFrom?: string
}

/** Adds -c, --operator and --reason, and resolves the URL and token before the action runs. */
export function withAdminConfig(command: Command): Command {
  if (command.options.some((o) => o.long === '--operator')) return command
  command
    .option('-c, --config <file>', "sluice's config: the admin API's address (admin.listen) and token (admin.token)")
    .addOption(
      new Option('--operator <name>', 'who you are: recorded with the admin actions you do').env('SLUICE_OPERATOR'),
    )
    .hook('preAction', (_self, action) => resolveAdminClient(action))
  // The actions that change something say why (commands that add their own --reason keep it).
  if (ACTIONS.has(command.name())) command.option('--reason <text>', 'why: recorded with the admin action')
  return command
}

export function resolveAdminClient(command: Command): void {
  const opts = command.opts<AdminClientOptions>()
  const urlSource = command.getOptionValueSource('url')
  const tokenSource = command.getOptionValueSource('token')
  let urlFrom = urlSource === 'cli' ? '--url' : urlSource === 'env' ? 'SLUICE_ADMIN_URL' : 'the default'
  if (opts.config !== undefined) {
    const admin = readAdminSection(opts.config)
    if (urlSource !== 'cli' && urlSource !== 'env') {
      const host = admin.listen?.host ?? '127.0.0.1'
      const port = admin.listen?.port ?? 9090
      command.setOptionValueWithSource('url', `http://${connectable(host)}:${port}`, 'config')
      urlFrom = `admin.listen in ${opts.config}`
    }
    if ((opts.token === undefined || opts.token === '') && tokenSource !== 'cli') {
      const token = configToken(admin, opts.config, opts.operator)
      if (token !== undefined) command.setOptionValueWithSource('token', token, 'config')
    }
  }
  if (urlFrom === 'the default') urlFrom = 'the default: no --url, SLUICE_ADMIN_URL or -c sluice.yaml'
  command.setOptionValue('urlFrom', urlFrom)
}

/** Headers that say who acts and why. */
export function actorHeaders(opts: object): Record<string, string> {
  const { operator, reason } = opts as AdminClientOptions
  return {
    ...(operator !== undefined && operator !== '' ? { 'x-sluice-operator': encodeURIComponent(operator) } : {}),
    ...(reason !== undefined && reason !== '' ? { 'x-sluice-reason': encodeURIComponent(reason) } : {}),
  }
}

/** "(set by --url)" for an error message about the URL. */
export function urlOrigin(opts: object): string {
  const from = (opts as AdminClientOptions).urlFrom
  return from !== undefined ? `; the URL came from ${from}: set it with --url, SLUICE_ADMIN_URL or -c sluice.yaml` : ''
}

interface AdminSection {
  listen?: { host?: string; port?: number }
  token?: string
  tokens?: { name?: string; token?: string }[]
}

function readAdminSection(file: string): AdminSection {
  let doc: unknown
  try {
    doc = parse(readFileSync(file, 'utf8'))
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const why = e.code === 'ENOENT' ? 'no such file' : e.code !== undefined ? e.code : 'not valid YAML'
    throw new CommanderError(2, 'sluice.admin.config', `error: cannot read the admin section of ${file} (${why})`)
  }
  const admin = (doc as { admin?: unknown } | null)?.admin
  if (admin === undefined || admin === null || typeof admin !== 'object')
    throw new CommanderError(
      2,
      'sluice.admin.config',
      `error: ${file} has no admin section: the admin API is off (add admin: { token: … } and restart)`,
    )
  return admin as AdminSection
}

/** admin.token, or the one of admin.tokens named like the operator (or the only one); ${VAR} from the environment. */
function configToken(admin: AdminSection, file: string, operator: string | undefined): string | undefined {
  let raw: string | undefined
  let where = 'admin.token'
  if (typeof admin.token === 'string') raw = admin.token
  else if (Array.isArray(admin.tokens) && admin.tokens.length > 0) {
    const named =
      admin.tokens.find((t) => t.name === operator) ?? (admin.tokens.length === 1 ? admin.tokens[0] : undefined)
    if (named === undefined)
      throw new CommanderError(
        2,
        'sluice.admin.token',
        `error: ${file} has several admin.tokens: say which is yours with --operator NAME (its name), or set SLUICE_ADMIN_TOKEN`,
      )
    raw = named.token
    where = `admin.tokens (${named.name ?? '?'})`
  }
  if (raw === undefined) return undefined
  const missing: string[] = []
  const value = raw.replace(/\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (match, name: string | undefined) => {
    if (match === '$${') return '${'
    const v = process.env[name as string]
    if (v === undefined || v === '') missing.push(name as string)
    return v ?? ''
  })
  if (missing.length > 0)
    throw new CommanderError(
      2,
      'sluice.admin.token',
      `error: ${where} in ${file} is \${${missing[0]}}, which is not set here: export ${missing[0]}=…, or set SLUICE_ADMIN_TOKEN`,
    )
  return value
}

/** A listener on every address is reached on loopback. */
function connectable(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1'
  if (host === '::') return '[::1]'
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
}
