// Webhooks for incidents (disable, challenge, throttle, unlock, …). `notify` only queues: the
// request that caused the incident never waits for a receiver. Each webhook has its own bounded
// queue and its own few deliveries in flight, so a slow or dead receiver delays only itself.
//
// Alerts cannot be drowned (docs/audit.md, "Floods"): a flood of one (route, type) is folded into
// summaries (coalesce.ts), a full queue evicts its least severe incident rather than refusing a
// more severe one, and what was dropped is itself reported once the flood is over.
import { randomUUID } from 'node:crypto'
import { SluiceError } from '../errors.js'
import { DEFAULT_RETRY, parseRetryAfter, retryDelay, type RetryPolicy } from './backoff.js'
import { Coalescer, type Burst, type CoalesceOptions } from './coalesce.js'
import { SIGNATURE_HEADER, webhookSignature } from './signature.js'

/** pino's logger fits; so does anything with these three methods. */
export interface NotifyLogger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

export interface WebhookOptions {
  url: string
  /** HMAC-SHA256 key of the `sluice-signature` header. */
  secret: string | Buffer
  /** Event types delivered to this webhook (`disable`, `challenge`, …); `*` for all. */
  events: readonly string[]
  /** Per attempt, until the response headers arrive. Default 5000 ms. */
  timeoutMs?: number
}

export interface NotifierOptions {
  webhooks: readonly WebhookOptions[]
  /**
   * Events waiting per webhook (queued, in flight, or waiting to retry). Default 1000. When full,
   * the least severe queued event (newest first) makes room for a more severe one; otherwise the
   * new event is refused.
   */
  queueLimit?: number
  /** Folding floods of one (route, type) into summaries; see coalesce.ts for the defaults. */
  coalesce?: CoalesceOptions
  /** Deliveries in flight per webhook. Default 2. */
  concurrency?: number
  retry?: RetryPolicy
  logger?: NotifyLogger
  /** Tests only. */
  fetch?: typeof fetch
  now?: () => number
  random?: () => number
}

/** An incident as the engine, the admin API or the reloader describe it; any other fields are sent too. */
export interface IncidentEvent {
  /**
   * `disable`, `challenge`, `throttle`, `unlock`, `reset`, `reload`, … (the notifier's own:
   * `dropped`; summaries keep their incidents' type).
   */
  type: string
  /** Generated (a UUID) when absent; receivers deduplicate on it. */
  id?: string
  /** ISO 8601; now when absent. */
  time?: string
  account?: string
  route?: string
  limit?: unknown
  counts?: unknown
  action?: string
  [field: string]: unknown
}

export interface WebhookStats {
  /** The receiver's origin only: webhook URLs often carry a token in their path. */
  target: string
  events: readonly string[]
  sent: number
  failed: number
  retried: number
  dropped: number
  /** `dropped` by incident type. */
  droppedByType: Record<string, number>
  backlog: number
}

export interface NotifierStats {
  sent: number
  failed: number
  retried: number
  dropped: number
  droppedByType: Record<string, number>
  backlog: number
  /** Incidents folded into coalesced summaries instead of being sent on their own. */
  coalesced: number
  /** Coalesced summaries emitted. */
  summaries: number
  webhooks: WebhookStats[]
}

/**
 * Rank in a full queue and order of delivery: 3 disable and everything an operator or sluice
 * itself reports (unlock, reset, admin, reload, dropped, unknown types), 2 challenge,
 * 1 throttle, 0 log.
 */
export function severity(type: string): number {
  switch (type) {
    case 'log':
    case 'allow':
      return 0
    case 'throttle':
      return 1
    case 'challenge':
      return 2
    default:
      return 3
  }
}

const LEVELS = 4
/** Distinct types counted in droppedByType; any further type is counted under `other`. */
const DROPPED_TYPES = 32

interface Delivery {
  id: string
  type: string
  body: string
  attempts: number
  /** Order of arrival, notifier-wide: the newest has the highest. */
  seq: number
  severity: number
  /** The (route, type) burst of an individually sent incident; undefined for summaries. */
  burst: Burst | undefined
}

/** What a webhook dropped since its last `dropped` report. */
interface Drops {
  count: number
  byType: Map<string, number>
  since: number
  last: number
}

interface LogLimit {
  lastLog: { warn: number; error: number }
  unlogged: { warn: number; error: number }
}

