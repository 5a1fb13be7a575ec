// Exact sliding windows with bounded memory.
//
// A window of length W at time `now` covers the times t with now - W < t <= now: an event
// exactly one window old has dropped out. Each structure keeps only as much history as the
// largest limit can ever need (limit + 1 entries), so its memory is bounded no matter how
// hard an account pushes; counts above that cap are reported as the cap, which is already
// past every limit.

/** Timestamps of the most recent requests, in arrival order (a ring buffer). */
export class RequestLog {
  private times: Float64Array
  private start = 0
  private size = 0

  constructor(private readonly capacity: number) {
    // Grow on demand: most accounts never come near the limit.
    this.times = new Float64Array(Math.min(capacity, 8))
  }

  add(now: number): void {
    if (this.size === this.times.length && this.size < this.capacity) this.grow()
    const len = this.times.length
    if (this.size < len) {
      this.times[(this.start + this.size) % len] = now
      this.size++
    } else {
      this.times[this.start] = now
      this.start = (this.start + 1) % len
    }
  }

  /** Requests after `cutoff` (i.e. inside the window now - W). */
  countAfter(cutoff: number): number {
    const len = this.times.length
    let n = 0
    // Newest first: stop at the first one outside the window.
    for (let i = this.size - 1; i >= 0; i--) {
      if ((this.times[(this.start + i) % len] as number) <= cutoff) break
      n++
    }
    return n
  }

  /** The newest timestamp, or -Infinity. */
  latest(): number {
    if (this.size === 0) return -Infinity
    return this.times[(this.start + this.size - 1) % this.times.length] as number
  }

  get length(): number {
    return this.size
  }

  private grow(): void {
    const next = new Float64Array(Math.min(this.capacity, this.times.length * 2))
    for (let i = 0; i < this.size; i++) next[i] = this.times[(this.start + i) % this.times.length] as number
    this.times = next
    this.start = 0
  }
}

/**
 * Distinct records with the time each was last touched, oldest first.
 * A Map keeps insertion order, so deleting and re-inserting on every touch keeps it sorted by
 * last touch: pruning and eviction only ever look at the front.
 */
export class DistinctLog {
  private readonly seen = new Map<string, number>()

  constructor(private readonly capacity: number) {}

  /** Last time `record` was touched, or undefined. */
  lastSeen(record: string): number | undefined {
    return this.seen.get(record)
  }

  touch(record: string, now: number): void {
    this.seen.delete(record)
    this.seen.set(record, now)
    if (this.seen.size > this.capacity) {
      // Evicting the least recently touched record keeps every blocking decision exact: a
      // blocking limit never lets its window hold more than `max` records, so the set only
      // overflows through `log` limits, already past their max; there a re-read of the evicted
      // record may be logged again as new. That is the whole cost of bounded memory.
      const oldest = this.seen.keys().next()
      if (!oldest.done) this.seen.delete(oldest.value)
    }
  }

  /** Drop records last touched at or before `cutoff` (outside the longest window). */
  prune(cutoff: number): void {
    for (const [record, at] of this.seen) {
      if (at > cutoff) break
      this.seen.delete(record)
    }
  }

  /** Distinct records touched after each cutoff; cutoffs must be sorted ascending. */
  countAfter(cutoffs: readonly number[], out: number[]): void {
    const total = this.seen.size
    let k = 0
    let older = 0
    for (const at of this.seen.values()) {
      while (k < cutoffs.length && at > (cutoffs[k] as number)) out[k++] = total - older
      if (k === cutoffs.length) return
      older++
    }
    while (k < cutoffs.length) out[k++] = total - older
  }

  get size(): number {
    return this.seen.size
  }

  records(): IterableIterator<[string, number]> {
    return this.seen.entries()
  }
}
