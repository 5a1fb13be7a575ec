// Where a decision goes once it is made: the log line, the audit trail, the incident list of
// the admin API and the operator's webhooks. One place, so the four never disagree — and
// one place where record ids become pseudonyms before anything is written down.
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { boundedLru } from '../store/lru.js'
import { pseudonymise, type AuditTrail } from '../audit/index.js'
import type { CompiledRoute } from '../config/compile.js'
import type { Decision } from '../engine/engine.js'
import type { Limit } from '../engine/policy.js'
import type { Notifier } from '../notify/index.js'
import { decodeParam } from '../routes/table.js'
import { INSTANCE, newReference, type DecisionJson, type DecisionLog } from '../admin/decisions.js'
import { formatMs } from '../engine/policy.js'

/** What the admin API lists as recent incidents. */
export interface Incident {
  time: number
  account: string
  route: string
  limit: string | null
  action: string
  decision: string
  blocked: boolean
  shadow: boolean
  counts: Record<string, number>
  clientIp?: string
  /** The decision's reference (GET /decisions/:ref). */
  reference?: string
}

/** A per-route limit crossed, from its first crossing decision to its last. */
interface Episode {
  limit: Limit
  route: string
  account: string
  shadow: boolean
  first: number
  last: number
  requests: number
  /** The first decision's reference: every request of the episode is explained by it. */
  reference: string
}

export interface IncidentSink {
  record(incident: Incident): void
}

export interface DecisionContext {
  log: FastifyBaseLogger
  route: CompiledRoute
  identity: string
  clientIp: string
  method: string
  /** The canonical path and query, as forwarded. */
  target: string
  records: readonly string[]
  step: 'request' | 'response'
  now: number
  /** A throttle's Retry-After (kept with the decision). */
  retryAfterMs?: number
}

export interface ReporterOptions {
  pseudonymise: boolean
  /** Undefined: a random key of this process (pseudonyms then differ between instances and restarts). */
  key: string | Buffer | undefined
  audit?: AuditTrail | null
  notifier?: Notifier | null
  incidents?: IncidentSink | null
  /** Decisions kept under their reference (GET /decisions/:ref). */
  decisions?: DecisionLog | null
  /** Where events that no request carries are logged (a per-route limit's episode ending). */
  log?: FastifyBaseLogger
}

/** What may separate the ids of one query value (`split:` in the config). */
const LIST_SEPARATORS = /([,;|: \t/=]+)/

/** How many record pseudonyms one log line or audit entry carries (the count is always there). */
const RECORDS_LOGGED = 20
/**
 * A webhook per account, route, limit and kind at most this often: a scraper hammering a block is
 * one incident, not thousands. Many accounts at once (an attacker's thousand identities) are the
 * notifier's to fold: past 5 of one route and kind in 10 s, into one summary (src/notify/coalesce.ts).
 */
const NOTIFY_EVERY_MS = 60_000

export class Reporter {
  readonly pseudonymise: boolean
  audit: AuditTrail | null
  notifier: Notifier | null
  incidents: IncidentSink | null
  decisions: DecisionLog | null
  private readonly log: FastifyBaseLogger | undefined
  private readonly key: Buffer
  private readonly notified = boundedLru<string, true>(100_000, { ttl: NOTIFY_EVERY_MS, ttlAutopurge: false })
  /** Open episodes of per-route limits, by route, limit and mode: as many as such limits at most. */
  private readonly episodes = new Map<string, Episode>()

  constructor(options: ReporterOptions) {
    this.pseudonymise = options.pseudonymise
    this.key =
      options.key === undefined
        ? randomBytes(32)
        : Buffer.isBuffer(options.key)
          ? options.key
          : Buffer.from(options.key)
    this.audit = options.audit ?? null
    this.notifier = options.notifier ?? null
    this.incidents = options.incidents ?? null
    this.decisions = options.decisions ?? null
    this.log = options.log
  }

  /**
   * A record id as it may be written down: `~` and its pseudonym (docs/audit.md), or the id
   * itself. The `~` marks it in a path, where a bare hex string could pass for an id.
   */
  record(id: string): string {
    return this.pseudonymise ? `~${pseudonymise(this.key, id)}` : id
  }

