// One observation against one (account, route) state: the pure heart of sluice. The memory
// store runs it directly; the Redis store runs the same steps in Lua, atomically.
import {
  addRequest,
  countWindows,
  findRecord,
  findRecords,
  growth,
  hashRecord,
  lastSeen,
  RECORDS,
  recordsHeld,
  recordsNeedRoom,
  REQUESTS,
  requestsFull,
  touchRecords,
  type Log,
} from './windows.js'
import type { ActionName, Limit, RoutePolicy } from './policy.js'

/**
 * One route's windows as evaluate sees them: a section (windows.ts) at word `at` of `mem`, in
 * its block's time frame, and a way to make it larger.
 */
export interface Section {
  mem: Uint32Array
  at: number
  /** Allocate `entries` more entries to one log (see growth()). The section may move: re-read mem and at. */
  grow(log: Log, entries: number): void
}

export interface Evaluation {
  /** The most severe crossed limit, or null. */
  limit: Limit | null
  action: ActionName | null
  /** A crossed limit blocks (throttle and above): records were not counted. */
  blocked: boolean
  /** Per limit (policy.limits order): requests or distinct records in its window, this request included. */
  counts: number[]
  /** Records of this request new to the longest distinct window: what a would-be block in shadow serves uncounted. */
  fresh: number
}

/**
 * Slots of the hash table of a request's records: at least twice as many (short probe runs), and
 * sparse for small requests, so that probing it with each of a long log's entries mostly meets an
 * empty slot at once (a well-predicted branch).
 */
const tableSlots = (ids: number): number => 2 ** Math.ceil(Math.log2(Math.max(2 * ids, MIN_SLOTS)))
const MIN_SLOTS = 1024

// Scratch for the request's records, reused across calls: their hashes (two words each), where
// each is held in the log (-1: not held), and their hash table. Only the first of repeated ids is kept.
const FIRST_IDS = 8
let hashes = new Uint32Array(2 * FIRST_IDS)
let held = new Int32Array(FIRST_IDS)
let index = new Int32Array(tableSlots(FIRST_IDS))
/** Scratch kept after a call, in ids (1.3 MB): a rare huge request (1,000,000 ids: 20 MB) must not pin its buffers. */
const RETAINED_IDS = 1 << 16
/**
 * The records whose lookup the scratch holds after an evaluate with `defer` (null: none, or it
 * was used), and how many distinct ones: what commit() may reuse. Kept until commit (a deferred
 * evaluate does not shrink the scratch).
 */
let lookedUp: readonly string[] | null = null
let lookedUpUnique = 0

/**
 * A request of up to `few` ids, or of up to `ids` ids whose count × records held is at most
 * `work`, is deduplicated and looked up with plain loops, a scan of the log per id: most
 * requests (a page of ids against a small log, a few ids against any). Past that, through a hash
 * table of the request and one pass over the log. Exported for tests, which lower them.
 */
export const scanLimits = { few: 4, ids: 32, work: 1024 }

/** `n` zeros, pushed: `new Array(n).fill(0)` makes a holey array, ~0.1 µs dearer per observation. */
export function zeros(n: number): number[] {
  const a: number[] = []
  for (let i = 0; i < n; i++) a.push(0)
  return a
}

/**
 * Count the request, decide, and count its records only if nothing blocks it: a blocked
 * request served no data, so it must not spend the account's record budget (ARCHITECTURE.md).
 * `now` is in the section's time frame and must not run backwards per section; callers clamp
 * it (see MemoryStore).
 */
export function evaluate(
  w: Section,
  policy: RoutePolicy,
  records: readonly string[],
  now: number,
  step: EvaluateStep = REQUEST,
  counts: number[] = zeros(policy.slots),
): Evaluation {
  let worst: Limit | null = null
  const passes = step.passes
  lookedUp = null

  if (policy.requestLimits.length > 0 && step.countRequest) {
    // The response step reads the request counts for the logs; the request decided them.
    const cap = policy.requestCapacity
    if (requestsFull(w.mem, w.at, cap)) w.grow(REQUESTS, growth(w.mem, w.at, REQUESTS, cap, 1))
    addRequest(w.mem, w.at, cap, now)
  }
  // Records outside the longest window are dropped as they are counted.
  countWindows(w.mem, w.at, policy, now, counts, true)

  if (step.countRequest) {
    for (const limit of policy.requestLimits) {
      if ((counts[limit.index] as number) > limit.max && !passed(limit, passes) && moreSevere(limit, worst))
        worst = limit
    }
  }

  const limits = policy.distinctLimits
  let unique = 0
  let freshest = 0
  if (limits.length > 0) {
    unique = lookUpRecords(w, records)
    lookedUp = step.defer ? records : null
    lookedUpUnique = unique
    for (let i = 0; i < limits.length; i++) {
      const limit = limits[i] as Limit
      const cutoff = now - limit.windowMs
      // Records this request touches that are new to this limit's window (a re-read is free).
      let fresh = 0
      for (let k = 0; k < unique; k++) {
        const at = held[k] as number
        if (at < 0 || lastSeen(w.mem, w.at, at) <= cutoff) fresh++
      }
      if (i === 0) freshest = fresh // the longest window
      const count = (counts[limit.index] as number) + fresh
      counts[limit.index] = Math.min(count, policy.distinctCapacity)
      if (fresh > 0 && count > limit.max && !passed(limit, passes) && moreSevere(limit, worst)) worst = limit
    }
  }

  const blocked = worst !== null && worst.severity > 0
  if (unique > 0 && !blocked && !step.defer) touchAll(w, policy.distinctCapacity, unique, now)
  if (held.length > RETAINED_IDS && lookedUp === null) grow(FIRST_IDS)
  return { limit: worst, action: worst?.action ?? null, blocked, counts, fresh: freshest }
}

