// `sluice accounts list|show|unlock|reset`, `sluice incidents`, `sluice reload`: clients of the
// admin API (docs/admin.md). Exit codes: 0 done; 1 the API refused or could not be reached; 2 usage.
// stdout carries the answer (aligned tables, or --json); errors go to stderr.
import { Command, CommanderError, Option } from 'commander'
import type { DecisionJson } from '../admin/decisions.js'
import type {
  AccountJson,
  AccountListJson,
  AccountsFoundJson,
  DisabledJson,
  LimitJson,
  ResetJson,
  RouteJson,
  UnlockJson,
} from '../admin/accounts.js'
import type { IncidentsJson } from '../admin/server.js'
import { printable } from '../replay/escape.js'
import { actorHeaders, urlOrigin, withAdminConfig } from './admin-client.js'

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9090'
const TIMEOUT_MS = 30_000

export interface ClientOptions {
  url: string
  token?: string
  json?: boolean
}

/** Registers the commands; `exit` receives the exit code. */
export function registerAccounts(program: Command, exit: (code: number) => void): void {
  const accounts = program
    .command('accounts')
    .description(
      'see and act on accounts through the admin API (URL and token from flags or SLUICE_ADMIN_URL, SLUICE_ADMIN_TOKEN)',
    )

  client(accounts.command('list').description('the accounts closest to (or past) their limits, most pressed first'))
    .option('--route <route>', 'only this route')
    .addOption(
      new Option('--by <kind>', 'pressure by distinct records or requests')
        .choices(['distinct', 'requests'])
        .default('distinct'),
    )
    .addOption(
      new Option('--per <key>', 'list accounts, client networks (net:…) or routes (route:…)')
        .choices(['account', 'network', 'route'])
        .default('account'),
    )
    .option('--limit <n>', 'how many accounts', count, 20)
    .action(async (opts: ClientOptions & { route?: string; by: string; per: string; limit: number }) => {
      const query = new URLSearchParams({
        by: opts.by,
        per: opts.per,
        limit: String(opts.limit),
        ...(opts.route !== undefined ? { route: opts.route } : {}),
      })
      const list = await request<AccountListJson>(opts, 'GET', `/accounts?${query}`)
      if (list === undefined) return exit(1)
      print(opts, list, formatAccountList)
      exit(0)
    })

  client(
    accounts
      .command('show')
      .description('one account: every window of every route with its count, and whether it is disabled'),
  )
    .argument(
      '<account>',
      'account id as sluice logs it, e.g. header:alice (or just alice), user:alice, basic:alice#3f2a1b0c9d8e7f60, ip:1.2.3.4',
    )
    .action(async (account: string, opts: ClientOptions) => {
      const view = await request<AccountJson>(opts, 'GET', `/accounts/${encodeURIComponent(account)}`)
      if (view === undefined) return exit(1)
      print(opts, view, formatAccount)
      exit(0)
    })

  client(
    accounts
      .command('find')
      .description('account ids containing a text, any case (pager finds basic:pager#3f2a…, user:Pager)'),
  )
    .argument('<text>', 'part of an account id')
    .option('--limit <n>', 'how many', count, 50)
    .action(async (text: string, opts: ClientOptions & { limit: number }) => {
      const query = new URLSearchParams({ find: text, limit: String(opts.limit) })
      const found = await request<AccountsFoundJson>(opts, 'GET', `/accounts?${query}`)
      if (found === undefined) return exit(1)
      print(opts, found, formatFound)
      exit(0)
    })

  client(
    accounts
      .command('unlock')
      .description('lift a disable (enforced and shadow) at once, on every instance sharing the store'),
  )
    .argument('<account>', 'account id')
    .action(async (account: string, opts: ClientOptions) => {
      const result = await request<UnlockJson>(opts, 'POST', `/accounts/${encodeURIComponent(account)}/unlock`)
      if (result === undefined) return exit(1)
      print(opts, result, (r) =>
        r.unlocked
          ? `unlocked ${printable(r.account)} (was disabled: ${r.lifted.map(formatDisabled).join('; ')})`
          : `${printable(r.account)} was not disabled; nothing changed`,
      )
      exit(0)
    })

  client(accounts.command('reset').description("clear an account's counters (all routes, or one) and lift its disable"))
    .argument('<account>', 'account id')
    .option('--route <route>', "only this route's counters")
    .action(async (account: string, opts: ClientOptions & { route?: string }) => {
      const query = opts.route !== undefined ? `?${new URLSearchParams({ route: opts.route })}` : ''
      const result = await request<ResetJson>(opts, 'POST', `/accounts/${encodeURIComponent(account)}/reset${query}`)
      if (result === undefined) return exit(1)
      print(opts, result, (r) => {
        const what = r.route === null ? 'counters of every route cleared' : `counters of route ${r.route} cleared`
        return `reset ${printable(r.account)}: ${what}${r.lifted.length > 0 ? `, disable lifted (${r.lifted.map(formatDisabled).join('; ')})` : ''}`
      })
      exit(0)
    })

  const incidents = client(
    program
      .command('incidents')
      .description(
        "recent decisions other than allow, one row per episode (this instance's memory; the audit trail has them all)",
      ),
  )
  client(
    incidents
      .command('show')
      .description(
        'why a request was blocked: the decision behind a reference (the Sluice-Reference header, "reference" in the body, or the block page)',
      ),
  )
    .argument('<reference>', 'the reference, e.g. 7K3QX9M2PA')
    .action(async (ref: string, _opts: ClientOptions, cmd: Command) => {
      // `sluice incidents show REF --url …`: the parent command sees the shared flags first.
      const opts = cmd.optsWithGlobals<ClientOptions>()
      const decision = await request<DecisionJson>(opts, 'GET', `/decisions/${encodeURIComponent(ref)}`)
      if (decision === undefined) return exit(1)
      print(opts, decision, formatDecision)
      exit(0)
    })
  incidents
    .option('--account <account>', 'only this account')
    .option('--since <time>', 'only since a time (ISO 8601) or a duration ago (15m, 2h)')
    .option('--limit <n>', 'how many', count, 50)
    .action(async (opts: ClientOptions & { account?: string; since?: string; limit: number }) => {
      const query = new URLSearchParams({
        limit: String(opts.limit),
        ...(opts.account !== undefined ? { account: opts.account } : {}),
        ...(opts.since !== undefined ? { since: opts.since } : {}),
      })
      const result = await request<IncidentsJson>(opts, 'GET', `/incidents?${query}`)
      if (result === undefined) return exit(1)
      print(opts, result, formatIncidents)
      exit(0)
    })

  client(
    program
      .command('reload')
      .description(
        're-read the config of the running sluice (as SIGHUP does); an invalid config is rejected and the running one stays',
      ),
  ).action(async (opts: ClientOptions) => {
    const result = await request<{ ok: true }>(opts, 'POST', '/reload')
    if (result === undefined) return exit(1)
    print(opts, result, () => 'reloaded: the new config is running')
    exit(0)
  })
}

