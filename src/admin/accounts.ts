// /accounts: who is under pressure, one account's windows, unlock and reset.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { formatMs, perOf, policiesFor, type Per, type RoutePolicy } from '../engine/policy.js'
import type { AccountView, DisabledState, LimitCount, PressureBy, RouteCounts, Store } from '../engine/store.js'
import type { DecisionJson, DecisionLog } from './decisions.js'
import { AdminError, badRequest } from './problem.js'

export interface DisabledJson {
  mode: 'enforce' | 'shadow'
  /** ISO 8601, or `forever` (until an operator unlocks it). */
  until: string
  /** The limit that disabled it (label), when the decision is still kept (GET /accounts/:account). */
  limit?: string
  /** When that decision was made. */
  since?: string
  /** That decision's reference (GET /decisions/:ref). */
  reference?: string
}

export interface LimitJson extends Omit<LimitCount, 'windowMs'> {
  /** `10m` */
  window: string
  windowMs: number
}

export interface RouteJson {
  route: string
  limits: LimitJson[]
}

/** GET /accounts/:account */
export interface AccountJson {
  account: string
  /** When the counts were read. */
  at: string
  disabled: DisabledJson[]
  routes: RouteJson[]
  /** The account's latest decisions other than allow, newest first (this instance's memory; GET /accounts/:account). */
  decisions?: DecisionJson[]
}

/** GET /accounts?find=TEXT */
export interface AccountsFoundJson {
  find: string
  /** Account ids containing the text, any case; sorted. */
  accounts: string[]
  truncated: boolean
}

/** GET /accounts */
export interface AccountListJson {
  at: string
  by: PressureBy
  /** Whose keys are listed: accounts, networks (`net:…`) or routes (`route:…`). */
  per: Per
  route: string | null
  limit: number
  /** Accounts ranked: those with state on the routes asked about (or, for all routes, disabled). */
  scanned: number
  /** The store stopped enumerating at its bound (Redis: SCAN_BOUND keys). */
  truncated: boolean
  accounts: (Omit<AccountJson, 'at'> & { pressure: number })[]
}

export interface UnlockJson {
  account: string
  /** false: the account was not disabled (nothing changed). */
  unlocked: boolean
  /** The disables lifted. */
  lifted: DisabledJson[]
}

export interface ResetJson {
  account: string
  route: string | null
  reset: true
  lifted: DisabledJson[]
}

export type AdminActionName = 'unlock' | 'reset' | 'reload' | 'disable' | 'enable' | 'sign-in' | 'sign-out'
export type AdminActionResult =
  | 'unlocked'
  | 'not-disabled'
  | 'reset'
  | 'not-found'
  | 'reloaded'
  | 'rejected'
  | 'failed'
  | 'disabled'
  | 'enabled'
  | 'signed-in'
  | 'signed-out'
  | 'refused'

/** Reported for every admin action, done or refused (the audit trail records it). */
export interface AdminAction {
  action: AdminActionName
  account?: string
  route?: string
  result: AdminActionResult
  /** Disables an unlock or reset lifted. */
  lifted?: DisabledJson[]
  /** Why a reload was rejected or failed. */
  errors?: string[]
  /** A manual disable's end: ISO 8601, or `forever` (POST /accounts/:account/disable). */
  until?: string
  /** Why the operator disabled it, as given. */
  reason?: string
  /** Who did it, as they said (X-Sluice-Operator, `sluice … --operator NAME`). */
  operator?: string
  /** The name of the admin token it came with, when admin.tokens names them. */
  tokenName?: string
  remoteAddress: string
  /** Milliseconds since the epoch. */
  time: number
}

export interface AccountRoutesContext {
  store: Store
  policies: () => readonly RoutePolicy[]
  clock: () => number
  act: (request: FastifyRequest, action: Omit<AdminAction, 'remoteAddress' | 'time'>) => void
  /** Decisions by reference: which limit disabled an account, and its latest decisions. */
  decisions?: DecisionLog
}

const MAX_LIST = 1000
/** An account's latest decisions shown by GET /accounts/:account. */
const RECENT_DECISIONS = 10

/** GET /accounts?find=TEXT[&limit=N]: account ids containing the text, any case. */
async function findAccounts(
  store: Store,
  text: string,
  limitText: string | undefined,
  params: number,
): Promise<AccountsFoundJson> {
  if (params > (limitText === undefined ? 1 : 2)) throw badRequest('find takes only limit beside it')
  if (text.trim() === '') throw badRequest('find needs some text: part of an account id (pager finds basic:pager#…)')
  if (text.length > 256) throw badRequest('find is at most 256 characters')
  const limit = limitText === undefined ? 50 : integer('limit', limitText, 1, MAX_LIST)
  if (!store.findAccounts) throw new AdminError('SLUICE_ERR_ADMIN_STORE', 'this store cannot search account ids')
  const found = await fromStore(() => (store.findAccounts as NonNullable<Store['findAccounts']>)(text, limit))
  return { find: text, accounts: found.accounts, truncated: found.truncated }
}

