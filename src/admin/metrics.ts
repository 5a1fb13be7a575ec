// Prometheus metrics (prom-client), one registry per sluice instance.
import { FastCounter } from './fast-counter.js'
import { FastHistogram, type Observer } from './fast-histogram.js'
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import type { AuditState } from '../audit/index.js'
import type { NotifierStats } from '../notify/index.js'
import type { UpstreamHealth } from './readiness.js'

/** What the audit trail and the notifier report at scrape time (null: not configured). */
export interface Sources {
  audit: () => AuditState | null
  notify: () => NotifierStats | null
  /** The upstream probe of /readyz (admin.readiness.upstream; null: not probed). */
  upstream: () => UpstreamHealth | null
}

export class Metrics {
  readonly registry = new Registry()
  /** Every request to a sensitive route, once: on the request path, so a FastCounter. */
  readonly decisions: FastCounter<'route' | 'decision' | 'shadow'>
  readonly blocks: Counter<'action'>
  readonly rejected: Counter<'reason'>
  readonly storeLatency: FastHistogram
  readonly storeErrors: Counter<'store'>
  readonly storeFallbacks: Counter<'policy'>
  readonly storeUp: Gauge<'store' | 'policy'>
  readonly evictions: Counter
  readonly overflow: Counter
  /** Inspected bodies refused because the inspection memory budget was in use. */
  readonly inspectionBusy: Counter
  readonly accounts: Gauge
  readonly challenges: Counter<'outcome'>
  readonly uninspectable: Counter<'route' | 'step'>
  readonly withheld: Counter<'route'>
  /** The memory store's state file (store.state). */
  readonly stateCorrupt: Counter
  readonly stateWrites: Counter<'outcome'>
  readonly stateLastWrite: Gauge
  readonly stateBytes: Gauge
  readonly stateWriteSeconds: Gauge

  /** The standalone proxy's upstream: time to its response headers, by route and status class. */
  readonly upstreamLatency: FastHistogram
  /** Requests sluice answered 502 or 504 because the upstream failed or was too slow. */
  readonly upstreamErrors: Counter<'route' | 'status'>
  /** The standalone proxy: request in to response end, by route and the status class sent. */
  readonly proxyDuration: FastHistogram
  /** Children of upstreamLatency and proxyDuration, resolved once per (route, class): `-` is no route. */
  readonly upstreamLatencyFor: (route: string, status: number) => Observer
  readonly proxyDurationFor: (route: string, status: number) => Observer

  /** Filled in by the plugin once the audit trail and the notifier exist. */
  readonly sources: Sources = { audit: () => null, notify: () => null, upstream: () => null }

