// Folding a flood of incidents into summaries, so that one attacker's thousand identities cannot
// fill the webhook queues with a thousand alerts (docs/audit.md, "Coalescing").
//
// Per (route, type, shadow) and per interval: the first `individually` incidents go out as they
// are; the rest are counted into one summary incident sent when the interval ends. The state is
// bounded: at most `maxKeys` (route, type, shadow) entries, each with at most `sample` accounts.
import { randomUUID } from 'node:crypto'

export interface CoalesceOptions {
  /** Length of the interval, from the first incident of a (route, type). Default 10 000 ms. */
  intervalMs?: number
  /** Incidents of one (route, type) sent on their own per interval before coalescing starts. Default 5. */
  individually?: number
  /** Distinct accounts a summary names (the first ones seen). Default 20. */
  sample?: number
  /** (route, type, shadow) entries tracked at once. Default 1000. */
  maxKeys?: number
}

export const DEFAULT_COALESCE: Required<CoalesceOptions> = {
  intervalMs: 10_000,
  individually: 5,
  sample: 20,
  maxKeys: 1000,
}

/**
 * What a delivery of an individual incident keeps of its (route, type): whether that (route,
 * type) went on to flood in the same interval. A full queue evicts flood members first.
 */
export interface Burst {
  flooding: boolean
}

interface Bucket extends Burst {
  start: number
  seen: number
  type: string
  route: string | undefined
  shadow: boolean | undefined
  summary: Summary | undefined
}

interface Summary {
  id: string
  count: number
  accounts: Set<string>
  accountsTruncated: boolean
  firstTime: string
  lastTime: string
}

/**
 * `fold: false`: send the incident on its own. `fold: true`: it was counted into summary `id`;
 * `started` on the first incident folded into it, `due` when that summary is to be emitted.
 */
export type Offer = { fold: false; burst: Burst } | { fold: true; id: string; started: boolean; due: number }

/** The incident fields the coalescer reads. */
export interface Foldable {
  type: string
  route?: unknown
  account?: unknown
  shadow?: unknown
  time?: unknown
}

export class Coalescer {
  readonly options: Required<CoalesceOptions>
  /** Incidents folded into summaries, and summaries emitted, since start. */
  folded = 0
  summaries = 0
  private readonly buckets = new Map<string, Bucket>()
  private lastSweep = -Infinity

  /** `emit` receives each summary incident, when its interval ends or at flush(). */
  constructor(
    options: CoalesceOptions | undefined,
    private readonly emit: (summary: Record<string, unknown> & { type: string; id: string }) => void,
  ) {
    const o = { ...DEFAULT_COALESCE, ...options }
    this.options = {
      intervalMs: Math.max(1, o.intervalMs),
      individually: Math.max(1, Math.floor(o.individually)),
      sample: Math.max(0, Math.floor(o.sample)),
      maxKeys: Math.max(1, Math.floor(o.maxKeys)),
    }
  }

  /**
   * Whether the incident goes out on its own (and which burst it belongs to) or was folded (and
   * into which summary id).
   */
  offer(event: Foldable, now: number): Offer {
    const route = typeof event.route === 'string' ? event.route : undefined
    const shadow = typeof event.shadow === 'boolean' ? event.shadow : undefined
    const key = `${event.type}\0${shadow === true ? 1 : 0}\0${route ?? ''}`
    let bucket = this.buckets.get(key)
    if (bucket && now - bucket.start >= this.options.intervalMs) {
      this.close(key, bucket, now)
      bucket = undefined
    }
    if (!bucket) {
      let k = key
      if (this.buckets.size >= this.options.maxKeys) {
        this.sweep(now)
        // Still full (more routes than maxKeys, all active): one shared entry per type.
        if (this.buckets.size >= this.options.maxKeys) k = `${event.type}\0${shadow === true ? 1 : 0}\0\0overflow`
      }
      bucket = this.buckets.get(k)
      if (!bucket) {
        bucket = {
          flooding: false,
          start: now,
          seen: 0,
          type: event.type,
          route: k === key ? route : undefined,
          shadow,
          summary: undefined,
        }
        this.buckets.set(k, bucket)
      }
    }
    bucket.seen++
    if (bucket.seen <= this.options.individually) return { fold: false, burst: bucket }
    bucket.flooding = true
    const time = typeof event.time === 'string' ? event.time : new Date(now).toISOString()
    let s = bucket.summary
    const started = !s
    if (!s)
      s = bucket.summary = {
        id: randomUUID(),
        count: 0,
        accounts: new Set(),
        accountsTruncated: false,
        firstTime: time,
        lastTime: time,
      }
    s.count++
    s.lastTime = time
    this.folded++
    if (typeof event.account === 'string' && !s.accounts.has(event.account)) {
      if (s.accounts.size < this.options.sample) s.accounts.add(event.account)
      else s.accountsTruncated = true
    }
    return { fold: true, id: s.id, started, due: bucket.start + this.options.intervalMs }
  }

  /** Emits the summaries whose interval has ended; returns when the next one is due (Infinity: none pending). */
  flushDue(now: number): number {
    let next = Infinity
    for (const [key, bucket] of this.buckets) {
      const due = bucket.start + this.options.intervalMs
      if (now >= due) this.close(key, bucket, now)
      else if (bucket.summary) next = Math.min(next, due)
    }
    return next
  }

  /** Emits every pending summary at once (shutdown). */
  flushAll(now: number): void {
    for (const [key, bucket] of this.buckets) this.close(key, bucket, now)
  }

  /** When the next summary is due (Infinity: none pending). */
  nextDue(): number {
    let next = Infinity
    for (const bucket of this.buckets.values())
      if (bucket.summary) next = Math.min(next, bucket.start + this.options.intervalMs)
    return next
  }

  private sweep(now: number): void {
    // At most ten sweeps per interval: a full map must not cost a scan on every incident.
    if (now - this.lastSweep < this.options.intervalMs / 10) return
    this.lastSweep = now
    for (const [key, bucket] of this.buckets)
      if (now - bucket.start >= this.options.intervalMs) this.close(key, bucket, now)
  }

  private close(key: string, bucket: Bucket, now: number): void {
    this.buckets.delete(key)
    const s = bucket.summary
    if (!s) return
    // Deliveries of the burst's first incidents keep the bucket (for `flooding`), not its summary.
    bucket.summary = undefined
    this.summaries++
    this.emit({
      type: bucket.type,
      id: s.id,
      time: new Date(now).toISOString(),
      coalesced: true,
      ...(bucket.route !== undefined ? { route: bucket.route } : {}),
      ...(bucket.shadow !== undefined ? { shadow: bucket.shadow } : {}),
      count: s.count,
      individually: this.options.individually,
      accounts: [...s.accounts],
      accountsTruncated: s.accountsTruncated,
      firstTime: s.firstTime,
      lastTime: s.lastTime,
      intervalMs: this.options.intervalMs,
    })
  }
}