interface Webhook {
  url: string
  target: string
  secret: string | Buffer
  events: ReadonlySet<string>
  timeoutMs: number
  /** Per severity (the index): the most severe are delivered first, each level in order. */
  ready: Delivery[][]
  waiting: Map<Delivery, NodeJS.Timeout>
  inFlight: number
  stats: WebhookStats
  droppedByType: Map<string, number>
  drops: Drops | null
  /** Per level: retries (warn) must not hide give-ups and drops (error). */
  lastLog: { warn: number; error: number }
  unlogged: { warn: number; error: number }
}

const LOG_EVERY_MS = 10_000

export class Notifier {
  private readonly webhooks: Webhook[]
  private readonly queueLimit: number
  private readonly concurrency: number
  private readonly retry: Required<RetryPolicy>
  private readonly log: NotifyLogger | undefined
  private readonly fetch: typeof fetch
  private readonly now: () => number
  private readonly random: () => number
  private readonly coalescer: Coalescer
  private readonly coalesceLog: LogLimit = { lastLog: { warn: 0, error: 0 }, unlogged: { warn: 0, error: 0 } }
  /** Aborts what is in flight when close() runs out of time. */
  private readonly shutdown = new AbortController()
  private closing = false
  private idleWaiters: (() => void)[] = []
  private seq = 0
  /** One timer for the whole notifier: the next summary or `dropped` report due. */
  private timer: NodeJS.Timeout | undefined
  private timerDue = Infinity