/**
 * Count the records of an observation evaluated with `defer` (several sets of windows decide
 * together: none is touched until all have decided). Looks them up again, as the scratch may
 * since have served other parts — unless `unchanged`: the caller vouches that this section was
 * the last evaluated (with these records) and that nothing has evaluated, committed or changed
 * its windows since; the scratch then still holds the lookup (checked: the same records array).
 */
export function commit(
  w: Section,
  policy: RoutePolicy,
  records: readonly string[],
  now: number,
  unchanged = false,
): void {
  const reuse = unchanged && lookedUp === records
  lookedUp = null
  if (policy.distinctLimits.length === 0 || records.length === 0) return
  const unique = reuse ? lookedUpUnique : lookUpRecords(w, records)
  touchAll(w, policy.distinctCapacity, unique, now)
  if (held.length > RETAINED_IDS) grow(FIRST_IDS)
}

/**
 * Look `records` up in the section's windows, into the scratch (through a hash index when
 * scanning the records held would cost more): how many distinct ones.
 */
function lookUpRecords(w: Section, records: readonly string[]): number {
  const ids = records.length
  if (held.length < ids) grow(ids)
  const indexed = ids > scanLimits.few && (ids > scanLimits.ids || ids * recordsHeld(w.mem, w.at) > scanLimits.work)
  return indexed ? lookUpIndexed(w.mem, w.at, records) : lookUp(w.mem, w.at, records)
}

/** Scratch for `ids` ids, in powers of two. */
function grow(ids: number): void {
  lookedUp = null
  const size = 2 ** Math.ceil(Math.log2(ids))
  hashes = new Uint32Array(2 * size)
  held = new Int32Array(size)
  index = new Int32Array(tableSlots(size))
}

/** Hash the request's records into the scratch, dropping repeats, and find each in the log; returns how many. */
function lookUp(mem: Uint32Array, s: number, records: readonly string[]): number {
  let unique = 0
  for (let r = 0; r < records.length; r++) {
    hashRecord(records[r] as string, hashes, 2 * unique)
    const hi = hashes[2 * unique] as number
    const lo = hashes[2 * unique + 1] as number
    // The same id twice in one request is one record (as is, by a ~2^-64 chance, another id with its hash).
    let repeat = false
    for (let k = 0; k < unique && !repeat; k++) repeat = hashes[2 * k] === hi && hashes[2 * k + 1] === lo
    if (repeat) continue
    held[unique++] = findRecord(mem, s, hi, lo)
  }
  return unique
}

/** lookUp in O(ids + records held): repeats dropped through a hash table of the request, which the log is probed in. */
function lookUpIndexed(mem: Uint32Array, s: number, records: readonly string[]): number {
  // All hashes first, then the probes (the unique ones kept in place): a loop of probes alone lets
  // the CPU overlap their cache misses, 3-4× faster at a million ids than hashing between them.
  for (let r = 0; r < records.length; r++) hashRecord(records[r] as string, hashes, 2 * r)
  const mask = tableSlots(records.length) - 1
  index.fill(0, 0, mask + 1)
  let unique = 0
  for (let r = 0; r < records.length; r++) {
    const hi = hashes[2 * r] as number
    const lo = hashes[2 * r + 1] as number
    let slot = lo & mask
    while (index[slot] !== 0) {
      const k = (index[slot] as number) - 1
      if (hashes[2 * k] === hi && hashes[2 * k + 1] === lo) break
      slot = (slot + 1) & mask
    }
    if (index[slot] !== 0) continue
    index[slot] = unique + 1
    hashes[2 * unique] = hi
    hashes[2 * unique + 1] = lo
    held[unique++] = -1
  }
  findRecords(mem, s, hashes, index, mask, held)
  return unique
}

/** Touch the request's records: re-reads move to now, new ones are added (evicting at capacity). */
function touchAll(w: Section, cap: number, unique: number, now: number): void {
  let fresh = 0
  for (let k = 0; k < unique; k++) if ((held[k] as number) < 0) fresh++
  // Room for every new record up to the capacity, before writing any (growing may move the section).
  if (fresh > 0 && recordsNeedRoom(w.mem, w.at, cap, fresh)) w.grow(RECORDS, growth(w.mem, w.at, RECORDS, cap, fresh))
  touchRecords(w.mem, w.at, cap, hashes, held, unique, now)
}

/**
 * Which part of an exchange is being counted. A route whose records come from the response
 * is observed twice: the request (counted, request limits decided, no records yet), then the
 * response's records (the request is not counted again).
 */
export interface EvaluateStep {
  countRequest: boolean
  /** Indices of challenge limits this request holds a valid pass for: they do not act. */
  passes?: readonly number[] | undefined
  /** Decide only: the records are counted by commit() once every part has decided. */
  defer?: boolean
}

export const REQUEST: EvaluateStep = { countRequest: true }

export function passed(limit: Limit, passes: readonly number[] | undefined): boolean {
  return passes !== undefined && limit.action === 'challenge' && passes.includes(limit.index)
}

/** The ladder; between equally severe limits the one written first in the config decides. */
export function moreSevere(limit: Limit, than: Limit | null): boolean {
  return (
    than === null || limit.severity > than.severity || (limit.severity === than.severity && limit.index < than.index)
  )
}
