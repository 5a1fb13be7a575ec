// The running product, assembled in one place: the store, metrics, the audit trail, the
// reporter (with the notifier and the incident list), the inspection budget, and the live
// config with its reload. The Fastify plugin and the CLI take everything from here, so
// embedding sluice is `createRuntime` + the plugin, not a copy of cli/main.ts.
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { Challenges, loadAltcha } from './actions/challenge.js'
import { DecisionLog } from './admin/decisions.js'
import { IncidentLog } from './admin/incidents.js'
import type { Observer } from './admin/fast-histogram.js'
import { Metrics } from './admin/metrics.js'
import { UpstreamProbe } from './admin/readiness.js'
import { buildAdmin } from './admin/server.js'
import { AuditTrail } from './audit/index.js'
import type { CompiledConfig, CompiledRoute } from './config/compile.js'
import { Engine } from './engine/engine.js'
import type { Store } from './engine/store.js'
import { canonicalOptions, type ClassifyContext } from './exchange/classify.js'
import { buildIdentityChain, type IdentityChain } from './identity/chain.js'
import { Notifier } from './notify/index.js'
import { InspectionBudget } from './records/budget.js'
import { Reporter, type IncidentSink } from './report/reporter.js'
import { SessionBinder } from './sessions/binding.js'
import { createStore } from './store/create.js'

/** Everything derived from one config; a reload swaps it whole, in-flight requests keep theirs. */
export interface Live {
  config: CompiledConfig
  engine: Engine
  identity: IdentityChain
  challenges: Challenges
  sessions: SessionBinder | null
  classify: ClassifyContext
  /** Method-override headers are removed before forwarding. */
  stripOverride: boolean
}

export interface ReloadResult {
  ok: boolean
  /** Why a config was refused (the running one stays). */
  errors?: string[]
  /** Routes that are new or have other limits (their windows carry over). */
  changedRoutes?: string[]
}

export interface RuntimeOptions {
  log: FastifyBaseLogger
  /** Defaults to the store config.store names (memory or Redis); a store passed in is not closed by the runtime. */
  store?: Store
  /** Defaults to a fresh registry. */
  metrics?: Metrics
  /** Where recent incidents go (the admin API's list). */
  incidents?: IncidentSink
  clock?: () => number
  /** Proxy mode: the request is rewritten and stripped for the upstream (see SluiceOptions). */
  forwarding?: boolean
}

export class Runtime {
  readonly store: Store
  readonly metrics: Metrics
  readonly audit: AuditTrail | null
  readonly reporter: Reporter
  /** Recent incidents for the admin API (kept when the config has an admin listener). */
  readonly incidents: IncidentLog | null
  /** Decisions by reference (GET /decisions/:ref): this process' ring, and the Redis store when shared. */
  readonly decisions: DecisionLog
  readonly budget: InspectionBudget
  readonly clock: () => number
  readonly forwarding: boolean
  /** Observations timed for the latency histogram: only a store across the network (null: memory). */
  readonly storeLatency: Observer | null
  private current: Live
  /** When the config in force was loaded or reloaded (ms). */
  private loadedAt: number
  private readonly log: FastifyBaseLogger
  private readonly ownsStore: boolean
  /** Basic fingerprints keyed alike on every instance of a shared store, even without a configured secret. */
  private readonly sharedIdentityKey: string | undefined

  private constructor(
    config: CompiledConfig,
    options: RuntimeOptions,
    store: Store,
    metrics: Metrics,
    audit: AuditTrail | null,
    sharedIdentityKey: string | undefined,
  ) {
    this.log = options.log
    this.clock = options.clock ?? Date.now
    this.forwarding = options.forwarding ?? false
    this.store = store
    this.ownsStore = options.store === undefined
    this.metrics = metrics
    this.storeLatency = store.health().type === 'memory' ? null : metrics.storeLatency.labels(store.kind)
    this.audit = audit
    this.sharedIdentityKey = sharedIdentityKey
    // An incident list given in is the one the admin API shows; else one of its own when it has an admin listener.
    this.incidents =
      options.incidents instanceof IncidentLog ? options.incidents : config.admin ? new IncidentLog() : null
    this.decisions = new DecisionLog({
      keptMs: config.admin?.decisionsKeptMs ?? DECISIONS_KEPT_MS,
      // A store shared by instances shares the references; the memory store is this process: the ring is enough.
      store:
        store.saveDecision && store.loadDecision
          ? (store as Required<Pick<Store, 'saveDecision' | 'loadDecision'>>)
          : null,
      clock: this.clock,
    })
    this.reporter = new Reporter({
      decisions: this.decisions,
      pseudonymise: config.privacy.pseudonymise,
      key: config.privacy.key,
      audit,
      notifier: notifierFor(config),
      incidents: options.incidents ?? this.incidents,
      log: options.log,
    })
    this.budget = new InspectionBudget(config.inspection.memoryBytes)
    this.metrics.sources.audit = () => audit?.state() ?? null
    this.metrics.sources.notify = () => this.reporter.notifier?.stats() ?? null
    this.current = this.prepare(config)
    this.loadedAt = this.clock()
  }

