// The Fastify plugin: canonicalize → match → identify → count → decide.
//
// One exchange on a sensitive route goes through up to three hooks:
//   onRequest   canonicalize, clamp the query, match, identify (session binding, challenge
//               pass or solution), and for request-side records (path, query) decide here;
//   preHandler  routes whose records are in the request body (and logins): read it, decide;
//   onSend      routes whose records are in the response: read it before a byte is sent,
//               count its ids, and withhold it if it would cross a limit; logins and logouts
//               bind or unbind their session.
// Requests to non-sensitive routes only pay for canonicalization and a route lookup.
import { randomUUID } from 'node:crypto'
import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Challenges, PASS_COOKIE, PASS_HEADER, SOLUTION_COOKIE, SOLUTION_HEADER, type HeldPass, type Verdict } from './actions/challenge.js'
import {
  badRequest,
  busy,
  disabled,
  renderChallenge,
  renderProblem,
  sendProblem,
  sendRendered,
  throttled,
  unavailable,
  uninspectable,
  type Rendered,
} from './actions/respond.js'
import { Metrics } from './admin/metrics.js'
import { AuditTrail } from './audit/index.js'
import type { CompiledConfig, CompiledRoute, Inspection } from './config/compile.js'
import { Engine, type Decision } from './engine/engine.js'
import { canonicalize, type CanonicalOptions } from './http/canonicalize.js'
import { withoutCookies } from './http/cookies.js'
import { buildIdentityChain, sessionAccount, type Identity, type IdentityChain, type IdentitySource } from './identity/chain.js'
import { Notifier } from './notify/index.js'
import { Reporter, type IncidentSink } from './report/reporter.js'
import { AmbiguousIdentityError, cookieValues, singleCookie } from './identity/credentials.js'
import { ipAccount, networkOf, trustedPeer } from './identity/ip.js'
import { decodeContent, readCapped, selectBody, selectJsonBody, UninspectableError } from './records/body.js'
import { InspectionBudget } from './records/budget.js'
import { METHOD_OVERRIDE_HEADERS, methodOverride, resolveRoute } from './routes/resolve.js'
import { SessionBinder, type SessionEvent } from './sessions/binding.js'
import { createStore } from './store/create.js'
import { MemoryStore } from './store/memory.js'
import type { Store } from './store/store.js'

export interface SluiceOptions {
  config: CompiledConfig
  /** Defaults to the store config.store names (memory or Redis). */
  store?: Store
  /**
   * Proxy mode: rewrite the request URL to its canonical form (so the upstream receives the
   * path that was matched) and strip method-override, untrusted identity and sluice's own
   * headers and cookies. Leave false when sluice guards routes of the same Fastify app.
   */
  forwarding?: boolean
  clock?: () => number
  /** Defaults to a fresh registry; `app.sluice.metrics` exposes it. */
  metrics?: Metrics
  /** Where recent incidents go (the admin API's list). */
  incidents?: IncidentSink
}

/** Everything derived from one config; a reload swaps it whole, in-flight requests keep theirs. */
interface Live {
  config: CompiledConfig
  engine: Engine
  identity: IdentityChain
  challenges: Challenges
  sessions: SessionBinder | null
  canonicalOptions: CanonicalOptions
  stripOverride: boolean
}

export interface ReloadResult {
  ok: boolean
  /** Why a config was refused (the running one stays). */
  errors?: string[]
  /** Routes that are new or have other limits (their windows carry over). */
  changedRoutes?: string[]
}

/** What one sensitive exchange carries from hook to hook. */
interface Exchange {
  live: Live
  route: CompiledRoute | null
  account: string
  source: IdentitySource
  /** Challenge limits this request holds a valid pass for (each spent as it is used). */
  passes: readonly HeldPass[]
  /** The client's network, asked only when the store must count the account under it. */
  overflowKey: () => string
  /** The canonical path and query, as matched and forwarded: what decisions are logged with. */
  target: string
  /** Where the route's records still have to be read from. */
  pending: 'body' | 'response' | null
  session: SessionEvent | null
  /** Bytes this exchange holds of the inspection budget (given back when its response closes). */
  held: number
}

/** How a hook step ends: the request goes on to the upstream, or sluice has answered it. */
const CONTINUE = 0
const REPLIED = 1
type Next = typeof CONTINUE | typeof REPLIED
const NO_PASSES: readonly HeldPass[] = []

declare module 'fastify' {
  interface FastifyInstance {
    sluice: {
      readonly engine: Engine
      readonly store: Store
      readonly metrics: Metrics
      readonly challenges: Challenges
      readonly config: CompiledConfig
      readonly reporter: Reporter
      /** Swap in a new config (same store and audit file): unchanged routes keep their counts. */
      reload(config: CompiledConfig): Promise<ReloadResult>
    }
  }
  interface FastifyRequest {
    sluiceExchange: Exchange | null
  }
}