export function client(command: Command): Command {
  return withAdminConfig(command)
    .addOption(new Option('--url <url>', 'admin API').env('SLUICE_ADMIN_URL').default(DEFAULT_ADMIN_URL))
    .addOption(
      new Option('--token <token>', 'admin token (prefer the environment variable: flags show in ps)').env(
        'SLUICE_ADMIN_TOKEN',
      ),
    )
    .option('--json', "machine-readable output: the API's JSON as is")
}

/** The API's answer, or undefined after saying on stderr why there is none. */
export async function request<T>(opts: ClientOptions, method: string, path: string): Promise<T | undefined> {
  if (opts.token === undefined || opts.token === '')
    throw new CommanderError(
      2,
      'sluice.admin.token',
      'error: no admin token: set SLUICE_ADMIN_TOKEN, pass --token, or name the config with -c sluice.yaml (admin.token)',
    )
  const base = URL.parse(opts.url)
  if (base === null || (base.protocol !== 'http:' && base.protocol !== 'https:')) {
    throw new CommanderError(
      2,
      'sluice.admin.url',
      `error: "${opts.url}" is not an http(s) URL (--url, SLUICE_ADMIN_URL)`,
    )
  }
  const at = base.origin + base.pathname.replace(/\/+$/, '')
  let res: Response
  try {
    res = await fetch(at + path, {
      method,
      headers: { authorization: `Bearer ${opts.token}`, accept: 'application/json', ...actorHeaders(opts) },
      signal: AbortSignal.timeout(TIMEOUT_MS),
    })
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } }
    const why =
      e.name === 'TimeoutError'
        ? `no answer within ${TIMEOUT_MS / 1000}s`
        : (e.cause?.code ?? e.cause?.message ?? e.message)
    console.error(`sluice: cannot reach the admin API at ${at} (${why})${urlOrigin(opts)}`)
    return undefined
  }
  const text = await res.text()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    body = undefined
  }
  if (res.status === 401) {
    console.error(
      `sluice: the admin token was refused by ${at} (check SLUICE_ADMIN_TOKEN against admin.token in the config)`,
    )
    return undefined
  }
  if (!res.ok) {
    const problem = body as { detail?: string; code?: string; errors?: string[] } | undefined
    const detail = problem?.detail ?? `HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`
    console.error(`sluice: ${printable(detail)}${problem?.code ? ` (${problem.code})` : ''}`)
    for (const e of problem?.errors ?? []) console.error(`  ${printable(e)}`)
    return undefined
  }
  if (body === undefined) {
    console.error(`sluice: ${at} answered something other than JSON: is it sluice's admin listener?`)
    return undefined
  }
  return body as T
}

