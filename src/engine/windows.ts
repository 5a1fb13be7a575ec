// Exact sliding windows with bounded, compact memory.
//
// A window of length W at time `now` covers the times t with now - W < t <= now: an event
// exactly one window old has dropped out. Each log keeps only as much history as the largest
// limit can ever need (limit + 1 entries), so its memory is bounded no matter how hard an
// account pushes; counts above that cap are reported as the cap, which is already past every
// limit.
//
// Memory matters: a busy portal has 100,000 active accounts × several routes. One route's
// windows of one account are a *section*: a run of 32-bit words inside the account's block,
// which the memory store keeps in an arena (src/store/arena.ts, src/store/memory.ts):
//
//   header      5 words: key (route and capacities), allocated lengths, counts (below)
//   requests    REQ_LEN words: request times, a ring buffer in arrival order (4 bytes each)
//   distinct    D_LEN × 3 words: [hash high, hash low, last seen] per record, unordered (12 bytes)
//
// Times are whole milliseconds since the block's base time (uint32: 49.7 days; the store
// rebases a block before an offset would overflow, see MAX_WINDOW_MS). Both logs grow on
// demand, doubling up to their capacity: most accounts never come near a limit, and one that
// touched a route once holds a few slots, not the full window.
import { randomBytes } from 'node:crypto'
import type { Limit, RoutePolicy } from './policy.js'

// Section header fields (word offsets from the section's start). A section's capacities are
// those of the policy it serves, which the caller passes in; its key says which (route and
// capacities, interned by the store), so that a section is found by route and reused by any
// policy of the same shape.
const KEY = 0
const REQ_LEN = 1 // request slots allocated
const REQ_POS = 2 // requests held; once the ring has wrapped (held = REQ_LEN = capacity): REQ_LEN + its start
const D_LEN = 3 // record entries allocated
const D_N = 4 // records held
export const SECTION_HEADER = 5
const ENTRY = 3

/** The two logs, for growing one of them. */
export const REQUESTS = 0
export const RECORDS = 1
export type Log = typeof REQUESTS | typeof RECORDS

/** Slots a log starts with: enough for most accounts' light use. */
const FIRST_REQUESTS = 4
const FIRST_RECORDS = 2

/** The capacities a policy needs; 0 for a kind of limit it does not have. */
export const requestCapacityOf = (p: RoutePolicy): number => (p.requestLimits.length > 0 ? p.requestCapacity : 0)
export const distinctCapacityOf = (p: RoutePolicy): number => (p.distinctLimits.length > 0 ? p.distinctCapacity : 0)

export function sectionKey(mem: Uint32Array, s: number): number {
  return mem[s + KEY] as number
}

export function sectionWords(mem: Uint32Array, s: number): number {
  return SECTION_HEADER + (mem[s + REQ_LEN] as number) + ENTRY * (mem[s + D_LEN] as number)
}

/**
 * Whether the words at `s` hold a well-formed section ending at or before `end` with a key
 * below `keys`: a state file's block is checked before the store trusts it (a section that
 * lied about its lengths would read and write its neighbours' words).
 */
export function sectionFits(mem: Uint32Array, s: number, end: number, keys: number): boolean {
  if (s + SECTION_HEADER > end) return false
  const reqLen = mem[s + REQ_LEN] as number
  const pos = mem[s + REQ_POS] as number
  return (
    (mem[s + KEY] as number) < keys &&
    s + sectionWords(mem, s) <= end &&
    (pos <= reqLen || pos < 2 * reqLen) &&
    (mem[s + D_N] as number) <= (mem[s + D_LEN] as number)
  )
}

export function newSectionWords(policy: RoutePolicy): number {
  return (
    SECTION_HEADER +
    Math.min(requestCapacityOf(policy), FIRST_REQUESTS) +
    ENTRY * Math.min(distinctCapacityOf(policy), FIRST_RECORDS)
  )
}

/** Writes an empty section of newSectionWords(policy) words at `s`. */
export function initSection(mem: Uint32Array, s: number, key: number, policy: RoutePolicy): void {
  mem[s + KEY] = key
  mem[s + REQ_LEN] = Math.min(requestCapacityOf(policy), FIRST_REQUESTS)
  mem[s + REQ_POS] = 0
  mem[s + D_LEN] = Math.min(distinctCapacityOf(policy), FIRST_RECORDS)
  mem[s + D_N] = 0
}