export function registerAccountRoutes(app: FastifyInstance, ctx: AccountRoutesContext): void {
  const { store } = ctx

  app.get('/accounts', async (request): Promise<AccountListJson | AccountsFoundJson> => {
    const q = queryOf(request, ['route', 'by', 'limit', 'per', 'find'])
    if (q.find !== undefined) return findAccounts(store, q.find, q.limit, Object.keys(q).length)
    const route = q.route === undefined ? undefined : knownRoute(q.route, ctx.policies())
    const per = q.per ?? 'account'
    if (per !== 'account' && per !== 'network' && per !== 'route')
      throw badRequest(`per must be account, network or route, not "${per}"`)
    const policies = policiesFor(per, ctx.policies())
    const by = q.by ?? 'distinct'
    if (by !== 'distinct' && by !== 'requests') throw badRequest(`by must be distinct or requests, not "${by}"`)
    const limit = q.limit === undefined ? 20 : integer('limit', q.limit, 1, MAX_LIST)
    const page = await fromStore(() =>
      store.accounts({ policies, by, limit, per, now: ctx.clock(), ...(route !== undefined ? { route } : {}) }),
    )
    return {
      at: iso(page.now),
      by,
      per,
      route: route ?? null,
      limit,
      scanned: page.scanned,
      truncated: page.truncated,
      accounts: page.accounts.map((a) => ({
        account: a.account,
        pressure: Math.round(a.pressure * 1000) / 1000,
        disabled: a.disabled.map(disabledJson),
        routes: mergeParts(a.routes).map(routeJson),
      })),
    }
  })

  app.get('/accounts/:account', async (request): Promise<AccountJson> => {
    queryOf(request, [])
    const { view } = await findAccount(store, accountParam(request), ctx.policies(), ctx.clock())
    const json = accountJson(view)
    const log = ctx.decisions
    // Which limit disabled it, since when: kept with the disable by the store; the reference
    // from the decision that did, while this instance keeps it.
    json.disabled = json.disabled.map((d, i) => {
      const state = view.disabled[i] as DisabledState
      const label = state.limit ? labelOf(state.limit, ctx.policies()) : undefined
      const kept = { ...d, ...(label ? { limit: label } : {}), ...(state.since ? { since: iso(state.since) } : {}) }
      const by = log?.lastDisable(view.account, state.shadow)
      if (by === undefined || (by.disabledUntil !== undefined && by.disabledUntil !== d.until)) return kept
      return { ...(by.limit ? { limit: by.limit.label } : {}), since: by.time, ...kept, reference: by.reference }
    })
    if (!log) return json
    return { ...json, decisions: log.recent(view.account, RECENT_DECISIONS) }
  })

  app.post('/accounts/:account/unlock', async (request): Promise<UnlockJson> => {
    queryOf(request, [])
    const asked = accountParam(request)
    const found = await findAccount(store, asked, ctx.policies(), ctx.clock()).catch((err: unknown) => {
      ctx.act(request, { action: 'unlock', account: asked, result: 'not-found' })
      throw err
    })
    const { account, view } = found
    const unlocked = await fromStore(() => store.unlock(account))
    const lifted = unlocked ? view.disabled.map(disabledJson) : []
    ctx.act(request, { action: 'unlock', account, result: unlocked ? 'unlocked' : 'not-disabled', lifted })
    return { account, unlocked, lifted }
  })

  app.post('/accounts/:account/reset', async (request): Promise<ResetJson> => {
    const q = queryOf(request, ['route'])
    const asked = accountParam(request)
    const policies = ctx.policies()
    const route = q.route === undefined ? undefined : knownRoute(q.route, policies)
    const { account, view } = await findAccount(store, asked, policies, ctx.clock()).catch((err: unknown) => {
      ctx.act(request, {
        action: 'reset',
        account: asked,
        ...(route !== undefined ? { route } : {}),
        result: 'not-found',
      })
      throw err
    })
    await fromStore(() =>
      store.reset(account, {
        policies: policiesFor(perOf(account), policies),
        ...(route !== undefined ? { route } : {}),
      }),
    )
    const lifted = view.disabled.map(disabledJson)
    ctx.act(request, { action: 'reset', account, ...(route !== undefined ? { route } : {}), result: 'reset', lifted })
    return { account, route: route ?? null, reset: true, lifted }
  })
}

export function accountJson(view: AccountView): AccountJson {
  return {
    account: view.account,
    at: iso(view.now),
    disabled: view.disabled.map(disabledJson),
    routes: mergeParts(view.routes).map(routeJson),
  }
}