async function sluicePlugin(fastify: FastifyInstance, options: SluiceOptions): Promise<void> {
  const clock = options.clock ?? Date.now
  const metrics = options.metrics ?? new Metrics({ accounts: () => (store instanceof MemoryStore ? store.size : 0) })
  const store: Store = options.store ?? createStore(options.config.store, fastify.log, metrics)
  const forwarding = options.forwarding ?? false
  const audit = options.config.audit
    ? await AuditTrail.open({
        file: options.config.audit.file,
        ...(options.config.audit.key !== undefined ? { key: options.config.audit.key } : {}),
        fsync: options.config.audit.fsync,
        fsyncIntervalMs: options.config.audit.fsyncIntervalMs,
        maxBytes: options.config.audit.maxBytes,
        queueLimit: options.config.audit.queueLimit,
        logger: fastify.log,
      })
    : null
  const reporter = new Reporter({
    pseudonymise: options.config.privacy.pseudonymise,
    key: options.config.privacy.key,
    audit,
    notifier: notifierFor(options.config),
    incidents: options.incidents ?? null,
  })

  // Basic fingerprints keyed alike on every instance of a shared store, even without a configured secret.
  const sharedIdentityKey = options.config.identity.some((i) => i.type === 'basic') && options.config.identityKey === undefined ? await store.sharedKey?.('identity') : undefined
  const prepare = (config: CompiledConfig): Live => {
    if (config.routes.some((r) => r.policy.challengeable) && config.actions.challenge.secret === undefined) {
      // One instance with its own memory store: a per-process key is fine, but passes do not survive a restart.
      fastify.log[store.kind === 'memory' ? 'info' : 'warn']({ event: 'sluice.challenge' }, 'actions.challenge.secret is not set: challenges are signed with a random key of this process (passes do not survive a restart or cross instances)')
    }
    return {
      config,
      engine: new Engine(store, { disableForMs: config.actions.disableForMs, shadow: config.shadow, clock }),
      identity: buildIdentityChain(config.identity, config.trust, { key: config.identityKey ?? sharedIdentityKey }),
      challenges: new Challenges(config.actions.challenge, store),
      sessions: config.sessions ? new SessionBinder(config.sessions, store, fastify.log) : null,
      // Match with case preserved (the pattern regexes carry the case rule), so record ids
      // extracted from the path keep the case the client sent.
      canonicalOptions: { caseSensitive: true, stripMatrixParams: config.paths.stripMatrixParams },
      stripOverride: forwarding && config.methodOverride === 'strip',
    }
  }
  metrics.sources.audit = () => audit?.state() ?? null
  metrics.sources.notify = () => reporter.notifier?.stats() ?? null
  let live = prepare(options.config)
  const budget = new InspectionBudget(live.config.inspection.memoryBytes)
  if (live.config.privacy.pseudonymise && live.config.privacy.key === undefined && store.kind === 'redis') {
    fastify.log.warn({ event: 'sluice.privacy' }, 'privacy.key is not set: record pseudonyms are random per process and differ between instances (set privacy.key or audit.key)')
  }
  audit?.append('started', { mode: live.config.shadow ? 'shadow' : 'enforce', routes: live.config.routes.map((r) => r.name) })

  const reload = async (next: CompiledConfig): Promise<ReloadResult> => {
    const errors = restartOnly(live.config, next)
    if (errors.length > 0) {
      reporter.event('reload', { outcome: 'refused', errors }, fastify.log)
      return { ok: false, errors }
    }
    const previous = live.config
    const changedRoutes = next.routes.filter((r) => !previous.routes.some((o) => o.name === r.name && samePolicy(o, r))).map((r) => r.name)
    live = prepare(next)
    budget.limit = next.inspection.memoryBytes
    if (next.logLevel !== previous.logLevel) fastify.log.level = next.logLevel
    if (JSON.stringify(next.notify) !== JSON.stringify(previous.notify)) {
      const before = reporter.notifier
      reporter.notifier = notifierFor(next)
      if (before) void before.close({ timeoutMs: 5000 })
    }
    reporter.event('reload', { outcome: 'applied', mode: next.shadow ? 'shadow' : 'enforce', routes: next.routes.map((r) => r.name), changedRoutes }, fastify.log)
    return { ok: true, changedRoutes }
  }

  fastify.decorate('sluice', {
    get engine() {
      return live.engine
    },
    get challenges() {
      return live.challenges
    },
    get config() {
      return live.config
    },
    store,
    metrics,
    reporter,
    reload,
  })
  fastify.decorateRequest('sluiceExchange', null)
  // Metric children resolved once, not a label lookup per request.
  const storeLatency = metrics.storeLatency.labels(store.kind)
  const timedStore = store.kind !== 'memory'
  type Counter = ReturnType<typeof metrics.decisions.labels>
  const counters = new Map<string, [enforce: Partial<Record<string, Counter>>, shadow: Partial<Record<string, Counter>>]>()
  const decisionCounter = (route: string, kind: string, shadow: boolean): Counter => {
    let byMode = counters.get(route)
    if (!byMode) counters.set(route, (byMode = [{}, {}]))
    const byKind = byMode[shadow ? 1 : 0]
    return (byKind[kind] ??= metrics.decisions.labels(route, kind, shadow ? 'true' : 'false'))
  }
  fastify.addHook('onClose', async () => {
    // After the server stopped accepting and in-flight requests finished: nothing more to report.
    audit?.append('stopped', {})
    await Promise.all([audit?.close({ timeoutMs: 5000 }), reporter.notifier?.close({ timeoutMs: 5000 })])
    if (!options.store) await store.close()
  })

  // Callback style with a synchronous fast path: a request to a non-sensitive route, and a
  // sensitive one decided by the memory store without a JWT or a challenge solution to check,
  // passes without a promise or a microtask. Each step below hands over to the next directly,
  // or through a promise only when its own work is asynchronous.
  fastify.addHook('onRequest', (request, reply, done) => {
    let next: Next | Promise<Next>
    try {
      next = guard(request, reply)
    } catch (err) {
      return done(err as Error)
    }
    if (next === CONTINUE) return done()
    if (next === REPLIED) return // a hook that answered does not call done (Fastify's hooks docs)
    next.then((n) => n === CONTINUE && done(), done)
  })

  /** Canonicalize, match, rewrite for forwarding; on a sensitive route, identify and go on. */
  function guard(request: FastifyRequest, reply: FastifyReply): Next | Promise<Next> {
    const raw = request.raw
    const current = live
    const { config, identity, sessions } = current
    const canonical = canonicalize(raw.url ?? '/', current.canonicalOptions)
    if (!canonical.ok) {
      metrics.rejected.inc({ reason: 'path' })
      request.log.warn({ event: 'sluice.rejected', reason: canonical.reason, url: raw.url }, 'request path rejected')
      sendProblem(reply, badRequest(`The request path cannot be interpreted unambiguously: ${canonical.reason}.`))
      return REPLIED
    }

    const overridden = methodOverride(request.headers)
    if (current.stripOverride && overridden !== undefined) for (const h of METHOD_OVERRIDE_HEADERS) delete raw.headers[h]
    const match = resolveRoute(config.routes, request.method, canonical.matchPath, overridden)
    const sessionKind = sessions?.classify(overridden ?? request.method, canonical.matchPath) ?? null
    let search = canonical.search
    const clamped = match?.route.clamp?.(search)
    if (clamped) {
      search = clamped.search
      request.log.info({ event: 'sluice.clamped', route: match?.route.name, params: clamped.clamped }, 'query clamped')
      const query = request.query
      if (!forwarding && query && typeof query === 'object') match?.route.clamp?.parsed(query as Record<string, unknown>)
    }
    // The canonical path and query: what is matched, forwarded and logged.
    const target = canonical.path + search
    if (forwarding) {
      if (target !== raw.url) raw.url = target
      for (const h of identity.untrustedHeaders(raw)) delete raw.headers[h]
    }
    const exchange = sessionKind ? sessionExchange(request, current, sessionKind, search) : null
    if (!match) {
      if (forwarding) stripSluiceCredentials(request)
      return CONTINUE
    }

    const route = match.route
    if ((route.inspect || sessionKind === 'login') && budget.full) {
      metrics.inspectionBusy.inc()
      request.log.warn({ event: 'sluice.busy', route: route.name, heldBytes: budget.used }, 'inspection memory budget in use: refused')
      sendProblem(reply, busy())
      return REPLIED
    }
    let ex: Exchange
    if (exchange) {
      ex = exchange
      ex.route = route
      ex.target = target
    } else {
      request.sluiceExchange = ex = {
        live: current,
        route,
        account: '',
        source: 'ip',
        passes: NO_PASSES,
        overflowKey: () => networkOf(current.identity.clientIp(raw)),
        target,
        pending: null,
        session: null,
        held: 0,
      }
    }
    // Records of the path and query are known now; a body's are read in preHandler (null).
    const records = route.inspect?.from === 'body' ? null : route.records(match.params, search)
    const now = clock()
    let who: Identity | Promise<Identity>
    try {
      who = identity.identify(raw, now)
    } catch (err) {
      return ambiguous(request, reply, route, err)
    }
    if (who instanceof Promise) {
      return who.then(
        (w) => identified(request, reply, ex, w, records, now),
        (err: unknown) => ambiguous(request, reply, route, err),
      )
    }
    return identified(request, reply, ex, who, records, now)
  }

  function ambiguous(request: FastifyRequest, reply: FastifyReply, route: CompiledRoute, err: unknown): Next {
    if (!(err instanceof AmbiguousIdentityError)) throw err
    metrics.rejected.inc({ reason: 'identity' })
    request.log.warn({ event: 'sluice.rejected', reason: err.message, route: route.name }, 'ambiguous identity')
    sendProblem(reply, { ...badRequest(`${err.message}.`), kind: 'ambiguous-identity' })
    return REPLIED
  }

  /** A session cookie counts as the account it was bound to at login. */
  function identified(request: FastifyRequest, reply: FastifyReply, ex: Exchange, who: Identity, records: string[] | null, now: number): Next | Promise<Next> {
    ex.source = who.source
    const sessions = ex.live.sessions
    if (sessions && who.source === 'cookie') {
      const bound = sessions.resolve(who.account)
      if (bound instanceof Promise) return bound.then((b) => admitted(request, reply, ex, b ?? who.account, records, now))
      if (bound !== undefined) return admitted(request, reply, ex, bound, records, now)
    }
    return admitted(request, reply, ex, who.account, records, now)
  }

  /** Challenge passes and solutions (only on routes that can challenge: the common case pays nothing). */
  function admitted(request: FastifyRequest, reply: FastifyReply, ex: Exchange, account: string, records: string[] | null, now: number): Next | Promise<Next> {
    ex.account = account
    const route = ex.route as CompiledRoute
    if (!route.policy.challengeable) {
      if (forwarding) stripSluiceCredentials(request)
      return decide(request, reply, ex, records, now, null, undefined)
    }
    const challenges = ex.live.challenges
    const passToken = tokenFrom(request, PASS_HEADER, PASS_COOKIE)
    ex.passes = challenges.passes(passToken, account, route.policy, now)
    const solution = tokenFrom(request, SOLUTION_HEADER, SOLUTION_COOKIE)
    if (forwarding) stripSluiceCredentials(request)
    if (!solution) return decide(request, reply, ex, records, now, null, undefined)
    return challenges.verify(solution, account, route.policy, now).then((verdict) => {
      metrics.challenges.labels(verdict.ok ? 'solved' : verdict.reason).inc()
      let grant: string | undefined
      if (verdict.ok) {
        const granted = challenges.grant(passToken, account, verdict.limit, now)
        ex.passes = [...ex.passes.filter((p) => p.index !== verdict.limit.index), granted.pass]
        grant = granted.token
        request.log.info({ event: 'sluice.challenge', outcome: 'solved', account, route: route.name, limit: verdict.limit.label }, 'challenge solved')
      } else {
        request.log.warn({ event: 'sluice.challenge', outcome: 'rejected', reason: verdict.reason, account, route: route.name }, `challenge solution rejected: ${verdict.reason}`)
      }
      reply.header('set-cookie', `${SOLUTION_COOKIE}=; Path=/; Max-Age=0; SameSite=Strict`)
      return decide(request, reply, ex, records, now, verdict, grant)
    })
  }

  /** Count and decide request-side records; a body's wait for preHandler. */
  function decide(request: FastifyRequest, reply: FastifyReply, ex: Exchange, records: string[] | null, now: number, verdict: Verdict | null, grant: string | undefined): Next | Promise<Next> {
    if (records === null) {
      ex.pending = 'body'
      if (grant) setPass(reply, grant, ex.live)
      return CONTINUE
    }
    const observed = observe(ex, records, now, true)
    if (observed instanceof Promise) return observed.then((d) => decided(request, reply, ex, records, d, verdict, grant))
    return decided(request, reply, ex, records, observed, verdict, grant)
  }

  function decided(request: FastifyRequest, reply: FastifyReply, ex: Exchange, records: string[], decision: Decision, verdict: Verdict | null, grant: string | undefined): Next | Promise<Next> {
    if (decision.kind !== 'allow') report(request, decision, ex, records, 'request')
    if (decision.block) return block(request, reply, decision, ex, verdict).then(() => REPLIED)
    if (grant) setPass(reply, grant, ex.live)
    if (ex.route?.inspect?.from === 'response') ex.pending = 'response'
    return CONTINUE
  }

  // Registered whatever the config says (a reload may add body or response routes); a request
  // without an exchange leaves at the first line.
  fastify.addHook('preHandler', (request, reply, done) => {
    const ex = request.sluiceExchange
    if (!ex || (ex.pending !== 'body' && ex.session?.kind !== 'login')) return done()
    readRequestBody(request, reply, ex).then(() => done(), done)
  })

  fastify.addHook('onSend', (request, reply, payload, done) => {
    const ex = request.sluiceExchange
    if (!ex || (ex.pending !== 'response' && ex.session === null)) return done(null, payload)
    answered(request, reply, payload, ex).then((p) => done(null, p), (err: Error) => done(err))
  })

  /** Synchronous with the memory store: no promise (and no microtask hop) per request on the hot path. */
  function observe(ex: Exchange, records: readonly string[], now: number, countRequest: boolean): Decision | Promise<Decision> {
    if (ex.passes.length > 0) {
      // What each pass still pays for is in the store (shared by every instance).
      return ex.live.challenges.spend(ex.passes, records.length, countRequest).then((passes) => observeWith(ex, records, now, countRequest, passes))
    }
    return observeWith(ex, records, now, countRequest, null)
  }

  function observeWith(ex: Exchange, records: readonly string[], now: number, countRequest: boolean, passes: readonly number[] | null): Decision | Promise<Decision> {
    const route = ex.route as CompiledRoute
    // Only a store across the network has a latency worth a histogram (and its cost per request).
    const started = timedStore ? performance.now() : 0
    const step = passes === null ? { countRequest, overflowKey: ex.overflowKey } : { countRequest, passes, overflowKey: ex.overflowKey }
    const observed = ex.live.engine.observe(ex.account, route.policy, records, now, step)
    if (!(observed instanceof Promise)) return counted(route, observed)
    return observed.then((d) => {
      storeLatency.observe((performance.now() - started) / 1000)
      return counted(route, d)
    })
  }

  function counted(route: CompiledRoute, decision: Decision): Decision {
    decisionCounter(route.name, decision.kind, decision.shadow).inc()
    if (decision.degraded) metrics.storeFallbacks.labels(decision.degraded).inc()
    if (decision.block) metrics.blocks.labels(decision.kind).inc()
    return decision
  }

  /** preHandler: a login's user names, and the records of a `records: { body }` route. */
  async function readRequestBody(request: FastifyRequest, reply: FastifyReply, ex: Exchange): Promise<void> {
    const route = ex.route
    const inspect = ex.pending === 'body' ? (route?.inspect as Inspection) : null
    const cap = inspect?.maxBytes ?? 64 * 1024
    const body = await requestBody(request, cap, holder(ex, reply))
    if (body.busy) {
      metrics.inspectionBusy.inc()
      request.log.warn({ event: 'sluice.busy', route: route?.name, heldBytes: budget.used }, 'inspection memory budget in use: request body not read, refused')
      return void sendProblem(reply, busy())
    }
    const login = ex.session?.kind === 'login' ? ex.session : null
    const sessions = ex.live.sessions
    if (login && sessions && !body.problem) {
      let names: string[] = []
      try {
        names = body.bytes ? selectBody(body.bytes, request.headers['content-type'], sessions.field) : body.parsed !== undefined ? sessions.field(body.parsed) : []
      } catch (err) {
        if (!(err instanceof UninspectableError)) throw err
      }
      for (const name of names) sessions.addUsername(name, login.usernames)
    }
    if (!inspect || !route) return

    let records: string[] = []
    let problem = body.problem
    if (!problem) {
      try {
        records = body.bytes ? selectBody(body.bytes, request.headers['content-type'], inspect.select) : body.parsed !== undefined ? inspect.select(body.parsed) : []
        if (records.length > inspect.maxIds) problem = uninspectable(413, `The request names more than ${inspect.maxIds} records, the most this route counts in one request.`)
      } catch (err) {
        if (!(err instanceof UninspectableError)) throw err
        problem = uninspectable(err.message.startsWith('content-type') ? 415 : 400, `The request body cannot be read for record ids: ${err.message}.`)
      }
    }
    if (problem) {
      if (inspect.uninspectable === 'block') {
        metrics.uninspectable.labels(route.name, 'request').inc()
        request.log.warn({ event: 'sluice.uninspectable', route: route.name, account: ex.account, reason: problem.detail }, 'request body cannot be inspected: refused')
        return void sendProblem(reply, problem)
      }
      records = synthetic(inspect.uninspectable)
    }
    ex.pending = null
    const observed = observe(ex, records, clock(), true)
    const decision = observed instanceof Promise ? await observed : observed
    if (decision.kind !== 'allow') report(request, decision, ex, records, 'request')
    if (decision.block) return void (await block(request, reply, decision, ex, null))
  }

  /** onSend: count a response's records before it leaves; bind or unbind a session. */
  async function answered(request: FastifyRequest, reply: FastifyReply, payload: unknown, ex: Exchange): Promise<unknown> {
    if (ex.session) await sessionAnswered(request, reply, ex)
    if (ex.pending !== 'response' || !ex.route) return payload
    ex.pending = null
    const route = ex.route
    const inspect = route.inspect as Inspection
    if (reply.statusCode < 200 || reply.statusCode >= 300 || payload === null || payload === undefined) return payload

    let body: Buffer | null = null
    let forward: unknown = payload
    let problem: string | null = null
    try {
      if (payload instanceof Readable) {
        const length = Number(reply.getHeader('content-length'))
        const read = await readCapped(payload, inspect.maxBytes, Number.isSafeInteger(length) && length >= 0 ? length : undefined, holder(ex, reply))
        if (read.complete) forward = body = read.body
        else if (read.busy) {
          payload.destroy()
          metrics.inspectionBusy.inc()
          request.log.warn({ event: 'sluice.busy', route: route.name, heldBytes: budget.used }, 'inspection memory budget in use: answer withheld')
          return replaceResponse(reply, renderProblem(request.headers.accept, busy()))
        } else {
          problem = `response larger than maxInspectBytes (${inspect.maxBytes} bytes)`
          forward = read.rest() // sent on only if the decision allows it (shadow, or counted within limits)
        }
      } else if (typeof payload === 'string' || Buffer.isBuffer(payload)) {
        body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload)
        if (body.length > inspect.maxBytes) problem = `response larger than maxInspectBytes (${inspect.maxBytes} bytes)`
      } else {
        problem = 'response body is not a byte stream'
      }
    } catch (err) {
      // The upstream broke off mid-body: nothing complete can be sent anyway.
      request.log.error({ event: 'sluice.upstream_error', route: route.name, err: (err as Error).message }, 'upstream response failed while being inspected')
      return replaceResponse(reply, renderProblem(request.headers.accept, { kind: 'upstream-unavailable', status: 502, title: 'Bad Gateway', detail: 'The application\'s answer broke off.' }))
    }

    let records: string[] = []
    if (body && !problem) {
      try {
        const decoded = await decodeContent(body, headerText(reply.getHeader('content-encoding')), inspect.maxBytes)
        records = selectJsonBody(decoded, headerText(reply.getHeader('content-type')), inspect.select)
        if (records.length > inspect.maxIds) {
          problem = `more than ${inspect.maxIds} record ids (records.maxIds)`
          records = []
        }
      } catch (err) {
        if (!(err instanceof UninspectableError)) throw err
        problem = err.message
      }
    }
    if (problem) {
      metrics.uninspectable.labels(route.name, 'response').inc()
      request.log.warn({ event: 'sluice.uninspectable', route: route.name, account: ex.account, reason: problem, policy: inspect.uninspectable }, `response cannot be inspected (${problem})`)
      if (inspect.uninspectable === 'block' && !ex.live.config.shadow) {
        // Ids that cannot be counted cannot be let out (shadow mode only logs it).
        if (payload instanceof Readable) payload.destroy()
        if (forward instanceof Readable && forward !== payload) forward.destroy()
        metrics.withheld.labels(route.name).inc()
        return replaceResponse(reply, renderProblem(request.headers.accept, uninspectable(502, `The application's answer cannot be checked for record ids (${problem}), so it is withheld.`)))
      }
      records = inspect.uninspectable === 'block' ? [] : synthetic(inspect.uninspectable)
    }

    const observed = observe(ex, records, clock(), false)
    const decision = observed instanceof Promise ? await observed : observed
    if (decision.kind !== 'allow') report(request, decision, ex, records, 'response')
    if (!decision.block) {
      // A client that does not read the answer holds its memory: not for longer than sendTimeout.
      if (ex.held > 0) closeIfSlow(reply, ex.live.config.inspection.sendTimeoutMs)
      return forward
    }
    if (payload instanceof Readable) payload.destroy()
    metrics.withheld.labels(route.name).inc()
    return replaceResponse(reply, await blockResponse(request, decision, ex, null))
  }

  async function sessionAnswered(request: FastifyRequest, reply: FastifyReply, ex: Exchange): Promise<void> {
    const sessions = ex.live.sessions
    const event = ex.session
    if (!sessions || !event) return
    if (event.kind === 'login') {
      const account = await sessions.loginAnswered(event, reply.statusCode, reply.getHeader('set-cookie'), clock())
      // (An ambiguous login is logged by the binder: its session counts against the client address.)
      if (account?.startsWith('user:')) request.log.info({ event: 'sluice.session', outcome: 'bound', account }, 'session bound to account')
    } else {
      // The binding stays: a logout the upstream ignores must not give the session a fresh budget.
      request.log.info({ event: 'sluice.session', outcome: 'logout', status: reply.statusCode }, 'logout seen (the session keeps counting against its account)')
    }
  }

  function sessionExchange(request: FastifyRequest, current: Live, kind: 'login' | 'logout', search: string): Exchange {
    const sessions = current.sessions as SessionBinder
    let session: SessionEvent
    if (kind === 'login') {
      const usernames = new Set<string>()
      sessions.queryUsernames(search, usernames)
      const value = cookieValues(request.headers, sessions.config.login.cookie)[0]
      session = {
        kind: 'login',
        usernames,
        session: value !== undefined ? sessionAccount(value) : undefined,
        fallback: ipAccount(current.identity.clientIp(request.raw)),
      }
    } else {
      session = { kind: 'logout' }
    }
    const raw = request.raw
    const ex: Exchange = {
      live: current,
      route: null,
      account: '',
      source: 'ip',
      passes: NO_PASSES,
      overflowKey: () => networkOf(current.identity.clientIp(raw)),
      target: '',
      pending: null,
      session,
      held: 0,
    }
    request.sluiceExchange = ex
    return ex
  }

  function report(request: FastifyRequest, decision: Decision, ex: Exchange, records: readonly string[], step: 'request' | 'response'): void {
    reporter.decision(decision, {
      log: request.log,
      route: ex.route as CompiledRoute,
      identity: ex.source,
      clientIp: ex.live.identity.clientIp(request.raw),
      method: request.method,
      target: ex.target,
      records,
      step,
      now: clock(),
    })
  }

  async function block(request: FastifyRequest, reply: FastifyReply, decision: Decision, ex: Exchange, verdict: Verdict | null): Promise<FastifyReply> {
    return sendRendered(reply, await blockResponse(request, decision, ex, verdict))
  }

  async function blockResponse(request: FastifyRequest, decision: Decision, ex: Exchange, verdict: Verdict | null): Promise<Rendered> {
    const accept = request.headers.accept
    switch (decision.kind) {
      case 'throttle':
        return renderProblem(accept, throttled(ex.live.config.actions.throttleRetryAfterMs))
      case 'challenge': {
        const challenge = await ex.live.challenges.issue(ex.account, decision.limit as NonNullable<Decision['limit']>, clock())
        metrics.challenges.labels('issued').inc()
        return renderChallenge(accept, challenge, verdict && !verdict.ok ? verdict.reason : undefined)
      }
      case 'unavailable':
        return renderProblem(accept, unavailable())
      default:
        return renderProblem(accept, disabled())
    }
  }

  /** Account bytes an exchange holds; the first take arranges for all of them to be given back when its response closes. */
  function holder(ex: Exchange, reply: FastifyReply): (n: number) => boolean {
    return (n) => {
      if (!budget.take(n)) return false
      if (ex.held === 0) {
        reply.raw.once('close', () => {
          budget.give(ex.held)
          ex.held = 0
        })
      }
      ex.held += n
      return true
    }
  }

  /** Read (and re-arm for forwarding) the request body: its bytes, or (plugin mode) what the app's parser made of it. */
  async function requestBody(request: FastifyRequest, cap: number, take: (n: number) => boolean): Promise<{ bytes?: Buffer; parsed?: unknown; problem?: ReturnType<typeof uninspectable>; busy?: true }> {
    const body: unknown = request.body
    if (body === undefined || body === null) return {}
    if (!(body instanceof Readable)) {
      // Guarding routes of the same app: Fastify's own parsers already ran, and the app reads what they made.
      if (Buffer.isBuffer(body)) return { bytes: body }
      if (typeof body === 'string') return { bytes: Buffer.from(body) }
      return { parsed: body }
    }
    const declared = Number(request.headers['content-length'])
    let read
    try {
      read = await readCapped(body, cap, Number.isSafeInteger(declared) && declared >= 0 ? declared : undefined, take)
    } catch {
      return { problem: uninspectable(400, 'The request body could not be read.') }
    }
    if (!read.complete && read.busy) return { busy: true }
    if (!read.complete) {
      request.body = read.rest()
      return { problem: uninspectable(413, `The request body is larger than ${cap} bytes, the most this route inspects.`) }
    }
    // The upstream receives exactly the bytes the client sent (headers untouched).
    request.body = Readable.from([read.body])
    return { bytes: read.body }
  }
}