  static async create(config: CompiledConfig, options: RuntimeOptions): Promise<Runtime> {
    let store: Store | undefined = options.store
    const metrics = options.metrics ?? new Metrics({ accounts: () => store?.health().accounts ?? 0 })
    store ??= await createStore(config.store, options.log, metrics)
    const audit = config.audit
      ? await AuditTrail.open({
          file: config.audit.file,
          ...(config.audit.key !== undefined ? { key: config.audit.key } : {}),
          fsync: config.audit.fsync,
          fsyncIntervalMs: config.audit.fsyncIntervalMs,
          maxBytes: config.audit.maxBytes,
          queueLimit: config.audit.queueLimit,
          logger: options.log,
        })
      : null
    const needsKey = config.identity.some((i) => i.type === 'basic') && config.identityKey === undefined
    const sharedKey = needsKey ? await store.sharedKey?.('identity') : undefined
    const runtime = new Runtime(config, options, store, metrics, audit, sharedKey)
    if (config.privacy.pseudonymise && config.privacy.key === undefined && store.health().type === 'redis') {
      options.log.warn(
        { event: 'sluice.privacy' },
        'privacy.key is not set: record pseudonyms are random per process and differ between instances (set privacy.key or audit.key)',
      )
    }
    audit?.append('started', { mode: config.shadow ? 'shadow' : 'enforce', routes: config.routes.map((r) => r.name) })
    return runtime
  }

  /** The config in force, and what was derived from it. */
  get live(): Live {
    return this.current
  }

  /** Swap in a new config (same store and audit file): unchanged routes keep their counts. */
  async reload(next: CompiledConfig): Promise<ReloadResult> {
    const errors = restartOnly(this.current.config, next)
    if (errors.length > 0) {
      this.reporter.event('reload', { outcome: 'refused', errors }, this.log)
      return { ok: false, errors }
    }
    const previous = this.current.config
    const changedRoutes = next.routes
      .filter((r) => !previous.routes.some((o) => o.name === r.name && samePolicy(o, r)))
      .map((r) => r.name)
    this.current = this.prepare(next)
    this.loadedAt = this.clock()
    this.budget.limit = next.inspection.memoryBytes
    if (next.logLevel !== previous.logLevel) this.log.level = next.logLevel
    if (JSON.stringify(next.notify) !== JSON.stringify(previous.notify)) {
      const before = this.reporter.notifier
      this.reporter.notifier = notifierFor(next)
      if (before) void before.close({ timeoutMs: 5000 })
    }
    this.reporter.event(
      'reload',
      {
        outcome: 'applied',
        // Which config was loaded: sha256 of its YAML text (compare with sha256sum sluice.yaml).
        ...(next.configHash !== undefined ? { configHash: next.configHash } : {}),
        mode: next.shadow ? 'shadow' : 'enforce',
        routes: next.routes.map((r) => r.name),
        changedRoutes,
      },
      this.log,
    )
    return { ok: true, changedRoutes }
  }