  /**
   * The request target with every path segment and query value that is one of the records
   * replaced by its pseudonym: the line still replays (the same record, the same pseudonym)
   * and still reads (which route, which parameters), without naming the records.
   */
  target(target: string, records: readonly string[]): string {
    if (!this.pseudonymise || records.length === 0) return target
    const ids = new Set(records)
    const q = target.indexOf('?')
    const path = q < 0 ? target : target.slice(0, q)
    // Path records are the decoded segments (routes/table.ts), so compare decoded; a segment's
    // `;matrix` part is not part of its record.
    const masked = path
      .split('/')
      .map((seg) => {
        const semi = seg.indexOf(';')
        const id = decodeParam(semi < 0 ? seg : seg.slice(0, semi))
        return ids.has(id) ? this.record(id) + (semi < 0 ? '' : seg.slice(semi)) : seg
      })
      .join('/')
    if (q < 0) return masked
    // Values decoded as servers decode them; a `;` inside one (a separator to some servers,
    // `?a=1;id=5`) is split on like any list separator, `=` too.
    const params = target
      .slice(q + 1)
      .split('&')
      .map((part) => {
        const eq = part.indexOf('=')
        if (eq < 0) return part
        const value = decodeParam(part.slice(eq + 1).replace(/\+/g, ' '))
        if (ids.has(value)) return `${part.slice(0, eq)}=${encodeURIComponent(this.record(value))}`
        // Split lists (ids=1,2,3) are masked element by element, keeping the separators.
        const masked = value
          .split(LIST_SEPARATORS)
          .map((v) => (ids.has(v.trim()) ? this.record(v.trim()) : v))
          .join('')
        return masked === value ? part : `${part.slice(0, eq)}=${encodeURIComponent(masked)}`
      })
    return `${masked}?${params.join('&')}`
  }

  decision(d: Decision, c: DecisionContext): void {
    // Every decision other than allow has a reference: the block answer carries it (an episode
    // of a per-route limit keeps its first decision's).
    d.reference = newReference()
    if (d.account.startsWith('route:') && d.limit !== null && this.inEpisode(d, c)) return
    const counts: Record<string, number> = {}
    c.route.policy.limits.forEach((l, i) => {
      counts[l.label] = d.counts[i] ?? 0
    })
    const records = c.records.slice(0, RECORDS_LOGGED).map((r) => this.record(r))
    const disabledUntil =
      d.disabledUntil !== null
        ? Number.isFinite(d.disabledUntil)
          ? new Date(d.disabledUntil).toISOString()
          : 'forever'
        : undefined
    const fields = {
      decision: d.kind,
      blocked: d.block,
      shadow: d.shadow,
      account: d.account,
      identity: c.identity,
      clientIp: c.clientIp,
      route: d.route,
      step: c.step,
      limit: d.limit?.label ?? null,
      counts,
      records: c.records.length,
      recordIds: records,
      method: c.method,
      path: this.target(c.target, c.records),
      ...(disabledUntil ? { disabledUntil } : {}),
      // Decided under an override (src/overrides): exempt ones are shadow decisions, never blocks.
      ...(c.route.override ? { override: c.route.override.label, exempt: c.route.override.exempt } : {}),
      reference: d.reference,
    }
    c.log.warn(
      { event: 'sluice.decision', ...fields },
      d.shadow ? `${c.route.override?.exempt ? 'exempt' : 'shadow'}: would ${d.kind}` : d.kind,
    )
    // A disable is its own entry type: it is what an investigator looks for first.
    this.audit?.append(d.kind === 'disable' ? 'disable' : 'decision', fields)
    this.incidents?.record({
      time: c.now,
      account: d.account,
      route: d.route,
      limit: d.limit?.label ?? null,
      action: d.limit?.action ?? d.kind,
      decision: d.kind,
      blocked: d.block,
      shadow: d.shadow,
      counts,
      clientIp: c.clientIp,
      reference: d.reference,
    })
    this.decisions?.keep(this.explain(d, c, fields.path, disabledUntil), c.now)
    if (this.notifier && d.kind !== 'disabled' && d.kind !== 'unavailable') {
      const key = `${d.account}\0${d.route}\0${d.limit?.id ?? ''}\0${d.kind}\0${d.shadow}`
      if (!this.notified.has(key)) {
        this.notified.set(key, true)
        this.notifier.notify({
          type: d.kind,
          time: new Date(c.now).toISOString(),
          account: d.account,
          route: d.route,
          limit: d.limit?.label ?? null,
          action: d.limit?.action ?? d.kind,
          counts,
          shadow: d.shadow,
          blocked: d.block,
          clientIp: c.clientIp,
          ...(disabledUntil ? { disabledUntil } : {}),
        })
      }
    }
  }