/** Close the connection of a client that has not read its whole answer within `ms`. */
function closeIfSlow(reply: FastifyReply, ms: number): void {
  const res = reply.raw
  const timer = setTimeout(() => {
    if (!res.writableFinished) res.destroy()
  }, ms)
  timer.unref()
  res.once('close', () => clearTimeout(timer))
}

/** A withheld response replaces the upstream's status and headers (nothing of it may leak). */
function replaceResponse(reply: FastifyReply, r: Rendered): string {
  for (const name of Object.keys(reply.getHeaders())) if (name !== 'set-cookie' || !isSluiceCookie(reply.getHeader(name))) reply.removeHeader(name)
  reply.code(r.status).headers(r.headers)
  return r.body
}

function isSluiceCookie(value: unknown): boolean {
  const all = Array.isArray(value) ? value : [value]
  return all.every((v) => typeof v === 'string' && (v.startsWith(`${PASS_COOKIE}=`) || v.startsWith(`${SOLUTION_COOKIE}=`)))
}

/** `n` records nobody else can name: an uninspectable body counted as its worst case. */
function synthetic(n: number): string[] {
  const id = randomUUID()
  return Array.from({ length: n }, (_, i) => `\0uninspectable:${id}:${i}`)
}

function tokenFrom(request: FastifyRequest, header: string, cookie: string): string | undefined {
  const h = request.headers[header]
  if (typeof h === 'string' && h !== '') return h.trim()
  try {
    return singleCookie(request.headers, cookie)
  } catch {
    return undefined
  }
}

