// The Fastify plugin: canonicalize → match → identify → count → decide, in one onRequest hook.
// Requests to non-sensitive routes only pay for canonicalization and a route lookup.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { badRequest, disabled, sendProblem, throttled, unavailable } from './actions/respond.js'
import type { CompiledConfig, CompiledRoute } from './config/compile.js'
import { Engine, type Decision } from './engine/engine.js'
import { canonicalize, type CanonicalOptions } from './http/canonicalize.js'
import { buildIdentityChain } from './identity/chain.js'
import { AmbiguousIdentityError } from './identity/credentials.js'
import { METHOD_OVERRIDE_HEADERS, methodOverride, resolveRoute } from './routes/resolve.js'
import { Metrics } from './admin/metrics.js'
import { createStore } from './store/create.js'
import { MemoryStore } from './store/memory.js'
import type { Store } from './store/store.js'

export interface SluiceOptions {
  config: CompiledConfig
  /** Defaults to the store config.store names (memory or Redis). */
  store?: Store
  /**
   * Proxy mode: rewrite the request URL to its canonical form (so the upstream receives the
   * path that was matched) and strip method-override and untrusted identity headers.
   * Leave false when sluice guards routes of the same Fastify app.
   */
  forwarding?: boolean
  clock?: () => number
  /** Defaults to a fresh registry; `app.sluice.metrics` exposes it. */
  metrics?: Metrics
}

declare module 'fastify' {
  interface FastifyInstance {
    sluice: { engine: Engine; store: Store; metrics: Metrics }
  }
}

async function sluicePlugin(fastify: FastifyInstance, options: SluiceOptions): Promise<void> {
  const { config } = options
  const clock = options.clock ?? Date.now
  const metrics = options.metrics ?? new Metrics({ accounts: () => (store instanceof MemoryStore ? store.size : 0) })
  const store: Store = options.store ?? createStore(config.store, fastify.log, metrics)
  const engine = new Engine(store, { disableForMs: config.actions.disableForMs, shadow: config.shadow, clock })
  const identity = buildIdentityChain(config.identity, config.trust)
  // Match with case preserved (the pattern regexes carry the case rule), so record ids
  // extracted from the path keep the case the client sent.
  const canonicalOptions: CanonicalOptions = { caseSensitive: true, stripMatrixParams: config.paths.stripMatrixParams }
  const forwarding = options.forwarding ?? false
  const stripOverride = forwarding && config.methodOverride === 'strip'

  fastify.decorate('sluice', { engine, store, metrics })
  // Metric children resolved once, not a label lookup per request.
  const storeLatency = metrics.storeLatency.labels(store.kind)
  const counters = new Map<string, ReturnType<typeof metrics.decisions.labels>>()
  const decisionCounter = (route: string, kind: string, shadow: boolean) => {
    const key = `${route}\0${kind}\0${shadow}`
    let c = counters.get(key)
    if (!c) counters.set(key, (c = metrics.decisions.labels(route, kind, shadow ? 'true' : 'false')))
    return c
  }
  if (!options.store) fastify.addHook('onClose', () => store.close())

  fastify.addHook('onRequest', async (request, reply) => {
    const raw = request.raw
    const canonical = canonicalize(raw.url ?? '/', canonicalOptions)
    if (!canonical.ok) {
      metrics.rejected.inc({ reason: 'path' })
      request.log.warn({ event: 'sluice.rejected', reason: canonical.reason, url: raw.url }, 'request path rejected')
      return sendProblem(reply, badRequest(`The request path cannot be interpreted unambiguously: ${canonical.reason}.`))
    }
    if (forwarding) {
      const url = canonical.path + canonical.search
      if (url !== raw.url) raw.url = url
    }

    const overridden = methodOverride(request.headers)
    if (stripOverride && overridden !== undefined) for (const h of METHOD_OVERRIDE_HEADERS) delete raw.headers[h]
    const match = resolveRoute(config.routes, request.method, canonical.matchPath, overridden)
    if (forwarding) for (const h of identity.untrustedHeaders(raw)) delete raw.headers[h]
    if (!match) return

    const now = clock()
    let who
    try {
      const found = identity.identify(raw, now)
      who = found instanceof Promise ? await found : found
    } catch (err) {
      if (!(err instanceof AmbiguousIdentityError)) throw err
      metrics.rejected.inc({ reason: 'identity' })
      request.log.warn({ event: 'sluice.rejected', reason: err.message, route: match.route.name }, 'ambiguous identity')
      return sendProblem(reply, { ...badRequest(`${err.message}.`), kind: 'ambiguous-identity' })
    }

    const records = match.route.records(match.params, canonical.search)
    const started = performance.now()
    const observed = engine.observe(who.account, match.route.policy, records, now)
    const decision = observed instanceof Promise ? await observed : observed
    storeLatency.observe((performance.now() - started) / 1000)
    decisionCounter(match.route.name, decision.kind, decision.shadow).inc()
    if (decision.degraded) metrics.storeFallbacks.labels(decision.degraded).inc()
    if (decision.kind === 'allow') return // a fail-open allow is logged once, by the store's state change
    if (decision.block) metrics.blocks.labels(decision.kind).inc()
    logDecision(request, decision, match.route, who.source, identity.clientIp(raw), records.length)
    if (decision.block) return block(reply, decision)
  })

  function block(reply: FastifyReply, decision: Decision): FastifyReply {
    switch (decision.kind) {
      case 'throttle':
        return sendProblem(reply, throttled(config.actions.throttleRetryAfterMs))
      case 'challenge':
        // Until the proof-of-work action lands, a challenge answers like a throttle (logged as challenge).
        return sendProblem(reply, throttled(config.actions.challengeRetryAfterMs, 'challenge'))
      case 'unavailable':
        return sendProblem(reply, unavailable())
      default:
        return sendProblem(reply, disabled())
    }
  }
}

function logDecision(request: FastifyRequest, d: Decision, route: CompiledRoute, source: string, clientIp: string, records: number): void {
  const counts: Record<string, number> = {}
  route.policy.limits.forEach((l, i) => {
    counts[l.label] = d.counts[i] ?? 0
  })
  request.log.warn(
    {
      event: 'sluice.decision',
      decision: d.kind,
      blocked: d.block,
      shadow: d.shadow,
      account: d.account,
      identity: source,
      clientIp,
      route: d.route,
      limit: d.limit?.label ?? null,
      counts,
      records,
      method: request.method,
      path: request.raw.url,
      ...(d.disabledUntil !== null ? { disabledUntil: Number.isFinite(d.disabledUntil) ? new Date(d.disabledUntil).toISOString() : 'forever' } : {}),
    },
    d.shadow ? `shadow: would ${d.kind}` : d.kind,
  )
}

/** Register inside any Fastify app: `app.register(sluice, { config })`. */
export const sluice = fp(sluicePlugin, { name: 'sluice', fastify: '5.x' })
