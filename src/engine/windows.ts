// Exact sliding windows with bounded, compact memory.
//
// A window of length W at time `now` covers the times t with now - W < t <= now: an event
// exactly one window old has dropped out. Each structure keeps only as much history as the
// largest limit can ever need (limit + 1 entries), so its memory is bounded no matter how
// hard an account pushes; counts above that cap are reported as the cap, which is already
// past every limit.
//
// Memory matters: a busy portal has 100,000 active accounts × several routes. Both structures
// use plain number arrays (unboxed doubles on the V8 heap: 8 bytes an entry, no per-array
// malloc as small typed arrays would cost) that grow on demand, since most accounts never come
// near a limit.
import { randomBytes } from 'node:crypto'

/**
 * Arrays grow to at most their capacity, doubling from a few slots, and are allocated at their
 * exact size (`new Array(n)`): V8's own growth (`push`) leaves up to 80% slack, which for
 * 100,000 accounts × several routes of full windows is a third of the heap.
 */
function grown(a: number[], used: number, max: number): number[] {
  const next = new Array<number>(Math.min(max, Math.max(8, a.length * 2)))
  for (let i = 0; i < used; i++) next[i] = a[i] as number
  return next
}

const NONE: number[] = []

/** Timestamps of the most recent requests, in arrival order (a ring buffer). */
export class RequestLog {
  private times: number[] = NONE
  private count = 0
  private start = 0

  constructor(private readonly capacity: number) {}

  add(now: number): void {
    if (this.count < this.capacity) {
      // Not yet full: the ring has not wrapped, so start is 0 and appending keeps the order.
      if (this.count === this.times.length) this.times = grown(this.times, this.count, this.capacity)
      this.times[this.count++] = now
      return
    }
    this.times[this.start] = now
    this.start = (this.start + 1) % this.capacity
  }

  /** Requests after `cutoff` (i.e. inside the window now - W). */
  countAfter(cutoff: number): number {
    const t = this.times
    const len = this.count
    let n = 0
    // Newest first: stop at the first one outside the window.
    for (let i = len - 1; i >= 0; i--) {
      if ((t[(this.start + i) % len] as number) <= cutoff) break
      n++
    }
    return n
  }

  get length(): number {
    return this.count
  }

  /** The same history in a log of another capacity (a reload changed the limits): the newest are kept. */
  resized(capacity: number): RequestLog {
    const log = new RequestLog(capacity)
    const len = this.count
    for (let i = Math.max(0, len - capacity); i < len; i++) log.add(this.times[(this.start + i) % len] as number)
    return log
  }
}

/**
 * Distinct records with the time each was last touched, as a 52-bit seeded hash of the record
 * id: 16 bytes a record instead of a string and a Map entry (~70 bytes). By chance, two of
 * 1,000 ids collide with probability ~1e-10. The hash is not a cryptographic PRF, but its seed
 * is random per process and never leaves it, and no hash value is ever shown, so collisions
 * cannot be searched for offline. Entries are unordered; every operation is one pass over at
 * most `capacity` numbers.
 */
export class DistinctLog {
  /** [hash, lastSeen, hash, lastSeen, …]; the first 2 × `n` slots are used. */
  private entries: number[] = NONE
  private n = 0
  /** Lower bound of the oldest lastSeen: pruning is skipped while nothing can be old enough. */
  private oldest = Infinity

  constructor(private readonly capacity: number) {}

  /** Last time `record` was touched, or undefined. */
  lastSeen(record: string): number | undefined {
    const i = this.indexOf(recordHash(record))
    return i < 0 ? undefined : (this.entries[i + 1] as number)
  }

  touch(record: string, now: number): void {
    const h = recordHash(record)
    const e = this.entries
    const i = this.indexOf(h)
    if (i >= 0) {
      e[i + 1] = now
      return
    }
    if (this.n >= this.capacity) {
      // Evicting the least recently touched record keeps every blocking decision exact: a
      // blocking limit never lets its window hold more than `max` records, so the set only
      // overflows through `log` limits, already past their max; there a re-read of the evicted
      // record may be logged again as new. That is the whole cost of bounded memory.
      const j = this.indexOfOldest()
      e[j] = h
      e[j + 1] = now
      this.oldest = -Infinity // unknown now; the next prune recomputes it
      return
    }
    this.append(h, now)
    if (now < this.oldest) this.oldest = now
  }

  /** Drop records last touched at or before `cutoff` (outside the longest window). */
  prune(cutoff: number): void {
    if (this.oldest > cutoff) return
    const e = this.entries
    let w = 0
    let oldest = Infinity
    for (let r = 0; r < 2 * this.n; r += 2) {
      const at = e[r + 1] as number
      if (at <= cutoff) continue
      if (at < oldest) oldest = at
      e[w] = e[r] as number
      e[w + 1] = at
      w += 2
    }
    this.n = w / 2
    this.oldest = oldest
  }

  /** Distinct records touched after each cutoff. */
  countAfter(cutoffs: readonly number[], out: number[]): void {
    for (let k = 0; k < cutoffs.length; k++) out[k] = 0
    const e = this.entries
    for (let r = 1; r < 2 * this.n; r += 2) {
      const at = e[r] as number
      for (let k = 0; k < cutoffs.length; k++) if (at > (cutoffs[k] as number)) (out[k] as number)++
    }
  }

  get size(): number {
    return this.n
  }

  /** The same records in a log of another capacity (a reload changed the limits): the most recently touched are kept. */
  resized(capacity: number): DistinctLog {
    const log = new DistinctLog(capacity)
    const pairs: [number, number][] = []
    for (let r = 0; r < 2 * this.n; r += 2) pairs.push([this.entries[r] as number, this.entries[r + 1] as number])
    pairs.sort((a, b) => a[1] - b[1])
    for (const [h, at] of pairs.slice(Math.max(0, pairs.length - capacity))) {
      log.append(h, at)
      if (at < log.oldest) log.oldest = at
    }
    return log
  }

  private append(h: number, at: number): void {
    if (2 * this.n === this.entries.length) this.entries = grown(this.entries, 2 * this.n, 2 * this.capacity)
    this.entries[2 * this.n] = h
    this.entries[2 * this.n + 1] = at
    this.n++
  }

  private indexOf(h: number): number {
    const e = this.entries
    for (let r = 0; r < 2 * this.n; r += 2) if (e[r] === h) return r
    return -1
  }

  private indexOfOldest(): number {
    const e = this.entries
    let j = 0
    for (let r = 2; r < 2 * this.n; r += 2) if ((e[r + 1] as number) < (e[j + 1] as number)) j = r
    return j
  }
}

// ─── record hashing ───────────────────────────────────────────────────────────────────────
// Two independent 32-bit multiply-xorshift lanes over the UTF-16 code units, each seeded from
// a per-process random key, combined into a 52-bit integer (exact in a double).
const seed = randomBytes(8)
const SEED_A = seed.readUInt32LE(0)
const SEED_B = seed.readUInt32LE(4)

export function recordHash(id: string): number {
  let a = SEED_A ^ id.length
  let b = SEED_B ^ Math.imul(id.length, 0x9e3779b1)
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i)
    a = Math.imul(a ^ c, 0x85ebca6b)
    a ^= a >>> 13
    b = Math.imul(b ^ c, 0xc2b2ae35)
    b ^= b >>> 16
  }
  a = Math.imul(a ^ (a >>> 16), 0x7feb352d)
  a ^= a >>> 15
  b = Math.imul(b ^ (b >>> 15), 0x846ca68b)
  b ^= b >>> 16
  return (a >>> 0) * 0x100000 + ((b >>> 0) & 0xfffff)
}
