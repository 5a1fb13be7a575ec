// The admin listener: a separate port, never the public one. /healthz and /readyz answer
// load-balancer probes without a token (they reveal only up/degraded); everything else needs
// `Authorization: Bearer <admin.token>`, compared in constant time. Endpoints: docs/admin.md.
import { createHash, timingSafeEqual } from 'node:crypto'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { AuditState } from '../audit/index.js'
import { parseDuration } from '../config/duration.js'
import type { RoutePolicy } from '../engine/policy.js'
import type { ReloadResult } from '../runtime.js'
import type { Store } from '../engine/store.js'
import { queryOf, integer, registerAccountRoutes, type AdminAction } from './accounts.js'
import { registerControlRoutes } from './controls.js'
import { registerDecisionRoutes, type DecisionLog } from './decisions.js'
import type { IncidentLog, RecordedIncident } from './incidents.js'
import type { Metrics } from './metrics.js'
import type { UpstreamHealth } from './readiness.js'
import { registerConsole, type ConsoleOptions } from './console/routes.js'
import { AdminError, badRequest, sendAdminProblem } from './problem.js'

export type { AdminAction, AdminActionName, AdminActionResult } from './accounts.js'

/** GET /incidents: episodes, newest (last decision) first; times as ISO 8601. */
export interface IncidentsJson {
  incidents: (Omit<RecordedIncident, 'time' | 'first' | 'last'> & { time: string; first: string; last: string })[]
  /** Episodes this instance keeps at most. */
  capacity: number
  /** Decisions recorded since it started. */
  recorded: number
  /** Episodes since it started. */
  episodes?: number
}

export type { ReloadResult }

/** What readiness needs of the audit trail (`AuditTrail.state()`). */
export type AuditHealth = Pick<AuditState, 'healthy' | 'backlog'> & Partial<Pick<AuditState, 'refusing'>>

export interface AdminOptions {
  /** The shared admin token ('' when only named tokens are configured: it matches nothing). */
  token: string
  /** Named tokens (admin.tokens): each admin action records the name of the one it came with. */
  tokens?: readonly { name: string; token: string }[]
  metrics: Metrics
  store: Store
  /** The running config's route policies (`config.routes.map((r) => r.policy)`); a function follows reloads. */
  policies?: readonly RoutePolicy[] | (() => readonly RoutePolicy[])
  /** Recent incidents for GET /incidents (empty without it). */
  incidents?: IncidentLog
  /** Decisions by reference for GET /decisions/:ref (and an account's latest decisions). */
  decisions?: DecisionLog
  /** POST /reload calls it (501 without it). */
  reload?: () => Promise<ReloadResult>
  /** Every admin action (unlock, reset, reload), done or refused: for the audit trail. Must not throw. */
  onAdminAction?: (action: AdminAction) => void
  /** Audit state for /readyz. */
  audit?: () => AuditHealth
  /** The upstream's reachability for /readyz (admin.readiness.upstream; the standalone proxy only). */
  upstream?: () => UpstreamHealth
  clock?: () => number
  /** Where admin actions and refused tokens are logged (e.g. the proxy's `app.log`). */
  logger?: FastifyBaseLogger | boolean
  /** The operators' web console at /console (docs/console.md); none without it. */
  console?: ConsoleOptions
}

export interface Readiness {
  status: 'ready' | 'degraded'
  store: { type: string; state: string; policy?: string }
  audit?: { state: 'ok' | 'retrying' | 'refusing'; backlog: number }
  /** With admin.readiness.upstream: unreachable is 503, with the reason. */
  upstream?: UpstreamHealth
}

export interface ReadinessChecks {
  audit?: () => AuditHealth
  upstream?: () => UpstreamHealth
}

export function readiness(store: Store, checks: ReadinessChecks = {}): { code: number; body: Readiness } {
  let code = 200
  let degraded = false
  let storeBody: Readiness['store']
  const health = store.health()
  if (health.policy !== undefined) {
    const down = health.state !== 'ok'
    degraded ||= down
    storeBody = { type: health.type, state: health.state, policy: health.policy }
    // Only fail-closed stops serving sensitive routes; with fail-open or local the instance still
    // serves, and taking every instance out of rotation at once would be the outage itself.
    if (down && health.policy === 'fail-closed') code = 503
  } else {
    storeBody = { type: health.type, state: 'ok' }
  }
  const body: Readiness = { status: 'ready', store: storeBody }
  if (checks.audit) {
    const a = checks.audit()
    const state = a.refusing ? 'refusing' : a.healthy ? 'ok' : 'retrying'
    body.audit = { state, backlog: a.backlog }
    degraded ||= state !== 'ok'
    // While the sink retries, nothing accepted is lost: keep serving. Once the queue refuses
    // entries, decisions go unrecorded: out of rotation until the disk takes writes again.
    if (state === 'refusing') code = 503
  }
  if (checks.upstream) {
    const u = checks.upstream()
    body.upstream = u
    // Nothing this instance forwards can be answered: out of rotation until the upstream takes connections.
    if (u.state !== 'ok') {
      degraded = true
      code = 503
    }
  }
  body.status = degraded ? 'degraded' : 'ready'
  return { code, body }
}

