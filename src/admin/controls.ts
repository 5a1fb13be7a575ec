// Manual controls: POST /accounts/:account/disable and /enable. An operator disables an account
// (or a network, `net:<cidr>`, or a route, `route:<name>`) for a time or until enabled, with a
// reason; enable lifts any disable, as unlock does. Both are admin actions (audited).
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { parseDuration } from '../config/duration.js'
import { perOf, policiesFor, type RoutePolicy } from '../engine/policy.js'
import type { Store } from '../engine/store.js'
import { disabledJson, fromStore, queryOf, type AccountRoutesContext, type DisabledJson } from './accounts.js'
import { badRequest } from './problem.js'

/** POST /accounts/:account/disable */
export interface DisableJson {
  account: string
  disabled: true
  /** ISO 8601, or `forever` (until enabled). */
  until: string
  reason: string | null
  /** Disables in force before (the manual one replaces an enforced one). */
  replaced: DisabledJson[]
}

/** POST /accounts/:account/enable */
export interface EnableJson {
  account: string
  /** false: it was not disabled (nothing changed). */
  enabled: boolean
  lifted: DisabledJson[]
}

/** Ids sluice gives (src/identity/chain.ts, the store's net:/route:/overflow: keys). */
const PREFIXES = ['header:', 'jwt:', 'user:', 'basic:', 'session:', 'ip:', 'net:', 'route:', 'overflow:']
const MAX_REASON = 500

export type ControlsContext = Pick<AccountRoutesContext, 'store' | 'policies' | 'clock' | 'act'>

export function registerControlRoutes(app: FastifyInstance, ctx: ControlsContext): void {
  app.post('/accounts/:account/disable', async (request): Promise<DisableJson> => {
    const params = disableParams(request)
    const asked = accountParam(request)
    const now = ctx.clock()
    const account = await resolve(ctx.store, asked, ctx.policies(), now).catch((err: unknown) => {
      ctx.act(request, { action: 'disable', account: asked, result: 'not-found' })
      throw err
    })
    const before = await fromStore(() => ctx.store.disabled(account, now))
    const until = params.forMs === Infinity ? Infinity : now + params.forMs
    await fromStore(() => ctx.store.disableManually(account, until, now))
    const untilText = Number.isFinite(until) ? new Date(until).toISOString() : 'forever'
    ctx.act(request, {
      action: 'disable',
      account,
      result: 'disabled',
      until: untilText,
      ...(params.reason !== null ? { reason: params.reason } : {}),
    })
    return { account, disabled: true, until: untilText, reason: params.reason, replaced: before.map(disabledJson) }
  })

  app.post('/accounts/:account/enable', async (request): Promise<EnableJson> => {
    queryOf(request, [])
    const asked = accountParam(request)
    const now = ctx.clock()
    const account = await resolve(ctx.store, asked, ctx.policies(), now).catch((err: unknown) => {
      ctx.act(request, { action: 'enable', account: asked, result: 'not-found' })
      throw err
    })
    const before = await fromStore(() => ctx.store.disabled(account, now))
    const enabled = await fromStore(() => ctx.store.unlock(account))
    const lifted = enabled ? before.map(disabledJson) : []
    ctx.act(request, { action: 'enable', account, result: enabled ? 'enabled' : 'not-disabled', lifted })
    return { account, enabled, lifted }
  })
}

/** `for` (a duration) or `forever`, and `reason`: from the query or a JSON body. */
function disableParams(request: FastifyRequest): { forMs: number; reason: string | null } {
  const q = queryOf(request, ['for', 'forever', 'reason'])
  const body = request.body
  if (body !== undefined && body !== null && (typeof body !== 'object' || Array.isArray(body)))
    throw badRequest('the body must be a JSON object: {"for": "24h", "reason": "…"}')
  const b = (body ?? {}) as Record<string, unknown>
  for (const key of Object.keys(b))
    if (!['for', 'forever', 'reason'].includes(key))
      throw badRequest(`unknown field "${key}" (this endpoint takes for, forever, reason)`)
  const pick = (key: string): unknown => {
    if (q[key as keyof typeof q] !== undefined && b[key] !== undefined) throw badRequest(`give ${key} once`)
    return q[key as keyof typeof q] ?? b[key]
  }
  const forText = pick('for')
  const foreverValue = pick('forever')
  const reasonValue = pick('reason')
  const forever = foreverValue === true || foreverValue === 'true' || foreverValue === ''
  if (foreverValue !== undefined && !forever && foreverValue !== false && foreverValue !== 'false')
    throw badRequest(`forever is true or false, not "${String(foreverValue)}"`)
  if (forever && forText !== undefined) throw badRequest('give for (a duration) or forever, not both')
  if (!forever && forText === undefined)
    throw badRequest('say how long: for=24h (a duration: 30m, 24h, 7d) or forever=true (until enabled)')
  let forMs = Infinity
  if (!forever) {
    const ms = typeof forText === 'string' ? parseDuration(forText) : undefined
    if (ms === undefined || !(ms > 0))
      throw badRequest(`for must be a positive duration (30m, 24h, 7d), not "${String(forText)}"`)
    forMs = ms
  }
  if (reasonValue !== undefined && typeof reasonValue !== 'string') throw badRequest('reason must be text')
  const reason = typeof reasonValue === 'string' && reasonValue.trim() !== '' ? reasonValue.trim() : null
  if (reason !== null && reason.length > MAX_REASON) throw badRequest(`reason is at most ${MAX_REASON} characters`)
  // eslint-disable-next-line no-control-regex
  if (reason !== null && /[\u0000-\u001f\u007f]/.test(reason)) throw badRequest('reason contains no control characters')
  return { forMs, reason }
}

/**
 * The key to act on: an id as sluice prints it (`header:alice`, `net:203.0.113.0/24`,
 * `route:contact`), or a bare name the store knows as `header:<name>` or `jwt:<name>` (as GET
 * /accounts/:account reads it). A bare name the store knows nothing about is refused: which
 * identity it would be is a guess, and disabling a guess blocks no one.
 */
async function resolve(store: Store, asked: string, policies: readonly RoutePolicy[], now: number): Promise<string> {
  if (PREFIXES.some((p) => asked.startsWith(p))) return asked
  for (const account of [`header:${asked}`, `jwt:${asked}`]) {
    const view = await fromStore(() => store.account(account, policiesFor(perOf(account), policies), now))
    if (view) return account
  }
  throw badRequest(
    `"${asked}" has no prefix and the store knows neither header:${asked} nor jwt:${asked}: name the account as sluice logs it (header:…, jwt:…, user:…, basic:…#…, session:…, ip:…, net:<cidr>, route:<name>)`,
  )
}

function accountParam(request: FastifyRequest): string {
  const account = (request.params as { account?: unknown }).account
  if (typeof account !== 'string' || account.length === 0)
    throw badRequest('name an account: /accounts/<account id, URL-encoded>/disable')
  if (account.length > 1024) throw badRequest('an account id is at most 1024 characters')
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(account)) throw badRequest('an account id contains no control characters')
  return account
}
