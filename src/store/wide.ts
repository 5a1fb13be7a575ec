// The windows of a client network or of a whole route: few keys, each touched by many
// accounts, with logs of thousands of records (a network's 2,000, a route's 20,000). The arena
// (arena.ts, windows.ts) is made for the opposite — many accounts with small logs, scanned
// whole per observation — and at 20,000 entries a scan per request would cost more than the
// proxy itself. So these keys keep each log in structures that make every step O(1) amortized:
//
//   records   a hash table of record -> last touch, and a queue of touches in time order
//             (stale ones skipped lazily, compacted when they outnumber the live ones)
//   windows   per limit, a cursor into that queue and the count of records touched after its
//             cutoff: as time moves on the cursor passes touches that left the window
//   requests  the newest `requestCapacity` request times, counted per window by binary search
//
// The decisions are the arena's exactly (the same property tests check both against the naive
// reference): a record re-read is free, the least recently touched is evicted past the
// capacity, a blocked observation counts no records.
//
// A record is its 64-bit seeded hash, as in the arena (windows.ts hashRecord), and both the
// table and the queue are typed arrays: a route's log of 200,000 records is then a few MB the
// garbage collector never walks. As JS Maps and arrays of the ids' strings it cost a request
// ~5 µs of collection alone (every new id a young string referenced from an old Map).
import { moreSevere, passed } from '../engine/evaluate.js'
import type { Limit, RoutePolicy } from '../engine/policy.js'
import { hashRecord } from '../engine/windows.js'

/** A wide log in a state file (src/store/state.ts). */
export interface WideState {
  newest: number
  requests: number[]
  /**
   * Records with their last touch, in touch order: [hash high, hash low, time]. A file written
   * before hashes has [id, time] (hashed on reading: the seed is restored first).
   */
  records: ([number, number, number] | [string, number])[]
}

/** One limit's window over the records: where its cutoff is in the queue, and how many records it holds. */
interface Cursor {
  limit: Limit
  at: number
  count: number
}

/** A free slot of the table (touch times are never negative). */
const FREE = -Infinity

/** A table of `slots` free slots (see WideLog's keys). */
function freeTable(slots: number): Uint32Array {
  return new Uint32Array(new Float64Array(2 * slots).fill(FREE).buffer)
}

export class WideLog {
  // Record → last touch: open addressing with linear probing over (hi, lo) keys, at most half
  // full; a free slot's time is FREE. A slot is 16 bytes of one buffer, [hi, lo] as words 4i and
  // 4i + 1 of `keys` and its time as double 2i + 1 of `times` (the same memory), so that a probe
  // of a table larger than the cache misses once, not once per array.
  private keys = freeTable(16)
  private times = new Float64Array(this.keys.buffer)
  private slots = 16
  private size = 0
  // Touches in time order; a touch is stale once its record was touched again (or dropped).
  private qhi = new Uint32Array(16)
  private qlo = new Uint32Array(16)
  private qt = new Float64Array(16)
  private qn = 0
  /** Where the least recently touched live record is: every touch before it is stale. */
  private lru = 0
  private cursors: Cursor[] = []
  private requests: number[] = []
  /** Newest time seen: the clock never runs backwards per key. */
  private newest = 0
  /** The records of the last decide() and their hashes (pending[0 .. 2n)): what commit() touches. */
  private pendingOf: readonly string[] | null = null
  private pending = new Uint32Array(2)
  private pendingN = 0
  policy: RoutePolicy

  constructor(policy: RoutePolicy, saved?: WideState) {
    this.policy = policy
    if (saved === undefined) {
      this.adopt(policy)
      return
    }
    // Restored from a state file before any config is at hand: cursors are built by the first
    // adopt() with the running policy (logOf does it on first use).
    this.restoreMore(saved)
  }

  /** More of a saved log (a state file splits a large one into sections, in order). */
  restoreMore(saved: WideState): void {
    const h = new Uint32Array(2)
    for (const entry of saved.records) {
      let t: number
      if (typeof entry[0] === 'string') {
        hashRecord(entry[0], h, 0)
        t = entry[1]
      } else {
        h[0] = entry[0]
        h[1] = entry[1]
        t = entry[2] as number
      }
      this.put(h[0] as number, h[1] as number, t)
      this.enqueue(h[0] as number, h[1] as number, t)
    }
    if (saved.requests.length > 0) this.requests = [...saved.requests]
    this.newest = Math.max(this.newest, saved.newest)
  }