export async function buildAdmin(options: AdminOptions): Promise<FastifyInstance> {
  // Account ids in the path are URL-encoded and can be long (a JWT subject, an e-mail address).
  const app = Fastify({ logger: false, routerOptions: { maxParamLength: 4096 } })
  const matchToken = tokenMatcher(options)
  const tokenNames = new WeakMap<FastifyRequest, string>()
  const log = typeof options.logger === 'object' ? options.logger : undefined
  const clock = options.clock ?? Date.now
  const given = options.policies
  const policies = typeof given === 'function' ? given : () => given ?? []

  // Every route is protected unless it says otherwise; so are unknown paths (a 404 would tell
  // an unauthenticated caller which endpoints exist).
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if ((request.routeOptions.config as { public?: boolean } | undefined)?.public === true) return
    const header = request.headers.authorization ?? ''
    const token = header.toLowerCase().startsWith('bearer ') ? header.slice(7).trim() : ''
    const match = matchToken(token)
    if (match?.name !== undefined) tokenNames.set(request, match.name)
    if (match === undefined) {
      log?.warn(
        {
          event: 'sluice.admin.refused',
          remoteAddress: request.ip,
          method: request.method,
          reason: header === '' ? 'no token' : 'wrong token',
        },
        'admin request refused: bad token',
      )
      reply.header('www-authenticate', 'Bearer realm="sluice-admin"')
      return sendAdminProblem(
        reply,
        new AdminError('SLUICE_ERR_ADMIN_UNAUTHORIZED', 'send the admin token: Authorization: Bearer <token>'),
      )
    }
  })
  app.setNotFoundHandler((request, reply) =>
    sendAdminProblem(
      reply,
      new AdminError(
        'SLUICE_ERR_ADMIN_NOT_FOUND',
        `no endpoint ${request.method} ${request.url.split('?')[0]} (see docs/admin.md)`,
      ),
    ),
  )
  app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
    if (err instanceof AdminError) return sendAdminProblem(reply, err)
    // Fastify's own 4xx (bad URL encoding, an unparsable body): the caller's mistake.
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500)
      return sendAdminProblem(reply, badRequest(err.message))
    log?.error(
      { event: 'sluice.admin.error', err: err.message, method: request.method, url: request.url },
      'admin request failed',
    )
    return sendAdminProblem(
      reply,
      new AdminError('SLUICE_ERR_ADMIN_INTERNAL', 'the admin API failed; the log says why'),
    )
  })

  const act = (request: FastifyRequest, action: Omit<AdminAction, 'remoteAddress' | 'time'>) => {
    // Who did it and why: X-Sluice-Operator and X-Sluice-Reason (sluice --operator, --reason), the token's name.
    const tokenName = tokenNames.get(request)
    const full: AdminAction = {
      ...whoAndWhy(request),
      ...action,
      ...(tokenName !== undefined ? { tokenName } : {}),
      remoteAddress: request.ip,
      time: clock(),
    }
    log?.warn(
      { event: 'sluice.admin.action', ...full, time: new Date(full.time).toISOString() },
      `admin ${full.action}${full.account !== undefined ? ` ${full.account}` : ''}: ${full.result}`,
    )
    try {
      options.onAdminAction?.(full)
    } catch (err) {
      log?.error({ event: 'sluice.admin.error', err: (err as Error).message }, 'onAdminAction failed')
    }
  }

  app.get('/healthz', { config: { public: true } }, async () => ({ status: 'ok' }))
  app.get('/readyz', { config: { public: true } }, async (_req, reply) => {
    const r = readiness(options.store, {
      ...(options.audit ? { audit: options.audit } : {}),
      ...(options.upstream ? { upstream: options.upstream } : {}),
    })
    return reply.code(r.code).send(r.body)
  })
  app.get('/metrics', async (_req, reply) => {
    return reply.type(options.metrics.registry.contentType).send(await options.metrics.registry.metrics())
  })

  registerControlRoutes(app, { store: options.store, policies, clock, act })
  registerAccountRoutes(app, {
    store: options.store,
    policies,
    clock,
    act,
    ...(options.decisions ? { decisions: options.decisions } : {}),
  })
  registerDecisionRoutes(app, { decisions: options.decisions })

  app.get('/incidents', async (request): Promise<IncidentsJson> => {
    const q = queryOf(request, ['limit', 'account', 'since'])
    const limit = q.limit === undefined ? 50 : integer('limit', q.limit, 1, 10_000)
    const since = q.since === undefined ? undefined : parseSince(q.since, clock())
    if (q.account === '') throw badRequest('account is empty')
    const ring = options.incidents
    const incidents =
      ring?.list({
        limit,
        ...(q.account !== undefined ? { account: q.account } : {}),
        ...(since !== undefined ? { since } : {}),
      }) ?? []
    return {
      incidents: incidents.map((e) => ({
        ...e,
        time: new Date(e.time).toISOString(),
        first: new Date(e.first).toISOString(),
        last: new Date(e.last).toISOString(),
      })),
      capacity: ring?.capacity ?? 0,
      recorded: ring?.recorded ?? 0,
      episodes: ring?.episodes ?? 0,
    }
  })

  app.post('/reload', async (request, reply) => {
    queryOf(request, [])
    if (!options.reload)
      throw new AdminError(
        'SLUICE_ERR_ADMIN_RELOAD_UNSUPPORTED',
        'this sluice cannot reload through the admin API (embedded plugin?): restart it, or send SIGHUP',
      )
    let result: ReloadResult
    try {
      result = await options.reload()
    } catch (err) {
      const message = (err as Error).message
      act(request, { action: 'reload', result: 'failed', errors: [message] })
      throw new AdminError('SLUICE_ERR_ADMIN_INTERNAL', `reload failed: ${message}; the running config stays`)
    }
    if (!result.ok) {
      const errors = result.errors ?? []
      act(request, { action: 'reload', result: 'rejected', errors })
      throw new AdminError(
        'SLUICE_ERR_ADMIN_RELOAD_REJECTED',
        `the new config is invalid (${errors.length} problem${errors.length === 1 ? '' : 's'}); the running config stays`,
        { errors },
      )
    }
    act(request, { action: 'reload', result: 'reloaded' })
    return reply.send({ ok: true })
  })

  if (options.console)
    await app.register(registerConsole, {
      ...options.console,
      metrics: options.metrics,
      clock,
      matchToken,
      act,
      ...(log ? { log } : {}),
    })

  return app
}