/** A route's windows may be two parts (records, and distinct accounts: `route~accounts`): one route to the operator. */
function mergeParts(routes: readonly RouteCounts[]): RouteCounts[] {
  const byRoute = new Map<string, RouteCounts>()
  for (const r of routes) {
    const name = r.route.split('~')[0] as string
    const known = byRoute.get(name)
    if (known)
      known.limits = [...known.limits, ...r.limits].sort((a, b) =>
        a.limit.localeCompare(b.limit, 'en', { numeric: true }),
      )
    else byRoute.set(name, { route: name, limits: r.limits })
  }
  return [...byRoute.values()]
}

function routeJson(r: RouteCounts): RouteJson {
  return {
    route: r.route,
    limits: r.limits.map((l) => ({
      limit: l.limit,
      label: l.label,
      kind: l.kind,
      per: l.per,
      window: formatMs(l.windowMs),
      windowMs: l.windowMs,
      max: l.max,
      action: l.action,
      count: l.count,
    })),
  }
}

/** A limit's label by its id (`route#index`) in the running config. */
function labelOf(id: string, policies: readonly RoutePolicy[]): string | undefined {
  for (const p of policies) for (const l of p.limits) if (l.id === id) return l.label
  return undefined
}

export function disabledJson(d: DisabledState): DisabledJson {
  return { mode: d.shadow ? 'shadow' : 'enforce', until: Number.isFinite(d.until) ? iso(d.until) : 'forever' }
}

function iso(ms: number): string {
  return new Date(ms).toISOString()
}

/** Store failures are the store's (503), never a 500 that reads like a bug. */
export async function fromStore<T>(call: () => T | Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (err) {
    if (err instanceof AdminError) throw err
    throw new AdminError('SLUICE_ERR_ADMIN_STORE', `the store did not answer: ${(err as Error).message}`)
  }
}

/**
 * An account as an operator names it: its key as sluice prints it (`header:alice`,
 * `jwt:alice`, `user:alice`, `basic:alice#…`), or the bare value of a header or JWT identity
 * (`alice`), tried as `header:alice`, then `jwt:alice`.
 */
async function findAccount(
  store: AccountRoutesContext['store'],
  asked: string,
  policies: readonly RoutePolicy[],
  now: number,
): Promise<{ account: string; view: AccountView }> {
  for (const account of [asked, `header:${asked}`, `jwt:${asked}`]) {
    const view = await fromStore(() => store.account(account, policiesFor(perOf(account), policies), now))
    if (view) return { account, view }
  }
  throw unknownAccount(asked)
}

function unknownAccount(account: string): AdminError {
  return new AdminError(
    'SLUICE_ERR_ADMIN_NOT_FOUND',
    `the store holds nothing for account "${account}" (no counts in any window, not disabled): check the id, e.g. header:alice, jwt:alice, user:alice, basic:alice#3f2a1b0c9d8e7f60, session:…, ip:1.2.3.4, overflow:203.0.113.0/24, net:203.0.113.0/24, route:contact, URL-encoded`,
  )
}

function accountParam(request: FastifyRequest): string {
  const account = (request.params as { account?: unknown }).account
  if (typeof account !== 'string' || account.length === 0)
    throw badRequest('name an account: /accounts/<account id, URL-encoded>')
  if (account.length > 1024) throw badRequest('an account id is at most 1024 characters')
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(account)) throw badRequest('an account id contains no control characters')
  return account
}

function knownRoute(route: string, policies: readonly RoutePolicy[]): string {
  if (policies.some((p) => p.name === route)) return route
  const names = policies.map((p) => p.name).join(', ')
  throw badRequest(`no route named "${route}" in the running config${names ? ` (routes: ${names})` : ''}`)
}

export function integer(name: string, text: string, min: number, max: number): number {
  const n = /^[0-9]{1,9}$/.test(text) ? Number(text) : NaN
  if (!(n >= min && n <= max)) throw badRequest(`${name} must be a whole number from ${min} to ${max}, not "${text}"`)
  return n
}

/** Query parameters, each at most once; an unknown one is a typo worth refusing. */
export function queryOf<K extends string>(request: FastifyRequest, allowed: readonly K[]): Partial<Record<K, string>> {
  const query = (request.query ?? {}) as Record<string, string | string[] | undefined>
  const out: Partial<Record<K, string>> = {}
  for (const [key, value] of Object.entries(query)) {
    if (!(allowed as readonly string[]).includes(key)) {
      throw badRequest(
        allowed.length > 0
          ? `unknown parameter "${key}" (this endpoint takes ${allowed.join(', ')})`
          : `unknown parameter "${key}" (this endpoint takes none)`,
      )
    }
    if (Array.isArray(value)) throw badRequest(`give ${key} once`)
    if (value !== undefined) out[key as K] = value
  }
  return out
}
