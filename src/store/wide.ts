// The windows of a client network or of a whole route: few keys, each touched by many
// accounts, with logs of thousands of records (a network's 2,000, a route's 20,000). The arena
// (arena.ts, windows.ts) is made for the opposite — many accounts with small logs, scanned
// whole per observation — and at 20,000 entries a scan per request would cost more than the
// proxy itself. So these keys keep each log in structures that make every step O(1) amortized:
//
//   records   a Map of record id -> last touch, and a queue of touches in time order (stale
//             ones skipped lazily, compacted when they outnumber the live ones)
//   windows   per limit, a cursor into that queue and the count of records touched after its
//             cutoff: as time moves on the cursor passes touches that left the window
//   requests  the newest `requestCapacity` request times, counted per window by binary search
//
// The decisions are the arena's exactly (the same property tests check both against the naive
// reference): a record re-read is free, the least recently touched is evicted past the
// capacity, a blocked observation counts no records.
import { moreSevere, passed } from '../engine/evaluate.js'
import type { Limit, RoutePolicy } from '../engine/policy.js'

/** A wide log in a state file (src/store/state.ts). */
export interface WideState {
  newest: number
  requests: number[]
  /** Record, last touch; in touch order. */
  records: [string, number][]
}

/** One limit's window over the records: where its cutoff is in the queue, and how many records it holds. */
interface Cursor {
  limit: Limit
  at: number
  count: number
}

export class WideLog {
  /** Record -> the time it was last touched. */
  private readonly last = new Map<string, number>()
  /** Touches in time order; a touch is stale once its record was touched again (or dropped). */
  private ids: string[] = []
  private times: number[] = []
  /** Where the least recently touched live record is: every touch before it is stale. */
  private lru = 0
  private cursors: Cursor[] = []
  private requests: number[] = []
  /** Newest time seen: the clock never runs backwards per key. */
  private newest = 0
  policy: RoutePolicy

  constructor(policy: RoutePolicy, saved?: WideState) {
    this.policy = policy
    if (saved === undefined) {
      this.adopt(policy)
      return
    }
    // Restored from a state file before any config is at hand: cursors are built by the first
    // adopt() with the running policy (logOf does it on first use).
    this.newest = saved.newest
    this.requests = [...saved.requests]
    for (const [id, t] of saved.records) {
      this.last.set(id, t)
      this.ids.push(id)
      this.times.push(t)
    }
  }

  /** More of a saved log (a state file splits a large one into sections, in order). */
  restoreMore(saved: WideState): void {
    for (const [id, t] of saved.records) {
      this.last.set(id, t)
      this.ids.push(id)
      this.times.push(t)
    }
    if (saved.requests.length > 0) this.requests = [...saved.requests]
    this.newest = Math.max(this.newest, saved.newest)
  }

  /** What a state file keeps: live touches only, least recently touched first. */
  save(): WideState {
    const records: [string, number][] = []
    for (let i = this.lru; i < this.ids.length; i++)
      if (this.live(i)) records.push([this.ids[i] as string, this.times[i] as number])
    return { newest: this.newest, requests: [...this.requests], records }
  }

  /** Serve `policy` (a reload may change its limits): cursors are rebuilt from the queue, the history kept. */
  adopt(policy: RoutePolicy): void {
    this.policy = policy
    this.cursors = policy.distinctLimits.map((limit) => ({ limit, at: this.lru, count: this.last.size }))
    this.advance(this.newest)
    const cap = policy.distinctCapacity
    while (this.last.size > cap) this.evict()
    if (this.requests.length > policy.requestCapacity)
      this.requests.splice(0, this.requests.length - policy.requestCapacity)
  }

  get records(): number {
    return this.last.size
  }

  /** The newest time this key counted: idle past its longest window, it holds nothing. */
  get lastTouch(): number {
    return this.newest
  }