// ─── growing ──────────────────────────────────────────────────────────────────────────────

/** Where a log's allocation ends (from the section's start): the words to add go there. */
export function logEnd(mem: Uint32Array, s: number, log: Log): number {
  return log === REQUESTS ? SECTION_HEADER + (mem[s + REQ_LEN] as number) : sectionWords(mem, s)
}

/** Entries to add to a log of capacity `cap` that must take `n` more: doubling, never past its capacity. */
export function growth(mem: Uint32Array, s: number, log: Log, cap: number, n: number): number {
  const length = mem[s + (log === REQUESTS ? REQ_LEN : D_LEN)] as number
  const held = log === REQUESTS ? requestsHeld(mem, s) : (mem[s + D_N] as number)
  return Math.min(cap, Math.max(2 * length, held + n)) - length
}

/** Record that `entries` entries were added at logEnd (the caller moved what followed). */
export function grew(mem: Uint32Array, s: number, log: Log, entries: number): void {
  const len = log === REQUESTS ? REQ_LEN : D_LEN
  mem[s + len] = (mem[s + len] as number) + entries
}

export const wordsPerEntry = (log: Log): number => (log === REQUESTS ? 1 : ENTRY)

// ─── requests ─────────────────────────────────────────────────────────────────────────────

function requestsHeld(mem: Uint32Array, s: number): number {
  return Math.min(mem[s + REQ_POS] as number, mem[s + REQ_LEN] as number)
}

/** The oldest request's slot: 0 until the ring wraps. */
function ringStart(mem: Uint32Array, s: number): number {
  return Math.max(0, (mem[s + REQ_POS] as number) - (mem[s + REQ_LEN] as number))
}

/** Adding a request to a log of capacity `cap` needs a larger allocation first. */
export function requestsFull(mem: Uint32Array, s: number, cap: number): boolean {
  const pos = mem[s + REQ_POS] as number
  return pos === mem[s + REQ_LEN] && pos < cap
}

export function addRequest(mem: Uint32Array, s: number, cap: number, now: number): void {
  const times = s + SECTION_HEADER
  const n = requestsHeld(mem, s)
  if (n < cap) {
    // Not yet full: the ring has not wrapped, so appending keeps the order.
    mem[times + n] = now
    mem[s + REQ_POS] = n + 1
    return
  }
  const start = ringStart(mem, s)
  mem[times + start] = now
  mem[s + REQ_POS] = start + 1 === cap ? cap : cap + start + 1
}

/**
 * Requests after `cutoff` (i.e. inside the window now - W). Times only ever arrive in order
 * (an account's clock never runs backwards), so the ring is sorted: a binary search.
 */
function requestsAfter(mem: Uint32Array, s: number, cutoff: number): number {
  const times = s + SECTION_HEADER
  const n = requestsHeld(mem, s)
  const start = ringStart(mem, s)
  // First position, oldest first, whose time is after the cutoff.
  let lo = 0
  let hi = n
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    const p = start + mid < n ? start + mid : start + mid - n
    if ((mem[times + p] as number) > cutoff) hi = mid
    else lo = mid + 1
  }
  return n - lo
}

// ─── distinct records ─────────────────────────────────────────────────────────────────────
//
// A record is its 64-bit seeded hash (two 32-bit words) and the time it was last touched: 12
// bytes instead of a string and a Map entry. By chance, two of 1,000 ids collide with
// probability ~3e-14. The hash is not a cryptographic PRF, but its seed is random per process
// and never leaves it, and no hash value is ever shown, so collisions cannot be searched for
// offline. Entries are unordered; every operation is one pass over at most `capacity` entries
// (per record for findRecord; per request for findRecords and touchRecords).

/** Entry `i`'s first word. */
const entryAt = (mem: Uint32Array, s: number, i: number): number =>
  s + SECTION_HEADER + (mem[s + REQ_LEN] as number) + ENTRY * i

/** Records held. */
export function recordsHeld(mem: Uint32Array, s: number): number {
  return mem[s + D_N] as number
}

/** Index of the record with hash (hi, lo), or -1. */
export function findRecord(mem: Uint32Array, s: number, hi: number, lo: number): number {
  const e = entryAt(mem, s, 0)
  const end = e + ENTRY * (mem[s + D_N] as number)
  for (let r = e; r < end; r += ENTRY) if (mem[r] === hi && mem[r + 1] === lo) return (r - e) / ENTRY
  return -1
}