export function print<T>(opts: ClientOptions, value: T, format: (value: T) => string): void {
  console.log(opts.json ? JSON.stringify(value, null, 2) : format(value))
}

// ─── tables ──────────────────────────────────────────────────────────────────────────────
// Everything an account id or a route carries came from a client: printed through `printable`
// (an ESC in a header value must not drive the operator's terminal).

export function formatAccountList(list: AccountListJson): string {
  const noun = { account: 'account', network: 'network', route: 'route' }[list.per ?? 'account']
  const rows: string[][] = [[noun.toUpperCase(), 'PRESSURE', 'DISABLED', 'ROUTE', 'COUNTS']]
  for (const a of list.accounts) {
    const disabled = a.disabled.length > 0 ? a.disabled.map(formatDisabled).join('; ') : '-'
    if (a.routes.length === 0) rows.push([printable(a.account), percent(a.pressure), disabled, '-', '-'])
    a.routes.forEach((r, i) => {
      rows.push(
        i === 0
          ? [printable(a.account), percent(a.pressure), disabled, r.route, routeSummary(r)]
          : ['', '', '', r.route, routeSummary(r)],
      )
    })
  }
  const by = list.by === 'distinct' ? 'distinct records' : 'requests'
  const where = list.route === null ? 'all routes' : `route ${list.route}`
  const lines = list.accounts.length > 0 ? [table(rows)] : [`no ${noun} has counts in any window`]
  lines.push(
    '',
    `${list.accounts.length} ${noun}${list.accounts.length === 1 ? '' : 's'} by ${by}, ${where} (${list.scanned} with counts); pressure = highest count / limit; at ${list.at}`,
  )
  if (list.truncated)
    lines.push('warning: the store stopped enumerating at its bound: accounts beyond it were not considered')
  return lines.join('\n')
}

export function formatAccount(view: AccountJson): string {
  const head = table([
    ['account', printable(view.account)],
    ['disabled', view.disabled.length > 0 ? view.disabled.map(formatDisabledBy).join('; ') : 'no'],
    ['at', view.at],
  ])
  const parts = [head]
  if (view.routes.length === 0) parts.push('no counts in any window')
  else {
    const rows: string[][] = [['ROUTE', 'WINDOW', 'PER', 'KIND', 'COUNT', 'MAX', 'USED', 'ACTION']]
    for (const r of view.routes) {
      for (const l of r.limits)
        rows.push([
          r.route,
          l.window,
          l.per ?? 'account',
          unit(l.kind),
          String(l.count),
          String(l.max),
          percent(used(l)),
          l.action,
        ])
    }
    parts.push(table(rows))
  }
  if (view.decisions !== undefined) {
    if (view.decisions.length === 0) parts.push('no recent decisions on this instance')
    else {
      const rows: string[][] = [['TIME (UTC)', 'ROUTE', 'DECISION', 'LIMIT', 'REFERENCE']]
      for (const d of view.decisions)
        rows.push([
          utc(d.time),
          d.route,
          d.shadow ? `${d.decision} (shadow)` : d.decision,
          d.limit?.label ?? '-',
          d.reference,
        ])
      parts.push(`latest decisions (this instance, newest first):\n${table(rows)}`)
    }
  }
  return parts.join('\n\n')
}

export function formatFound(found: AccountsFoundJson): string {
  if (found.accounts.length === 0) return `no account id contains "${printable(found.find)}"`
  const lines = found.accounts.map(printable)
  if (found.truncated) lines.push(`… more: narrow the text, or raise --limit`)
  return lines.join('\n')
}