  /** What GET /decisions/:ref shows: the decision with the limit that acted and every count. */
  private explain(d: Decision, c: DecisionContext, path: string, disabledUntil: string | undefined): DecisionJson {
    const limit = d.limit
    const throttled = d.kind === 'throttle' || (d.kind === 'challenge' && limit === null)
    return {
      reference: d.reference as string,
      time: new Date(c.now).toISOString(),
      account: d.account,
      route: d.route,
      decision: d.kind,
      blocked: d.block,
      shadow: d.shadow,
      action: limit?.action ?? d.kind,
      limit:
        limit === null
          ? null
          : {
              id: limit.id,
              label: limit.label,
              kind: limit.kind,
              per: limit.per,
              window: formatMs(limit.windowMs),
              windowMs: limit.windowMs,
              max: limit.max,
              action: limit.action,
            },
      counts: c.route.policy.limits.map((l, i) => ({
        id: l.id,
        label: l.label,
        kind: l.kind,
        per: l.per,
        window: formatMs(l.windowMs),
        windowMs: l.windowMs,
        max: l.max,
        count: d.counts[i] ?? 0,
      })),
      ...(disabledUntil !== undefined ? { disabledUntil } : {}),
      ...(throttled && c.retryAfterMs !== undefined
        ? { retryAfter: Math.max(1, Math.ceil(c.retryAfterMs / 1000)) }
        : {}),
      identity: c.identity,
      clientIp: c.clientIp,
      method: c.method,
      path,
      step: c.step,
      instance: INSTANCE,
    }
  }

  /**
   * A per-route limit is crossed by everyone's requests together: one incident per (route,
   * limit) while it stays crossed, not one per request. The first decision of an episode is
   * reported in full; the others only counted (and logged at debug), until the limit's count is
   * back under its max (quiet()) or a whole window passes without another: then one
   * `route-limit-ended` event says how many requests it took and for how long.
   */
  private inEpisode(d: Decision, c: DecisionContext): boolean {
    const limit = d.limit as Limit
    const key = `${d.route}\0${limit.id}\0${d.shadow}`
    const open = this.episodes.get(key)
    if (open !== undefined && c.now - open.last < limit.windowMs) {
      open.last = c.now
      open.requests++
      d.reference = open.reference
      c.log.debug({ event: 'sluice.decision', decision: d.kind, account: d.account, route: d.route }, d.kind)
      return true
    }
    if (open !== undefined) this.endEpisode(key, open)
    this.episodes.set(key, {
      limit,
      route: d.route,
      account: d.account,
      shadow: d.shadow,
      first: c.now,
      last: c.now,
      requests: 1,
      reference: d.reference as string,
    })
    return false
  }

  /** A decision that crossed nothing: a per-route limit whose count is back under its max ends its episode. */
  quiet(d: Decision): void {
    if (this.episodes.size === 0) return
    for (const [key, e] of this.episodes) {
      if (e.route === d.route && (d.counts[e.limit.index] ?? 0) <= e.limit.max) this.endEpisode(key, e)
    }
  }

  private endEpisode(key: string, e: Episode): void {
    this.episodes.delete(key)
    this.event(
      'route-limit-ended',
      {
        account: e.account,
        route: e.route,
        limit: e.limit.label,
        shadow: e.shadow,
        from: new Date(e.first).toISOString(),
        to: new Date(e.last).toISOString(),
        requests: e.requests,
      },
      this.log,
    )
  }

  /** Operator actions and lifecycle events: audited, and sent to webhooks that asked for them. */
  event(type: string, fields: Record<string, unknown>, log?: FastifyBaseLogger): void {
    log?.info({ event: `sluice.${type}`, ...fields }, type)
    // The trail keeps its own seq, time and chain fields; an event's own time goes under `at`.
    const { seq: _seq, time, type: _type, prev: _prev, hash: _hash, ...own } = fields
    this.audit?.append(type, time === undefined ? own : { ...own, at: time })
    this.notifier?.notify({ type, time: new Date().toISOString(), ...fields })
  }
}