  /**
   * The admin listener over this runtime (health, metrics, accounts, incidents, reload),
   * listening on `admin.listen`; null when the config has no `admin`. Every admin action is
   * reported (audit trail, webhooks) with who asked.
   */
  async startAdmin(reload: () => Promise<ReloadResult>): Promise<FastifyInstance | null> {
    const admin = this.current.config.admin
    if (!admin) return null
    const reporter = this.reporter
    const trail = this.audit
    // The upstream is this instance's to check only when it forwards to it (not embedded in an app).
    const upstream =
      this.forwarding && admin.readiness.upstream
        ? new UpstreamProbe(this.current.config.upstream.url, {
            everyMs: admin.readiness.checkEveryMs,
            timeoutMs: admin.readiness.timeoutMs,
            log: this.log,
            clock: this.clock,
          })
        : null
    await upstream?.start()
    if (upstream) this.metrics.sources.upstream = () => upstream.health()
    const app = await buildAdmin({
      token: admin.token,
      // Named tokens: the audit records which one did each action.
      tokens: this.current.config.source.admin?.tokens ?? [],
      metrics: this.metrics,
      store: this.store,
      policies: () => this.current.config.routes.map((r) => r.policy),
      ...(this.incidents ? { incidents: this.incidents } : {}),
      decisions: this.decisions,
      reload,
      logger: this.log,
      // Who asked is part of the trail; the reload's own outcome is reported by the reload.
      onAdminAction: (a) =>
        reporter.event(ADMIN_EVENTS.has(a.action) ? 'admin' : a.action, { ...a, time: new Date(a.time).toISOString() }),
      ...(trail ? { audit: () => trail.state() } : {}),
      ...(upstream ? { upstream: () => upstream.health() } : {}),
      ...(admin.console.enabled
        ? {
            console: {
              sessionTtlMs: admin.console.sessionTtlMs,
              config: () => this.current.config,
              loadedAt: () => this.loadedAt,
            },
          }
        : {}),
    })
    if (upstream) app.addHook('onClose', () => upstream.stop())
    const at = await app.listen({ host: admin.host, port: admin.port })
    this.log.info({ event: 'sluice.admin', url: at }, `admin listening on ${at}`)
    return app
  }

  /** After the server stopped accepting and in-flight requests finished: nothing more to report. */
  async close(): Promise<void> {
    this.audit?.append('stopped', {})
    await Promise.all([this.audit?.close({ timeoutMs: 5000 }), this.reporter.notifier?.close({ timeoutMs: 5000 })])
    if (this.ownsStore) await this.store.close()
  }

  private prepare(config: CompiledConfig): Live {
    const challengeable = config.routes.some((r) => r.policy.challengeable)
    // Loaded now, settled before the first challenge (which awaits it if not).
    if (challengeable) void loadAltcha()
    if (challengeable && config.actions.challenge.secret === undefined) {
      // One instance with its own memory store: a per-process key is fine, but passes do not survive a restart.
      this.log[this.store.health().type === 'memory' ? 'info' : 'warn'](
        { event: 'sluice.challenge' },
        'actions.challenge.secret is not set: challenges are signed with a random key of this process (passes do not survive a restart or cross instances)',
      )
    }
    return {
      config,
      engine: new Engine(this.store, {
        disableForMs: config.actions.disableForMs,
        shadow: config.shadow,
        clock: this.clock,
        tally: (key, n, ttlMs) => this.store.count(key, n, ttlMs),
      }),
      identity: buildIdentityChain(config.identity, config.trust, {
        key: config.identityKey ?? this.sharedIdentityKey ?? PROCESS_KEY,
      }),
      challenges: new Challenges(config.actions.challenge, this.store),
      sessions: config.sessions ? new SessionBinder(config.sessions, this.store, this.log) : null,
      classify: {
        routes: config.routes,
        sessions: config.sessions,
        canonical: canonicalOptions(config.paths.stripMatrixParams),
        shadow: config.shadow,
      },
      stripOverride: this.forwarding && config.methodOverride === 'strip',
    }
  }
}

/** Admin actions audited as `admin` entries (the others, unlock, reset, …, under their own name). */
const ADMIN_EVENTS: ReadonlySet<string> = new Set(['reload', 'sign-in', 'sign-out'])

/** How long a decision can be looked up by its reference without `admin.decisionsKept`. */
const DECISIONS_KEPT_MS = 7 * 86_400_000

/** The fallback key of Basic fingerprints: one per process, so a reload keeps every account's key. */
const PROCESS_KEY = randomBytes(32).toString('base64')

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
  if (!same(now.admin, next.admin) || !same(now.source.admin?.tokens, next.source.admin?.tokens))
    errors.push('admin: changing the admin listener needs a restart')
  if (!same(now.privacy, next.privacy))
    errors.push('privacy: changing pseudonymisation needs a restart (pseudonyms would change mid-trail)')
  return errors
}

/** Limits the store keeps counts for: a route whose policy is unchanged keeps its windows. */
function samePolicy(a: CompiledRoute, b: CompiledRoute): boolean {
  return JSON.stringify(a.policy.limits) === JSON.stringify(b.policy.limits)
}