  /** What a state file keeps: live touches only, least recently touched first. */
  save(): WideState {
    const records: [number, number, number][] = []
    for (let i = this.lru; i < this.qn; i++)
      if (this.live(i)) records.push([this.qhi[i] as number, this.qlo[i] as number, this.qt[i] as number])
    return { newest: this.newest, requests: [...this.requests], records }
  }

  /** Serve `policy` (a reload may change its limits): cursors are rebuilt from the queue, the history kept. */
  adopt(policy: RoutePolicy): void {
    this.policy = policy
    this.cursors = policy.distinctLimits.map((limit) => ({ limit, at: this.lru, count: this.size }))
    this.advance(this.newest)
    const cap = policy.distinctCapacity
    while (this.size > cap) this.evict()
    if (this.requests.length > policy.requestCapacity)
      this.requests.splice(0, this.requests.length - policy.requestCapacity)
  }

  get records(): number {
    return this.size
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
    const n = this.hashPending(records)
    const h = this.pending
    for (const c of this.cursors) {
      const cutoff = now - c.limit.windowMs
      let fresh = 0
      for (let k = 0; k < 2 * n; k += 2) {
        const slot = this.find(h[k] as number, h[k + 1] as number)
        if (slot < 0 || (this.times[2 * slot + 1] as number) <= cutoff) fresh++
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
    const n = records === this.pendingOf ? this.pendingN : this.hashPending(records)
    const h = this.pending
    const cap = this.policy.distinctCapacity
    for (let k = 0; k < 2 * n; k += 2) {
      const hi = h[k] as number
      const lo = h[k + 1] as number
      const slot = this.find(hi, lo)
      const t = slot < 0 ? undefined : (this.times[2 * slot + 1] as number)
      if (t === now) continue
      for (const c of this.cursors) if (t === undefined || t <= now - c.limit.windowMs) c.count++
      if (slot < 0) this.put(hi, lo, now)
      else this.times[2 * slot + 1] = now
      this.enqueue(hi, lo, now)
      if (this.size > cap) this.evict()
    }
  }

  /** Counts per limit at `now`, read-only (the admin views). */
  counts(now: number, counts: number[]): void {
    const at = Math.max(now, this.newest)
    for (const limit of this.policy.requestLimits) counts[limit.index] = this.requestsAfter(at - limit.windowMs)
    for (const c of this.cursors) {
      let n = c.count
      for (let i = c.at; i < this.qn && (this.qt[i] as number) <= at - c.limit.windowMs; i++) if (this.live(i)) n--
      counts[c.limit.index] = n
    }
  }

  /** Hash `records` (each distinct id once) into `pending`; returns how many. */
  private hashPending(records: readonly string[]): number {
    const unique = records.length > 1 ? [...new Set(records)] : records
    if (this.pending.length < 2 * unique.length) this.pending = new Uint32Array(2 * unique.length)
    for (let k = 0; k < unique.length; k++) hashRecord(unique[k] as string, this.pending, 2 * k)
    this.pendingOf = records
    this.pendingN = unique.length
    return unique.length
  }

  /** Move every cursor past the touches that left its window at `now`. */
  private advance(now: number): void {
    for (const c of this.cursors) {
      const cutoff = now - c.limit.windowMs
      while (c.at < this.qn && (this.qt[c.at] as number) <= cutoff) {
        if (this.live(c.at)) c.count--
        c.at++
      }
    }
    // What is outside the longest window is outside every window: drop it.
    const cutoff = now - this.policy.longestDistinctWindowMs
    while (this.lru < this.qn && (this.qt[this.lru] as number) <= cutoff) {
      if (this.live(this.lru)) this.remove(this.find(this.qhi[this.lru] as number, this.qlo[this.lru] as number))
      this.lru++
    }
    if (this.lru > 1024 && this.lru > this.qn / 2) this.compact()
  }

  /** Drop the least recently touched record. */
  private evict(): void {
    while (!this.live(this.lru)) this.lru++
    this.remove(this.find(this.qhi[this.lru] as number, this.qlo[this.lru] as number))
    // Touches from a cursor on are inside its window.
    for (const c of this.cursors) if (this.lru >= c.at) c.count--
    this.lru++
  }

  /** The touch at i is its record's latest (and the record is still held). */
  private live(i: number): boolean {
    const slot = this.find(this.qhi[i] as number, this.qlo[i] as number)
    return slot >= 0 && this.times[2 * slot + 1] === this.qt[i]
  }

  /**
   * Keep the live touches only, in place (every touch before `lru` is stale or gone). With few
   * left the arrays shrink (a log that emptied gives its memory back).
   */
  private compact(): void {
    let n = 0
    const moved = this.cursors.map(() => -1)
    const { qhi, qlo, qt } = this
    for (let i = this.lru; i < this.qn; i++) {
      for (let k = 0; k < moved.length; k++) if (moved[k] === -1 && i >= (this.cursors[k] as Cursor).at) moved[k] = n
      if (!this.live(i)) continue
      qhi[n] = qhi[i] as number
      qlo[n] = qlo[i] as number
      qt[n] = qt[i] as number
      n++
    }
    this.cursors.forEach((c, k) => (c.at = moved[k] === -1 ? n : (moved[k] as number)))
    this.qn = n
    this.lru = 0
    if (qt.length > 1024 && n < qt.length / 8) this.resizeQueue(qt.length / 4)
  }

  private resizeQueue(size: number): void {
    const n = this.qn
    const copy = <A extends Uint32Array | Float64Array>(a: A, b: A): A => (b.set(a.subarray(0, n)), b)
    this.qhi = copy(this.qhi, new Uint32Array(size))
    this.qlo = copy(this.qlo, new Uint32Array(size))
    this.qt = copy(this.qt, new Float64Array(size))
  }

  private enqueue(hi: number, lo: number, t: number): void {
    // A full queue is compacted when that frees at least half of it (each touch then pays for
    // at most two liveness probes), else it doubles: it stays within about four times the
    // records held. (Compacting at a fixed count of stale touches instead reallocated the
    // queue, and doubled it just before, on every round.)
    if (this.qn === this.qt.length) {
      if (this.qn - this.size >= this.qt.length / 2) this.compact()
      else this.resizeQueue(2 * this.qt.length)
    }
    this.qhi[this.qn] = hi
    this.qlo[this.qn] = lo
    this.qt[this.qn] = t
    this.qn++
  }

  // ─── the table ─────────────────────────────────────────────────────────────────────────

  /** The slot holding (hi, lo), or -1. */
  private find(hi: number, lo: number): number {
    const mask = this.slots - 1
    const keys = this.keys
    const times = this.times
    for (let i = lo & mask; ; i = (i + 1) & mask) {
      if (times[2 * i + 1] === FREE) return -1
      if (keys[4 * i + 1] === lo && keys[4 * i] === hi) return i
    }
  }

  /** Hold (hi, lo), last touched at t. */
  private put(hi: number, lo: number, t: number): void {
    if (2 * (this.size + 1) > this.slots) this.rehash(2 * this.slots)
    const mask = this.slots - 1
    const keys = this.keys
    const times = this.times
    let i = lo & mask
    while (times[2 * i + 1] !== FREE) {
      if (keys[4 * i + 1] === lo && keys[4 * i] === hi) {
        times[2 * i + 1] = t
        return
      }
      i = (i + 1) & mask
    }
    keys[4 * i] = hi
    keys[4 * i + 1] = lo
    times[2 * i + 1] = t
    this.size++
  }

  /** Free a slot, moving later entries of its probe run back (no tombstones). */
  private remove(slot: number): void {
    if (slot < 0) return
    const mask = this.slots - 1
    const keys = this.keys
    const times = this.times
    let free = slot
    for (let i = (slot + 1) & mask; times[2 * i + 1] !== FREE; i = (i + 1) & mask) {
      const home = (keys[4 * i + 1] as number) & mask
      // The entry at i may move to `free` unless its home lies cyclically in (free, i].
      if (free <= i ? home > free && home <= i : home > free || home <= i) continue
      keys[4 * free] = keys[4 * i] as number
      keys[4 * free + 1] = keys[4 * i + 1] as number
      times[2 * free + 1] = times[2 * i + 1] as number
      free = i
    }
    times[2 * free + 1] = FREE
    this.size--
  }

  private rehash(slots: number): void {
    const { keys, times } = this
    const old = this.slots
    this.keys = freeTable(slots)
    this.times = new Float64Array(this.keys.buffer)
    this.slots = slots
    this.size = 0
    for (let i = 0; i < old; i++) {
      const t = times[2 * i + 1] as number
      if (t !== FREE) this.put(keys[4 * i] as number, keys[4 * i + 1] as number, t)
    }
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