function setPass(reply: FastifyReply, token: string, live: Live): void {
  const request = reply.request
  reply.header(PASS_HEADER, token)
  const maxAge = Math.ceil(live.config.actions.challenge.validForMs / 1000)
  reply.header('set-cookie', `${PASS_COOKIE}=${token}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${isHttps(request, live.config.trust) ? '; Secure' : ''}`)
}

/** Did the client reach us over TLS (directly, or through a trusted proxy that says so)? */
function isHttps(request: FastifyRequest, trust: CompiledConfig['trust']): boolean {
  if ((request.raw.socket as { encrypted?: boolean }).encrypted) return true
  const proto = request.headers['x-forwarded-proto']
  return trustedPeer(request.raw.socket, trust) && typeof proto === 'string' && proto.split(',')[0]?.trim().toLowerCase() === 'https'
}

/** sluice's own headers and cookies are for sluice: the upstream never sees them. */
function stripSluiceCredentials(request: FastifyRequest): void {
  const headers = request.raw.headers
  if (headers[PASS_HEADER] !== undefined) delete headers[PASS_HEADER]
  if (headers[SOLUTION_HEADER] !== undefined) delete headers[SOLUTION_HEADER]
  const cookie = headers.cookie
  if (typeof cookie === 'string' && cookie.includes('sluice_')) {
    const kept = withoutCookies(cookie, [PASS_COOKIE, SOLUTION_COOKIE])
    if (kept === undefined) delete headers.cookie
    else headers.cookie = kept
  }
}