export function lastSeen(mem: Uint32Array, s: number, i: number): number {
  return mem[entryAt(mem, s, i) + 2] as number
}

/**
 * Adding `fresh` new records to a log of capacity `cap` needs a larger allocation first (past the
 * capacity they evict).
 */
export function recordsNeedRoom(mem: Uint32Array, s: number, cap: number, fresh: number): boolean {
  return Math.min((mem[s + D_N] as number) + fresh, cap) > (mem[s + D_LEN] as number)
}

/**
 * For a request's records, hashed into `hashes` (two words each) and indexed by `index` (open addressing from the
 * low word: a record's number + 1, 0 empty; `mask` its size - 1): where each is held, into `at` (-1: not held). One
 * pass over the log, one probe per entry.
 */
export function findRecords(
  mem: Uint32Array,
  s: number,
  hashes: Uint32Array,
  index: Int32Array,
  mask: number,
  at: Int32Array,
): void {
  const e = entryAt(mem, s, 0)
  const n = mem[s + D_N] as number
  for (let i = 0; i < n; i++) {
    const hi = mem[e + ENTRY * i] as number
    const lo = mem[e + ENTRY * i + 1] as number
    for (let slot = lo & mask; index[slot] !== 0; slot = (slot + 1) & mask) {
      const k = (index[slot] as number) - 1
      if (hashes[2 * k] === hi && hashes[2 * k + 1] === lo) {
        at[k] = i
        break
      }
    }
  }
}

// Scratch for touchRecords, as large as the largest log that evicted (a log is bounded by its capacity): which
// entries the request re-reads, and the entries to replace (a heap while they are chosen).
let mine = new Uint8Array(64)
let heap = new Int32Array(64)

/**
 * Touch a request's `count` distinct records (their hashes, and where each is held: -1 if new) in a log of capacity
 * `cap` with room allocated for min(held + new, cap): re-reads move to now, new records are appended, and past the
 * capacity they replace the least recently touched records (ties: the first by position), all chosen in one pass.
 * The request's own records are never replaced; when it brings more new records than fit beside its re-reads, the
 * first in request order are kept.
 *
 * Evicting the least recently touched keeps every blocking decision exact: a blocking limit never lets its window
 * hold more than `max` records, so the set only overflows through `log` limits, already past their max (or limits a
 * pass lets through); there a re-read of an evicted record may be logged again as new. That is the whole cost of
 * bounded memory.
 */
export function touchRecords(
  mem: Uint32Array,
  s: number,
  cap: number,
  hashes: Uint32Array,
  at: Int32Array,
  count: number,
  now: number,
): void {
  const e = entryAt(mem, s, 0)
  const n = mem[s + D_N] as number
  let found = 0
  for (let k = 0; k < count; k++) {
    const i = at[k] as number
    if (i < 0) continue
    mem[e + ENTRY * i + 2] = now
    found++
  }
  const appended = Math.min(count - found, cap - n)
  const victims = Math.max(0, Math.min(count - found - appended, n - found))
  if (victims > 0) {
    // Into heap[0, victims): the others when all of them go, else the least recently touched.
    if (mine.length < n) {
      mine = new Uint8Array(2 * n)
      heap = new Int32Array(2 * n)
    }
    for (let k = 0; k < count; k++) if ((at[k] as number) >= 0) mine[at[k] as number] = 1
    if (victims === n - found) {
      for (let i = 0, j = 0; i < n; i++) if (mine[i] === 0) heap[j++] = i
    } else {
      leastRecent(mem, e, n, victims)
    }
    for (let k = 0; k < count; k++) if ((at[k] as number) >= 0) mine[at[k] as number] = 0
  }
  // New records in request order: appended while there is room, then into the victims' slots.
  for (let k = 0, w = 0; w < appended + victims; k++) {
    if ((at[k] as number) >= 0) continue
    const r = e + ENTRY * (w < appended ? n + w : (heap[w - appended] as number))
    mem[r] = hashes[2 * k] as number
    mem[r + 1] = hashes[2 * k + 1] as number
    mem[r + 2] = now
    w++
  }
  mem[s + D_N] = n + appended
}

/**
 * The `k` least recently touched of the `n` entries from `e` that the request does not re-read (ties: the first by
 * position), into heap[0, k): one pass keeping a max-heap of the least so far. O(n) when few entries go, as most are
 * turned away by one comparison with the heap's top; O(n log k) at worst.
 */