/** `sluice incidents show REF`: the decision behind a reference, for the person answering "why was I blocked?". */
export function formatDecision(d: DecisionJson): string {
  const what = d.shadow ? `${d.decision} (shadow: logged, served)` : d.blocked ? d.decision : `${d.decision} (served)`
  const rows: string[][] = [
    ['reference', d.reference],
    ['time', `${utc(d.time)} UTC`],
    ['account', printable(d.account)],
    ['route', d.route],
    ['decision', what],
  ]
  if (d.limit !== null) {
    const l = d.limit
    rows.push([
      'limit',
      `${l.label} (${l.max} ${unit(l.kind)} per ${l.window}, counted per ${l.per}; action ${l.action})`,
    ])
  } else rows.push(['limit', d.decision === 'disabled' ? '- (already disabled: see the disable decision)' : '-'])
  if (d.disabledUntil !== undefined)
    rows.push([
      'disabled until',
      d.disabledUntil === 'forever' ? 'forever (until unlocked)' : `${utc(d.disabledUntil)} UTC`,
    ])
  if (d.retryAfter !== undefined) rows.push(['retry after', `${d.retryAfter} s`])
  rows.push(
    ['client', `${printable(d.clientIp)} (${printable(d.identity)} identity)`],
    ['request', `${printable(d.method)} ${printable(d.path)} (${d.step} step)`],
    ['instance', printable(d.instance)],
  )
  const counts: string[][] = [['LIMIT', 'WINDOW', 'PER', 'KIND', 'COUNT', 'MAX']]
  for (const c of d.counts)
    counts.push([
      c.id === d.limit?.id ? `${c.id} *` : c.id,
      c.window,
      c.per,
      unit(c.kind),
      String(c.count),
      String(c.max),
    ])
  return `${table(rows)}\n\ncounts at that moment (* acted):\n${table(counts)}`
}

export function formatIncidents(result: IncidentsJson): string {
  if (result.incidents.length === 0) return 'no incidents'
  const rows: string[][] = [
    ['FIRST (UTC)', 'LAST (UTC)', 'REQUESTS', 'ACCOUNT', 'ROUTE', 'DECISION', 'LIMIT', 'CLIENT', 'REFERENCE (LAST)'],
  ]
  for (const e of result.incidents) {
    rows.push([
      utc(e.first ?? e.time),
      utc(e.last ?? e.time),
      String(e.count ?? 1),
      printable(e.account),
      e.route,
      e.shadow ? `${e.decision} (shadow)` : e.decision,
      e.limit ?? '-',
      e.clientIp !== undefined ? printable(e.clientIp) : '-',
      e.reference ?? '-',
    ])
  }
  const episodes = result.episodes !== undefined ? `${result.episodes} episodes, ` : ''
  return `${table(rows)}\n\n${result.incidents.length} shown, one row per episode of (account, route, limit, action), latest first; this instance keeps the last ${result.capacity} (${episodes}${result.recorded} decisions since it started); sluice incidents show REFERENCE explains one`
}

/** `2026-11-30T19:02:10.608Z` → `2026-11-30 19:02:10` (UTC, as the column says). */
function utc(iso: string): string {
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/.test(iso) ? iso.slice(0, 19).replace('T', ' ') : printable(iso)
}

function unit(kind: string): string {
  return kind === 'requests' ? 'requests' : kind === 'distinctAccounts' ? 'distinct accounts' : 'distinct records'
}

function routeSummary(r: RouteJson): string {
  return r.limits
    .map((l) => `${l.count}/${l.max} ${l.kind === 'requests' ? 'requests' : 'records'}/${l.window}`)
    .join(', ')
}

function used(l: LimitJson): number {
  return l.max > 0 ? l.count / l.max : l.count
}

function percent(ratio: number): string {
  return `${Math.round(ratio * 100)}%`
}

export function formatDisabled(d: DisabledJson): string {
  return `${d.mode}${d.until === 'forever' ? ', until unlocked' : ` until ${d.until}`}`
}

/** A disable with the limit that did it and since when, when the decision is still kept. */
function formatDisabledBy(d: DisabledJson): string {
  const by = d.limit !== undefined ? ` by ${d.limit}` : ''
  const since = d.since !== undefined ? ` since ${d.since}` : ''
  const ref = d.reference !== undefined ? ` (reference ${d.reference})` : ''
  return `${formatDisabled(d)}${by}${since}${ref}`
}

/** Columns padded to their widest cell, two spaces apart; the last one is not padded. */
export function table(rows: string[][]): string {
  const widths: number[] = []
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...cell].length)))
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] as number) - [...cell].length)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}

function count(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1)
    throw new CommanderError(2, 'sluice.count', `error: "${value}" is not a positive whole number`)
  return n
}