  /**
   * Count the request (unless countRequest is false) and each limit's window with `records`
   * added, into counts[limit.index]; returns the most severe crossed limit. Counts no record:
   * commit() does, once every part of the observation has decided.
   */
  decide(
    records: readonly string[],
    wall: number,
    countRequest: boolean,
    passes: readonly number[] | undefined,
    counts: number[],
    worst: Limit | null,
  ): Limit | null {
    const now = Math.max(wall, this.newest)
    this.newest = now
    const p = this.policy
    if (countRequest && p.requestLimits.length > 0) {
      this.requests.push(now)
      if (this.requests.length > p.requestCapacity) this.requests.splice(0, this.requests.length - p.requestCapacity)
    }
    for (const limit of p.requestLimits) {
      const n = this.requestsAfter(now - limit.windowMs)
      counts[limit.index] = n
      if (countRequest && n > limit.max && !passed(limit, passes) && moreSevere(limit, worst)) worst = limit
    }
    if (this.cursors.length === 0) return worst
    this.advance(now)
    const unique = records.length > 1 ? [...new Set(records)] : records
    for (const c of this.cursors) {
      const cutoff = now - c.limit.windowMs
      let fresh = 0
      for (const r of unique) {
        const t = this.last.get(r)
        if (t === undefined || t <= cutoff) fresh++
      }
      const count = c.count + fresh
      counts[c.limit.index] = Math.min(count, p.distinctCapacity)
      if (fresh > 0 && count > c.limit.max && !passed(c.limit, passes) && moreSevere(c.limit, worst)) worst = c.limit
    }
    return worst
  }

  /** Touch `records` at the time of the last decide(): re-reads move to now, new ones added, evicting at capacity. */
  commit(records: readonly string[]): void {
    const now = this.newest
    if (this.cursors.length === 0 || records.length === 0) return
    const cap = this.policy.distinctCapacity
    for (const r of records.length > 1 ? new Set(records) : records) {
      const t = this.last.get(r)
      if (t === now) continue
      for (const c of this.cursors) if (t === undefined || t <= now - c.limit.windowMs) c.count++
      this.last.set(r, now)
      this.ids.push(r)
      this.times.push(now)
      if (this.last.size > cap) this.evict()
    }
    if (this.ids.length - this.lru > 2 * this.last.size + 64) this.compact()
  }

  /** Counts per limit at `now`, read-only (the admin views). */
  counts(now: number, counts: number[]): void {
    const at = Math.max(now, this.newest)
    for (const limit of this.policy.requestLimits) counts[limit.index] = this.requestsAfter(at - limit.windowMs)
    for (const c of this.cursors) {
      let n = c.count
      for (let i = c.at; i < this.ids.length && (this.times[i] as number) <= at - c.limit.windowMs; i++)
        if (this.live(i)) n--
      counts[c.limit.index] = n
    }
  }

  /** Move every cursor past the touches that left its window at `now`. */
  private advance(now: number): void {
    for (const c of this.cursors) {
      const cutoff = now - c.limit.windowMs
      while (c.at < this.ids.length && (this.times[c.at] as number) <= cutoff) {
        if (this.live(c.at)) c.count--
        c.at++
      }
    }
    // What is outside the longest window is outside every window: drop it.
    const cutoff = now - this.policy.longestDistinctWindowMs
    while (this.lru < this.ids.length && (this.times[this.lru] as number) <= cutoff) {
      if (this.live(this.lru)) this.last.delete(this.ids[this.lru] as string)
      this.lru++
    }
    if (this.lru > 1024 && this.lru > this.ids.length / 2) this.compact()
  }

  /** Drop the least recently touched record. */
  private evict(): void {
    while (!this.live(this.lru)) this.lru++
    this.last.delete(this.ids[this.lru] as string)
    // Touches from a cursor on are inside its window.
    for (const c of this.cursors) if (this.lru >= c.at) c.count--
    this.lru++
  }

  /** The touch at i is its record's latest (and the record is still held). */
  private live(i: number): boolean {
    return this.last.get(this.ids[i] as string) === this.times[i]
  }

  /** Rebuild the queue from the live touches only (amortized: it at least halves the queue). */
  private compact(): void {
    const ids: string[] = []
    const times: number[] = []
    const moved = this.cursors.map(() => -1)
    for (let i = this.lru; i < this.ids.length; i++) {
      this.cursors.forEach((c, k) => {
        if (moved[k] === -1 && i >= c.at) moved[k] = ids.length
      })
      if (!this.live(i)) continue
      ids.push(this.ids[i] as string)
      times.push(this.times[i] as number)
    }
    this.cursors.forEach((c, k) => (c.at = moved[k] === -1 ? ids.length : (moved[k] as number)))
    this.ids = ids
    this.times = times
    this.lru = 0
  }

  private requestsAfter(cutoff: number): number {
    const t = this.requests
    let lo = 0
    let hi = t.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((t[mid] as number) > cutoff) hi = mid
      else lo = mid + 1
    }
    return t.length - lo
  }
}