  constructor(options: NotifierOptions) {
    this.coalescer = new Coalescer(options.coalesce, (summary) => void this.dispatch(summary, undefined))
    this.queueLimit = Math.max(1, options.queueLimit ?? 1000)
    this.concurrency = Math.max(1, options.concurrency ?? 2)
    this.retry = { ...DEFAULT_RETRY, ...options.retry }
    this.log = options.logger
    this.fetch = options.fetch ?? globalThis.fetch
    this.now = options.now ?? Date.now
    this.random = options.random ?? Math.random
    this.webhooks = options.webhooks.map((w, i) => {
      let url: URL
      try {
        url = new URL(w.url)
      } catch {
        throw new SluiceError('SLUICE_ERR_NOTIFY_URL', `notify.webhooks[${i}].url is not a URL`)
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:')
        throw new SluiceError('SLUICE_ERR_NOTIFY_URL', `notify.webhooks[${i}].url must be http(s), not ${url.protocol}`)
      if (w.secret.length === 0)
        throw new SluiceError(
          'SLUICE_ERR_NOTIFY_SECRET',
          `notify.webhooks[${i}].secret is empty: receivers could not tell sluice's requests from anyone's`,
        )
      return {
        url: w.url,
        target: url.origin,
        secret: w.secret,
        events: new Set(w.events),
        timeoutMs: w.timeoutMs ?? 5000,
        ready: Array.from({ length: LEVELS }, () => []),
        waiting: new Map(),
        inFlight: 0,
        stats: {
          target: url.origin,
          events: [...w.events],
          sent: 0,
          failed: 0,
          retried: 0,
          dropped: 0,
          droppedByType: {},
          backlog: 0,
        },
        droppedByType: new Map(),
        drops: null,
        lastLog: { warn: 0, error: 0 },
        unlogged: { warn: 0, error: 0 },
      }
    })
  }

  /**
   * Queues the event for every webhook subscribed to its type and returns its id at once, or
   * folds it into the summary of its (route, type) when that (route, type) floods (coalesce.ts),
   * and returns the summary's id. A webhook whose queue is full evicts its least severe event
   * to make room, or refuses this one when nothing queued is less severe; either is counted in
   * `dropped` and logged, and reported to the webhook as a `dropped` incident afterwards.
   */
  notify(event: IncidentEvent): string {
    if (this.closing) return this.dispatch(event, undefined)
    const offer = this.coalescer.offer(event, this.now())
    if (!offer.fold) return this.dispatch(event, offer.burst)
    if (offer.started) {
      const { intervalMs, individually } = this.coalescer.options
      this.rateLimitedLog(
        this.coalesceLog,
        'warn',
        {
          event: 'sluice.notify.coalescing',
          type: event.type,
          route: event.route,
          intervalMs,
          individually,
          id: offer.id,
        },
        `more than ${individually} ${event.type} incidents${typeof event.route === 'string' ? ` on ${event.route}` : ''} within ${intervalMs} ms: the rest are coalesced into one summary`,
      )
      this.schedule(offer.due)
    }
    return offer.id
  }

  stats(): NotifierStats {
    const total: NotifierStats = {
      sent: 0,
      failed: 0,
      retried: 0,
      dropped: 0,
      droppedByType: {},
      backlog: 0,
      coalesced: this.coalescer.folded,
      summaries: this.coalescer.summaries,
      webhooks: [],
    }
    for (const w of this.webhooks) {
      const s = { ...w.stats, droppedByType: Object.fromEntries(w.droppedByType), backlog: this.backlog(w) }
      total.sent += s.sent
      total.failed += s.failed
      total.retried += s.retried
      total.dropped += s.dropped
      for (const [type, n] of w.droppedByType) total.droppedByType[type] = (total.droppedByType[type] ?? 0) + n
      total.backlog += s.backlog
      total.webhooks.push(s)
    }
    return total
  }

  /**
   * Stops accepting events and gives each queued one a last chance: pending summaries and
   * `dropped` reports are queued (where there is room), deliveries waiting for a retry are
   * attempted now, without backoff, and nothing failing from here on is retried.
   * After `timeoutMs`, what is in flight is aborted; everything not delivered is counted failed.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<{ undelivered: number }> {
    if (!this.closing) {
      const now = this.now()
      this.coalescer.flushAll(now)
      for (const w of this.webhooks) this.reportDrops(w, now, true)
    }
    this.closing = true
    clearTimeout(this.timer)
    this.timer = undefined
    for (const w of this.webhooks) {
      for (const [delivery, timer] of w.waiting) {
        clearTimeout(timer)
        w.ready[delivery.severity]?.push(delivery)
      }
      w.waiting.clear()
      this.pump(w)
    }
    let timer: NodeJS.Timeout | undefined
    const idle = new Promise<void>((resolve) => {
      if (this.idle()) resolve()
      else this.idleWaiters.push(resolve)
    })
    await Promise.race([idle, new Promise<void>((resolve) => (timer = setTimeout(resolve, options.timeoutMs ?? 5000)))])
    clearTimeout(timer)
    let undelivered = 0
    for (const w of this.webhooks) {
      const queued = this.queued(w)
      undelivered += queued + w.inFlight
      w.stats.failed += queued
      for (const level of w.ready) level.length = 0
    }
    // In-flight deliveries count themselves failed when their fetch rejects.
    this.shutdown.abort()
    if (undelivered > 0)
      this.log?.error(
        { event: 'sluice.notify.undelivered', undelivered },
        `${undelivered} webhook deliveries abandoned at shutdown`,
      )
    return { undelivered }
  }

  /** Serialises the event and queues it for every webhook subscribed to its type. */
  private dispatch(event: IncidentEvent, burst: Burst | undefined): string {
    const { type, id = randomUUID(), time = new Date(this.now()).toISOString(), ...fields } = event
    let body: string
    try {
      body = JSON.stringify({ id, type, time, ...fields })
    } catch (err) {
      this.log?.error(
        { event: 'sluice.notify.invalid', type, id, err: (err as Error).message },
        'incident could not be serialised; not sent',
      )
      return id
    }
    const level = severity(type)
    for (const w of this.webhooks) {
      if (!w.events.has(type) && !w.events.has('*')) continue
      const d: Delivery = { id, type, body, attempts: 0, seq: this.seq++, severity: level, burst }
      if (this.closing) {
        w.stats.dropped++
        countType(w.droppedByType, type)
        this.rateLimitedLog(
          w,
          'error',
          {
            event: 'sluice.notify.dropped',
            target: w.target,
            type,
            id,
            dropped: w.stats.dropped,
            backlog: this.backlog(w),
          },
          'webhook event after close: dropped',
        )
        continue
      }
      this.admit(w, d)
    }
    return id
  }

  /**
   * Queues `d`, making room in a full queue by evicting the queued delivery that ranks lowest
   * (least severe; of those, first the ones whose (route, type) went on to flood; of those, the
   * newest) when it ranks below `d`. Otherwise `d` — the newest of its rank — is refused.
   * In-flight deliveries are never evicted.
   */
  private admit(w: Webhook, d: Delivery): void {
    if (this.backlog(w) >= this.queueLimit) {
      const victim = this.victim(w)
      if (!victim || rank(victim) >= rank(d)) {
        this.dropped(w, d, false)
        return
      }
      this.evict(w, victim)
      this.dropped(w, victim, true)
    }
    w.ready[d.severity]?.push(d)
    this.pump(w)
  }

  private victim(w: Webhook): Delivery | undefined {
    let best: Delivery | undefined
    let bestRank = Infinity
    const consider = (d: Delivery) => {
      const r = rank(d)
      if (r < bestRank || (r === bestRank && best !== undefined && d.seq > best.seq)) {
        best = d
        bestRank = r
      }
    }
    for (const level of w.ready) for (const d of level) consider(d)
    for (const d of w.waiting.keys()) consider(d)
    return best
  }

  private evict(w: Webhook, d: Delivery): void {
    const timer = w.waiting.get(d)
    if (timer !== undefined) {
      clearTimeout(timer)
      w.waiting.delete(d)
      return
    }
    const level = w.ready[d.severity]
    const i = level?.lastIndexOf(d) ?? -1
    if (level && i >= 0) level.splice(i, 1)
  }

  private dropped(w: Webhook, d: Delivery, evicted: boolean): void {
    const now = this.now()
    w.stats.dropped++
    countType(w.droppedByType, d.type)
    const drops = (w.drops ??= { count: 0, byType: new Map(), since: now, last: now })
    drops.count++
    drops.last = now
    countType(drops.byType, d.type)
    const byType = Object.fromEntries(w.droppedByType)
    this.rateLimitedLog(
      w,
      'error',
      {
        event: 'sluice.notify.dropped',
        target: w.target,
        type: d.type,
        id: d.id,
        evicted,
        dropped: w.stats.dropped,
        droppedByType: byType,
        backlog: this.backlog(w),
      },
      `webhook queue full (${this.queueLimit}) for ${w.target}: ${evicted ? `queued ${d.type} evicted for a more severe incident` : `new ${d.type} dropped`}; ${w.stats.dropped} dropped so far (${Object.entries(
        byType,
      )
        .map(([t, n]) => `${t} ${n}`)
        .join(', ')})`,
    )
    this.schedule(now + this.coalescer.options.intervalMs)
  }

  /**
   * Queues one `dropped` incident for this webhook, whatever its `events`, once the flood is over:
   * nothing dropped for one coalescing interval and the queue at most half full — or, at close,
   * whenever there is room.
   */
  private reportDrops(w: Webhook, now: number, atClose = false): void {
    const drops = w.drops
    if (!drops) return
    const backlog = this.backlog(w)
    if (
      atClose
        ? backlog >= this.queueLimit
        : backlog > Math.floor(this.queueLimit / 2) || now - drops.last < this.coalescer.options.intervalMs
    )
      return
    w.drops = null
    const id = randomUUID()
    const byType = Object.fromEntries(drops.byType)
    const body = JSON.stringify({
      id,
      type: 'dropped',
      time: new Date(now).toISOString(),
      count: drops.count,
      byType,
      since: new Date(drops.since).toISOString(),
      until: new Date(drops.last).toISOString(),
      queueLimit: this.queueLimit,
    })
    const level = severity('dropped')
    w.ready[level]?.push({ id, type: 'dropped', body, attempts: 0, seq: this.seq++, severity: level, burst: undefined })
    this.log?.warn(
      { event: 'sluice.notify.dropped-report', target: w.target, id, count: drops.count, byType },
      `webhook ${w.target}: reporting ${drops.count} dropped incident(s)`,
    )
    this.pump(w)
  }

  /** Arms the notifier's timer for `due`, unless it is already armed for earlier. */
  private schedule(due: number): void {
    if (this.closing || !Number.isFinite(due) || due >= this.timerDue) return
    clearTimeout(this.timer)
    this.timerDue = due
    this.timer = setTimeout(() => this.tick(), Math.max(0, due - this.now()) + 1)
    // Pending summaries alone do not keep the process alive; close() flushes them.
    this.timer.unref()
  }

  private tick(): void {
    this.timer = undefined
    this.timerDue = Infinity
    if (this.closing) return
    const now = this.now()
    let next = this.coalescer.flushDue(now)
    for (const w of this.webhooks) {
      this.reportDrops(w, now)
      // Still pending: not quiet long enough yet (the timer), or the queue too full (its deliveries).
      if (w.drops && w.drops.last + this.coalescer.options.intervalMs > now)
        next = Math.min(next, w.drops.last + this.coalescer.options.intervalMs)
    }
    this.schedule(next)
  }

  private queued(w: Webhook): number {
    let n = 0
    for (const level of w.ready) n += level.length
    return n
  }

  private backlog(w: Webhook): number {
    return this.queued(w) + w.waiting.size + w.inFlight
  }

  private idle(): boolean {
    return this.webhooks.every((w) => this.backlog(w) === 0)
  }

  private pump(w: Webhook): void {
    while (w.inFlight < this.concurrency && !this.shutdown.signal.aborted) {
      const delivery = next(w)
      if (!delivery) return
      w.inFlight++
      void this.deliver(w, delivery)
    }
  }

  private async deliver(w: Webhook, d: Delivery): Promise<void> {
    d.attempts++
    let outcome: { ok: true } | { ok: false; retry: boolean; reason: string; retryAfterMs?: number }
    try {
      outcome = await this.post(w, d)
    } catch (err) {
      // Thrown by fetch: refused, reset, DNS, or aborted by the timeout or by close().
      const e = err as Error & { cause?: { code?: string } }
      const reason =
        e.name === 'TimeoutError'
          ? `no response within ${w.timeoutMs} ms`
          : e.name === 'AbortError'
            ? 'aborted at shutdown'
            : (e.cause?.code ?? e.message)
      outcome = { ok: false, retry: true, reason }
    }
    w.inFlight--
    if (outcome.ok) {
      w.stats.sent++
    } else if (outcome.retry && d.attempts < this.retry.maxAttempts && !this.closing) {
      w.stats.retried++
      const delay = retryDelay(d.attempts, this.retry, this.random, outcome.retryAfterMs)
      const timer = setTimeout(() => {
        w.waiting.delete(d)
        w.ready[d.severity]?.push(d)
        this.pump(w)
      }, delay)
      // A pending retry alone does not keep the process alive; close() bounds the wait instead.
      timer.unref()
      w.waiting.set(d, timer)
      this.rateLimitedLog(
        w,
        'warn',
        {
          event: 'sluice.notify.retry',
          target: w.target,
          type: d.type,
          id: d.id,
          attempt: d.attempts,
          reason: outcome.reason,
          delayMs: delay,
        },
        `webhook ${w.target} failed (${outcome.reason}); retrying`,
      )
    } else {
      w.stats.failed++
      this.rateLimitedLog(
        w,
        'error',
        {
          event: 'sluice.notify.failed',
          target: w.target,
          type: d.type,
          id: d.id,
          attempts: d.attempts,
          reason: outcome.reason,
          failed: w.stats.failed,
        },
        `webhook ${w.target} gave up on ${d.type} ${d.id} after ${d.attempts} attempt(s): ${outcome.reason}`,
      )
    }
    this.pump(w)
    if (w.drops && !this.closing) this.reportDrops(w, this.now())
    if (this.idleWaiters.length > 0 && this.idle()) for (const resolve of this.idleWaiters.splice(0)) resolve()
  }

  private async post(
    w: Webhook,
    d: Delivery,
  ): Promise<{ ok: true } | { ok: false; retry: boolean; reason: string; retryAfterMs?: number }> {
    // Signed at each attempt, so that a retry carries a fresh timestamp and still passes a
    // receiver's replay window.
    const t = Math.floor(this.now() / 1000)
    const res = await this.fetch(w.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'sluice-webhook',
        'sluice-event': d.type,
        'sluice-id': d.id,
        'sluice-attempt': String(d.attempts),
        [SIGNATURE_HEADER]: webhookSignature(w.secret, d.body, t),
      },
      body: d.body,
      // A redirect would re-send a signed incident somewhere nobody configured.
      redirect: 'manual',
      signal: AbortSignal.any([AbortSignal.timeout(w.timeoutMs), this.shutdown.signal]),
    })
    // The answer's body is not needed; cancelling it frees the connection.
    await res.body?.cancel().catch(() => undefined)
    if (res.status >= 200 && res.status < 300) return { ok: true }
    const retry = res.status >= 500 || res.status === 408 || res.status === 429
    const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'))
    return { ok: false, retry, reason: `HTTP ${res.status}`, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) }
  }

  /** Once per 10 s per webhook (or for coalescing) and level at most, with the number of lines left out. */
  private rateLimitedLog(w: LogLimit, level: 'warn' | 'error', obj: Record<string, unknown>, msg: string): void {
    const now = this.now()
    if (w.lastLog[level] !== 0 && now - w.lastLog[level] < LOG_EVERY_MS) {
      w.unlogged[level]++
      return
    }
    w.lastLog[level] = now
    this.log?.[level]({ ...obj, ...(w.unlogged[level] > 0 ? { suppressed: w.unlogged[level] } : {}) }, msg)
    w.unlogged[level] = 0
  }
}

/** Lower is evicted first: severity, then, within it, incidents of a (route, type) that flooded. */
function rank(d: Delivery): number {
  return d.severity * 2 + (d.burst?.flooding ? 0 : 1)
}

/** The most severe delivery waiting, oldest first within its severity. */
function next(w: Webhook): Delivery | undefined {
  for (let level = w.ready.length - 1; level >= 0; level--) {
    const q = w.ready[level]
    if (q && q.length > 0) return q.shift()
  }
  return undefined
}

function countType(counts: Map<string, number>, type: string): void {
  const key = counts.has(type) || counts.size < DROPPED_TYPES ? type : 'other'
  counts.set(key, (counts.get(key) ?? 0) + 1)
}