  constructor(options: { accounts?: () => number } = {}) {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry, prefix: 'sluice_process_' })
    this.decisions = new FastCounter(
      'sluice_requests_total',
      'Requests to sensitive routes, by route and decision (allow, log, throttle, challenge, disable, disabled, unavailable).',
      ['route', 'decision', 'shadow'],
      registers,
    )
    this.blocks = new Counter({
      name: 'sluice_blocks_total',
      help: 'Requests blocked (enforce mode), by action.',
      labelNames: ['action'],
      registers,
    })
    this.rejected = new Counter({
      name: 'sluice_rejected_total',
      help: 'Requests refused with 400 before matching (ambiguous path or identity).',
      labelNames: ['reason'],
      registers,
    })
    // Observed on every request with the Redis store: resolved once, no hashing per observation.
    this.storeLatency = new FastHistogram(
      'sluice_store_latency_seconds',
      'Time of one Redis store observation (the memory store is not timed).',
      ['store'],
      [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers,
    )
    this.storeErrors = new Counter({
      name: 'sluice_store_errors_total',
      help: 'Observations the store failed to answer.',
      labelNames: ['store'],
      registers,
    })
    this.storeFallbacks = new Counter({
      name: 'sluice_store_fallback_total',
      help: 'Observations answered by the failure policy instead of the store.',
      labelNames: ['policy'],
      registers,
    })
    this.storeUp = new Gauge({
      name: 'sluice_store_up',
      help: '1 when the store answers, 0 while its failure policy is in force.',
      labelNames: ['store', 'policy'],
      registers,
    })
    this.evictions = new Counter({
      name: 'sluice_evictions_total',
      help: 'Idle accounts (every window empty) whose windows the memory store dropped to admit another.',
      registers,
    })
    this.overflow = new Counter({
      name: 'sluice_store_overflow_total',
      help: 'Observations of identities the memory store had no room to track (maxAccounts of accounts with open windows), counted under their client network instead.',
      registers,
    })
    this.inspectionBusy = new Counter({
      name: 'sluice_inspection_busy_total',
      help: 'Requests to inspected routes refused (503) because bodies in inspection held the whole inspection memory budget.',
      registers,
    })
    this.challenges = new Counter({
      name: 'sluice_challenges_total',
      help: 'Proof-of-work challenges: issued, solved, or a rejected solution by reason (forged, expired, replayed, other-account, …).',
      labelNames: ['outcome'],
      registers,
    })
    this.uninspectable = new Counter({
      name: 'sluice_uninspectable_total',
      help: 'Bodies that could not be read for record ids (too large, not JSON, undecodable), by route and step (request, response).',
      labelNames: ['route', 'step'],
      registers,
    })
    this.withheld = new Counter({
      name: 'sluice_responses_withheld_total',
      help: 'Upstream responses withheld because their records would cross a limit.',
      labelNames: ['route'],
      registers,
    })
    this.stateCorrupt = new Counter({
      name: 'sluice_state_corrupt_total',
      help: 'State files (store.state) that did not verify at start: moved aside (started with what verified) or refused.',
      registers,
    })
    this.stateWrites = new Counter({
      name: 'sluice_state_writes_total',
      help: 'Snapshots of the memory store written to its state file, by outcome (ok, error).',
      labelNames: ['outcome'],
      registers,
    })
    this.stateLastWrite = new Gauge({
      name: 'sluice_state_last_write_timestamp_seconds',
      help: 'When the state file was last written whole (Unix time): a kill -9 now loses what was counted since.',
      registers,
    })
    this.stateBytes = new Gauge({ name: 'sluice_state_bytes', help: 'Size of the last state file written.', registers })
    this.stateWriteSeconds = new Gauge({
      name: 'sluice_state_write_duration_seconds',
      help: 'How long the last snapshot took to write (in slices between requests).',
      registers,
    })
    // The two histograms observed on every request: resolved once per (route, class), no hashing per observation.
    this.upstreamLatency = new FastHistogram(
      'sluice_upstream_latency_seconds',
      "Time from forwarding a request to the upstream's response headers, by route (- for none) and status class.",
      ['route', 'class'],
      LATENCY_BUCKETS,
      registers,
    )
    this.upstreamErrors = new Counter({
      name: 'sluice_upstream_errors_total',
      help: 'Requests answered 502 (upstream unreachable, connection failed) or 504 (no answer in upstream.timeout), by route.',
      labelNames: ['route', 'status'],
      registers,
    })
    this.proxyDuration = new FastHistogram(
      'sluice_proxy_duration_seconds',
      'Time from a request arriving to its response ending, by route (- for none) and the status class sent.',
      ['route', 'class'],
      LATENCY_BUCKETS,
      registers,
    )
    const upstreamLatency = this.upstreamLatency
    const proxyDuration = this.proxyDuration
    this.upstreamLatencyFor = byRouteAndClass((route, cls) => upstreamLatency.labels(route, cls))
    this.proxyDurationFor = byRouteAndClass((route, cls) => proxyDuration.labels(route, cls))
    const sources = this.sources
    // Read from their owners when scraped: nothing on the request path.
    const gauge = (name: string, help: string, read: () => number | undefined) =>
      new Gauge({
        name,
        help,
        registers,
        collect(this: Gauge) {
          const v = read()
          if (v !== undefined) this.set(v)
        },
      })
    const total = (name: string, help: string, read: () => number | undefined) =>
      new Counter({
        name,
        help,
        registers,
        collect(this: Counter) {
          const v = read()
          if (v !== undefined) {
            this.reset()
            this.inc(v)
          }
        },
      })
    gauge('sluice_audit_backlog', 'Audit entries accepted and not yet written.', () => sources.audit()?.backlog)
    gauge(
      'sluice_audit_healthy',
      '1 while the audit file is written, 0 while writes fail (entries are kept and retried).',
      () => {
        const a = sources.audit()
        return a ? (a.healthy ? 1 : 0) : undefined
      },
    )
    total('sluice_audit_written_total', 'Audit entries written.', () => sources.audit()?.written)
    total(
      'sluice_audit_dropped_total',
      'Audit entries refused because the queue was full.',
      () => sources.audit()?.dropped,
    )
    gauge('sluice_notify_backlog', 'Incidents waiting for webhook delivery.', () => sources.notify()?.backlog)
    total('sluice_notify_sent_total', 'Webhook deliveries that succeeded.', () => sources.notify()?.sent)
    total('sluice_notify_failed_total', 'Incidents given up after every attempt.', () => sources.notify()?.failed)
    total(
      'sluice_notify_dropped_total',
      'Incidents dropped because a webhook queue was full.',
      () => sources.notify()?.dropped,
    )
    new Gauge({
      name: 'sluice_upstream_up',
      help: '1 while the upstream takes TCP connections, 0 while it does not (/readyz answers 503); only with admin.readiness.upstream.',
      labelNames: ['target'],
      registers,
      collect(this: Gauge<'target'>) {
        const u = sources.upstream()
        if (u) this.labels(u.target).set(u.state === 'ok' ? 1 : 0)
      },
    })
    const accounts = options.accounts
    this.accounts = new Gauge({
      name: 'sluice_accounts_tracked',
      help: "Accounts with counts in this instance's memory store.",
      registers,
      ...(accounts
        ? {
            collect(this: Gauge) {
              this.set(accounts())
            },
          }
        : {}),
    })
  }
}

/** Seconds: a fast local app answers in milliseconds, a legacy one can take its whole timeout. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'other'] as const

/** A child per (route, status class), resolved on first use: no label lookup or key string per request. */
function byRouteAndClass<T>(resolve: (route: string, cls: string) => T): (route: string, status: number) => T {
  const byRoute = new Map<string, T[]>()
  return (route, status) => {
    let row = byRoute.get(route)
    if (row === undefined) byRoute.set(route, (row = []))
    const i = status >= 100 && status < 600 ? ((status / 100) | 0) - 1 : 5
    return (row[i] ??= resolve(route, STATUS_CLASSES[i] ?? 'other'))
  }
}
