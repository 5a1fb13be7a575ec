// Webhooks for incidents (disable, challenge, throttle, unlock, …). `notify` only queues: the
// request that caused the incident never waits for a receiver. Each webhook has its own bounded
// queue and its own few deliveries in flight, so a slow or dead receiver delays only itself.
import { randomUUID } from 'node:crypto'
import { SluiceError } from '../errors.js'
import { DEFAULT_RETRY, parseRetryAfter, retryDelay, type RetryPolicy } from './backoff.js'
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
  /** Events waiting per webhook (queued, in flight, or waiting to retry). Default 1000. When full, new events are refused. */
  queueLimit?: number
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
  /** `disable`, `challenge`, `throttle`, `unlock`, `reset`, `reload`, … */
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
  backlog: number
}

export interface NotifierStats {
  sent: number
  failed: number
  retried: number
  dropped: number
  backlog: number
  webhooks: WebhookStats[]
}

interface Delivery {
  id: string
  type: string
  body: string
  attempts: number
}

interface Webhook {
  url: string
  target: string
  secret: string | Buffer
  events: ReadonlySet<string>
  timeoutMs: number
  ready: Delivery[]
  waiting: Map<Delivery, NodeJS.Timeout>
  inFlight: number
  stats: WebhookStats
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
  /** Aborts what is in flight when close() runs out of time. */
  private readonly shutdown = new AbortController()
  private closing = false
  private idleWaiters: (() => void)[] = []

  constructor(options: NotifierOptions) {
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
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new SluiceError('SLUICE_ERR_NOTIFY_URL', `notify.webhooks[${i}].url must be http(s), not ${url.protocol}`)
      if (w.secret.length === 0) throw new SluiceError('SLUICE_ERR_NOTIFY_SECRET', `notify.webhooks[${i}].secret is empty: receivers could not tell sluice's requests from anyone's`)
      return {
        url: w.url,
        target: url.origin,
        secret: w.secret,
        events: new Set(w.events),
        timeoutMs: w.timeoutMs ?? 5000,
        ready: [],
        waiting: new Map(),
        inFlight: 0,
        stats: { target: url.origin, events: [...w.events], sent: 0, failed: 0, retried: 0, dropped: 0, backlog: 0 },
        lastLog: { warn: 0, error: 0 },
        unlogged: { warn: 0, error: 0 },
      }
    })
  }

  /**
   * Queues the event for every webhook subscribed to its type and returns its id at once.
   * A webhook whose queue is full refuses it (newest dropped: what is queued keeps its order and
   * its retries); refusals are counted in `dropped` and logged.
   */
  notify(event: IncidentEvent): string {
    const { type, id = randomUUID(), time = new Date(this.now()).toISOString(), ...fields } = event
    let body: string
    try {
      body = JSON.stringify({ id, type, time, ...fields })
    } catch (err) {
      this.log?.error({ event: 'sluice.notify.invalid', type, id, err: (err as Error).message }, 'incident could not be serialised; not sent')
      return id
    }
    for (const w of this.webhooks) {
      if (!w.events.has(type) && !w.events.has('*')) continue
      if (this.closing || this.backlog(w) >= this.queueLimit) {
        w.stats.dropped++
        this.rateLimitedLog(w, 'error', { event: 'sluice.notify.dropped', target: w.target, type, id, dropped: w.stats.dropped, backlog: this.backlog(w) }, this.closing ? 'webhook event after close: dropped' : `webhook queue full (${this.queueLimit}) for ${w.target}: new events dropped, ${w.stats.dropped} so far`)
        continue
      }
      w.ready.push({ id, type, body, attempts: 0 })
      this.pump(w)
    }
    return id
  }

  stats(): NotifierStats {
    const total: NotifierStats = { sent: 0, failed: 0, retried: 0, dropped: 0, backlog: 0, webhooks: [] }
    for (const w of this.webhooks) {
      const s = { ...w.stats, backlog: this.backlog(w) }
      total.sent += s.sent
      total.failed += s.failed
      total.retried += s.retried
      total.dropped += s.dropped
      total.backlog += s.backlog
      total.webhooks.push(s)
    }
    return total
  }

  /**
   * Stops accepting events and gives each queued one a last chance: deliveries waiting for a
   * retry are attempted now, without backoff, and nothing failing from here on is retried.
   * After `timeoutMs`, what is in flight is aborted; everything not delivered is counted failed.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<{ undelivered: number }> {
    this.closing = true
    for (const w of this.webhooks) {
      for (const [delivery, timer] of w.waiting) {
        clearTimeout(timer)
        w.ready.push(delivery)
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
      undelivered += w.ready.length + w.inFlight
      w.stats.failed += w.ready.length
      w.ready = []
    }
    // In-flight deliveries count themselves failed when their fetch rejects.
    this.shutdown.abort()
    if (undelivered > 0) this.log?.error({ event: 'sluice.notify.undelivered', undelivered }, `${undelivered} webhook deliveries abandoned at shutdown`)
    return { undelivered }
  }

  private backlog(w: Webhook): number {
    return w.ready.length + w.waiting.size + w.inFlight
  }

  private idle(): boolean {
    return this.webhooks.every((w) => this.backlog(w) === 0)
  }

  private pump(w: Webhook): void {
    while (w.inFlight < this.concurrency && w.ready.length > 0 && !this.shutdown.signal.aborted) {
      const delivery = w.ready.shift() as Delivery
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
      const reason = e.name === 'TimeoutError' ? `no response within ${w.timeoutMs} ms` : e.name === 'AbortError' ? 'aborted at shutdown' : (e.cause?.code ?? e.message)
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
        w.ready.push(d)
        this.pump(w)
      }, delay)
      // A pending retry alone does not keep the process alive; close() bounds the wait instead.
      timer.unref()
      w.waiting.set(d, timer)
      this.rateLimitedLog(w, 'warn', { event: 'sluice.notify.retry', target: w.target, type: d.type, id: d.id, attempt: d.attempts, reason: outcome.reason, delayMs: delay }, `webhook ${w.target} failed (${outcome.reason}); retrying`)
    } else {
      w.stats.failed++
      this.rateLimitedLog(w, 'error', { event: 'sluice.notify.failed', target: w.target, type: d.type, id: d.id, attempts: d.attempts, reason: outcome.reason, failed: w.stats.failed }, `webhook ${w.target} gave up on ${d.type} ${d.id} after ${d.attempts} attempt(s): ${outcome.reason}`)
    }
    this.pump(w)
    if (this.idleWaiters.length > 0 && this.idle()) for (const resolve of this.idleWaiters.splice(0)) resolve()
  }

  private async post(w: Webhook, d: Delivery): Promise<{ ok: true } | { ok: false; retry: boolean; reason: string; retryAfterMs?: number }> {
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

  /** Once per 10 s per webhook and level at most, with the number of lines left out. */
  private rateLimitedLog(w: Webhook, level: 'warn' | 'error', obj: Record<string, unknown>, msg: string): void {
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