/** Which accepted token (admin.token, admin.tokens) a presented one is; undefined: none. */
export type TokenMatcher = (token: string) => { name: string | undefined } | undefined

function tokenMatcher(options: Pick<AdminOptions, 'token' | 'tokens'>): TokenMatcher {
  // Every accepted token by its digest; a named one (admin.tokens) is recorded with what it did.
  const accepted = [
    ...(options.token !== '' ? [{ name: undefined, digest: digest(options.token) }] : []),
    ...(options.tokens ?? []).filter((t) => t.token !== '').map((t) => ({ name: t.name, digest: digest(t.token) })),
  ]
  return (token) => {
    const presented = digest(token)
    // Compared with every token, no early exit: the timing does not tell which one matched.
    let match: { name: string | undefined } | undefined
    for (const t of accepted) if (timingSafeEqual(presented, t.digest) && match === undefined) match = t
    return match
  }
}

/** `since`: an ISO 8601 time, milliseconds since the epoch, or a duration back from now (15m). */
function parseSince(text: string, now: number): number {
  const ago = parseDuration(text)
  if (ago !== undefined) return now - ago
  if (/^[0-9]{1,15}$/.test(text)) return Number(text)
  const t = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : NaN
  if (Number.isNaN(t))
    throw badRequest(
      `since must be a time (2024-05-01T12:00:00Z), milliseconds since the epoch, or a duration back from now (15m), not "${text}"`,
    )
  return t
}

/** X-Sluice-Operator and X-Sluice-Reason, as an operator's tools send them (percent-encoded or plain). */
function whoAndWhy(request: FastifyRequest): { operator?: string; reason?: string } {
  const header = (name: string): string | undefined => {
    const raw = request.headers[name]
    const text = (Array.isArray(raw) ? raw[0] : raw)?.trim()
    if (text === undefined || text === '') return undefined
    let decoded = text
    try {
      decoded = decodeURIComponent(text)
    } catch {
      // Not percent-encoded: as sent.
    }
    // eslint-disable-next-line no-control-regex
    return decoded.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').slice(0, 500)
  }
  const operator = header('x-sluice-operator')
  const reason = header('x-sluice-reason')
  return { ...(operator !== undefined ? { operator } : {}), ...(reason !== undefined ? { reason } : {}) }
}

// Hash both sides first: timingSafeEqual needs equal lengths, and the length of the token
// must not leak either.
function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest()
}