function leastRecent(mem: Uint32Array, e: number, n: number, k: number): void {
  let size = 0
  for (let i = 0; i < n; i++) {
    if (mine[i] !== 0) continue
    if (size < k) {
      // Sift up.
      let c = size++
      while (c > 0) {
        const p = (c - 1) >> 1
        if (!later(mem, e, i, heap[p] as number)) break
        heap[c] = heap[p] as number
        c = p
      }
      heap[c] = i
    } else if ((mem[e + ENTRY * i + 2] as number) < (mem[e + ENTRY * (heap[0] as number) + 2] as number)) {
      // Replaces the top (a later position never wins a tie): sift down.
      let c = 0
      for (;;) {
        let child = 2 * c + 1
        if (child >= k) break
        if (child + 1 < k && later(mem, e, heap[child + 1] as number, heap[child] as number)) child++
        if (!later(mem, e, heap[child] as number, i)) break
        heap[c] = heap[child] as number
        c = child
      }
      heap[c] = i
    }
  }
}

/** Entry a was touched after entry b, or at the same time but sits after it. */
function later(mem: Uint32Array, e: number, a: number, b: number): boolean {
  const ta = mem[e + ENTRY * a + 2] as number
  const tb = mem[e + ENTRY * b + 2] as number
  return ta > tb || (ta === tb && a > b)
}

// ─── counting ─────────────────────────────────────────────────────────────────────────────

let cutoffs = new Float64Array(8)

/**
 * Per limit of the policy (counts[limit.index]): the requests, or the distinct records held,
 * inside its window at `now`. Distinct counts are not clamped (evaluate adds the request's
 * fresh records first). Read-only, for the admin views, unless `prune`: then the records
 * outside the longest window are dropped in the same pass (evaluate), keeping the others in
 * their order.
 */
export function countWindows(
  mem: Uint32Array,
  s: number,
  policy: RoutePolicy,
  now: number,
  counts: number[],
  prune: boolean,
): void {
  for (const limit of policy.requestLimits) counts[limit.index] = requestsAfter(mem, s, now - limit.windowMs)
  const limits = policy.distinctLimits
  const k = limits.length
  if (k === 0) return
  if (cutoffs.length < k) cutoffs = new Float64Array(2 * k)
  for (let i = 0; i < k; i++) {
    cutoffs[i] = now - (limits[i] as Limit).windowMs
    counts[(limits[i] as Limit).index] = 0
  }
  // Limits are sorted longest window first, so their cutoffs ascend: the first is the prune
  // cutoff, and once a record is not after one cutoff it is not after any later one.
  const drop = prune ? (cutoffs[0] as number) : -1
  // The first two limits (most routes have one or two) are tallied in locals, not in counts:
  // a store per record per limit was most of a replay's window cost.
  const c0 = cutoffs[0] as number
  const c1 = k > 1 ? (cutoffs[1] as number) : Infinity
  let n0 = 0
  let n1 = 0
  const e = entryAt(mem, s, 0)
  const end = e + ENTRY * (mem[s + D_N] as number)
  let w = e
  for (let r = e; r < end; r += ENTRY) {
    const at = mem[r + 2] as number
    if (at <= drop) continue
    if (at > c0) {
      n0++
      if (at > c1) {
        n1++
        for (let i = 2; i < k; i++) {
          if (at <= (cutoffs[i] as number)) break
          const index = (limits[i] as Limit).index
          counts[index] = (counts[index] as number) + 1
        }
      }
    }
    if (w !== r) {
      mem[w] = mem[r] as number
      mem[w + 1] = mem[r + 1] as number
      mem[w + 2] = at
    }
    w += ENTRY
  }
  counts[(limits[0] as Limit).index] = n0
  if (k > 1) counts[(limits[1] as Limit).index] = n1
  if (w !== end) mem[s + D_N] = (w - e) / ENTRY
}

// ─── reload and clock ─────────────────────────────────────────────────────────────────────

/** Words the section at `s` takes once carried over to `policy`'s capacities. */
export function carriedWords(mem: Uint32Array, s: number, policy: RoutePolicy): number {
  const req = carriedLength(requestsHeld(mem, s), requestCapacityOf(policy), FIRST_REQUESTS)
  const rec = carriedLength(mem[s + D_N] as number, distinctCapacityOf(policy), FIRST_RECORDS)
  return SECTION_HEADER + req + ENTRY * rec
}