function headerText(v: unknown): string | undefined {
  return typeof v === 'string' ? v : Array.isArray(v) ? String(v[0]) : typeof v === 'number' ? String(v) : undefined
}

function notifierFor(config: CompiledConfig): Notifier | null {
  const n = config.notify
  if (!n) return null
  return new Notifier({
    webhooks: n.webhooks.map((w) => ({ url: w.url, secret: w.secret, events: w.events, timeoutMs: w.timeoutMs })),
    queueLimit: n.queueLimit,
    retry: { maxAttempts: n.maxAttempts },
  })
}

/** What a reload cannot change: the process would have to open other sockets or files. */
function restartOnly(now: CompiledConfig, next: CompiledConfig): string[] {
  const errors: string[] = []
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)
  if (!same(now.store, next.store)) errors.push('store: changing the store needs a restart')
  if (!same(now.audit, next.audit)) errors.push('audit: changing the audit trail needs a restart')
  if (!same(now.listen, next.listen)) errors.push('listen: changing the listen address needs a restart')
  if (!same(now.upstream, next.upstream)) errors.push('upstream: changing the upstream needs a restart')
  if (!same(now.admin, next.admin)) errors.push('admin: changing the admin listener needs a restart')
  if (!same(now.privacy, next.privacy)) errors.push('privacy: changing pseudonymisation needs a restart (pseudonyms would change mid-trail)')
  return errors
}

/** Limits the store keeps counts for: a route whose policy is unchanged keeps its windows. */
function samePolicy(a: CompiledRoute, b: CompiledRoute): boolean {
  return JSON.stringify(a.policy.limits) === JSON.stringify(b.policy.limits)
}

/** Register inside any Fastify app: `app.register(sluice, { config })`. */
export const sluice = fp(sluicePlugin, { name: 'sluice', fastify: '5.x' })