function carriedLength(held: number, cap: number, first: number): number {
  return Math.max(Math.min(held, cap), Math.min(cap, first))
}

/**
 * The section at `s` (in `mem`) rewritten, under `key`, for a changed policy of the same route
 * (a reload), into `out` at `o` (another buffer: the caller moves it into place). The history
 * carries over, so raising or lowering a limit never hands an account a fresh budget: the
 * newest requests and the most recently touched records are kept. Redis does the same by
 * trimming to the new capacity on the next hit.
 */
export function carrySection(
  mem: Uint32Array,
  s: number,
  key: number,
  policy: RoutePolicy,
  out: Uint32Array,
  o: number,
): void {
  const reqCap = requestCapacityOf(policy)
  const dCap = distinctCapacityOf(policy)
  out[o + KEY] = key

  const n = requestsHeld(mem, s)
  const start = ringStart(mem, s)
  const keep = Math.min(n, reqCap)
  const reqLen = carriedLength(n, reqCap, FIRST_REQUESTS)
  for (let i = 0; i < keep; i++)
    out[o + SECTION_HEADER + i] = mem[s + SECTION_HEADER + ((start + n - keep + i) % n)] as number
  out[o + REQ_LEN] = reqLen
  out[o + REQ_POS] = keep

  // Most recently touched last, ties in their current order (a stable sort), as they were kept.
  const held = mem[s + D_N] as number
  const order = Array.from({ length: held }, (_, i) => i).sort((a, b) => lastSeen(mem, s, a) - lastSeen(mem, s, b))
  const kept = order.slice(Math.max(0, held - dCap))
  const from = entryAt(mem, s, 0)
  const to = o + SECTION_HEADER + reqLen
  kept.forEach((i, k) => out.set(mem.subarray(from + ENTRY * i, from + ENTRY * i + ENTRY), to + ENTRY * k))
  out[o + D_LEN] = carriedLength(held, dCap, FIRST_RECORDS)
  out[o + D_N] = kept.length
}

/**
 * Move the section's times `shift` ms earlier in its block's frame (the block's base moved
 * forward by `shift`). Times before the new base are clamped to it: the store only rebases to
 * `now - MAX_WINDOW_MS`, so they are outside every window, now and later, either way.
 */
export function rebaseSection(mem: Uint32Array, s: number, shift: number): void {
  const times = s + SECTION_HEADER
  for (let p = times; p < times + requestsHeld(mem, s); p++) mem[p] = Math.max(0, (mem[p] as number) - shift)
  const e = entryAt(mem, s, 0)
  for (let r = e + 2; r < e + ENTRY * (mem[s + D_N] as number); r += ENTRY)
    mem[r] = Math.max(0, (mem[r] as number) - shift)
}

// ─── record hashing ───────────────────────────────────────────────────────────────────────
// Two independent 32-bit multiply-xorshift lanes over the UTF-16 code units, each seeded from
// a per-process random key: a 64-bit hash as two words.
const seed = randomBytes(8)
let SEED_A = seed.readUInt32LE(0)
let SEED_B = seed.readUInt32LE(4)

/** The seed of record hashes, for the memory store's state file (src/store/state.ts). */
export function recordSeed(): [number, number] {
  return [SEED_A, SEED_B]
}

/**
 * Hash records with a seed kept in a state file: the restored windows' hashes are only found
 * again under the seed that made them. Before anything is counted (it changes every hash).
 */
export function useRecordSeed(a: number, b: number): void {
  SEED_A = a >>> 0
  SEED_B = b >>> 0
}

/** Writes the hash of `id` into out[i] (high word) and out[i + 1] (low word). */
export function hashRecord(id: string, out: Uint32Array, i: number): void {
  let a = SEED_A ^ id.length
  let b = SEED_B ^ Math.imul(id.length, 0x9e3779b1)
  for (let k = 0; k < id.length; k++) {
    const c = id.charCodeAt(k)
    a = Math.imul(a ^ c, 0x85ebca6b)
    a ^= a >>> 13
    b = Math.imul(b ^ c, 0xc2b2ae35)
    b ^= b >>> 16
  }
  a = Math.imul(a ^ (a >>> 16), 0x7feb352d)
  a ^= a >>> 15
  b = Math.imul(b ^ (b >>> 15), 0x846ca68b)
  b ^= b >>> 16
  out[i] = a
  out[i + 1] = b
}
