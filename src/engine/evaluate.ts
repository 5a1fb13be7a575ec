// One observation against one (account, route) state: the pure heart of sluice. The memory
// store runs it directly; the Redis store runs the same steps in Lua, atomically.
import {
  addRequest,
  countWindows,
  findRecord,
  growth,
  hashRecord,
  lastSeen,
  RECORDS,
  recordsNeedRoom,
  REQUESTS,
  requestsFull,
  touchRecord,
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
}

// Scratch for the request's records, reused across calls: their hashes (two words each) and
// where each is held in the log (-1: not held). Only the first of repeated ids is kept.
let hashes = new Uint32Array(16)
let held = new Int32Array(8)

/**
 * Count the request, decide, and count its records only if nothing blocks it: a blocked
 * request served no data, so it must not spend the account's record budget (ARCHITECTURE.md).
 * `now` is in the section's time frame and must not run backwards per section; callers clamp
 * it (see MemoryStore).
 */
export function evaluate(w: Section, policy: RoutePolicy, records: readonly string[], now: number, step: EvaluateStep = REQUEST): Evaluation {
  const counts = new Array<number>(policy.limits.length).fill(0)
  let worst: Limit | null = null
  const passes = step.passes

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
      if ((counts[limit.index] as number) > limit.max && !passed(limit, passes) && moreSevere(limit, worst)) worst = limit
    }
  }

  const limits = policy.distinctLimits
  let unique = 0
  if (limits.length > 0) {
    unique = lookUp(w.mem, w.at, records)
    for (let i = 0; i < limits.length; i++) {
      const limit = limits[i] as Limit
      const cutoff = now - limit.windowMs
      // Records this request touches that are new to this limit's window (a re-read is free).
      let fresh = 0
      for (let k = 0; k < unique; k++) {
        const at = held[k] as number
        if (at < 0 || lastSeen(w.mem, w.at, at) <= cutoff) fresh++
      }
      const count = (counts[limit.index] as number) + fresh
      counts[limit.index] = Math.min(count, policy.distinctCapacity)
      if (fresh > 0 && count > limit.max && !passed(limit, passes) && moreSevere(limit, worst)) worst = limit
    }
  }

  const blocked = worst !== null && worst.severity > 0
  if (unique > 0 && !blocked) touchAll(w, policy.distinctCapacity, unique, now)
  return { limit: worst, action: worst?.action ?? null, blocked, counts }
}

/** Hash the request's records into the scratch, dropping repeats, and find each in the log; returns how many. */
function lookUp(mem: Uint32Array, s: number, records: readonly string[]): number {
  if (held.length < records.length) {
    held = new Int32Array(2 * records.length)
    hashes = new Uint32Array(4 * records.length)
  }
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

/** Touch the request's records in order: re-reads move to now, new ones are added (evicting at capacity). */
function touchAll(w: Section, cap: number, unique: number, now: number): void {
  let fresh = 0
  for (let k = 0; k < unique; k++) if ((held[k] as number) < 0) fresh++
  // Room for every new record up to the capacity, before writing any (growing may move the section).
  if (fresh > 0 && recordsNeedRoom(w.mem, w.at, cap, fresh)) w.grow(RECORDS, growth(w.mem, w.at, RECORDS, cap, fresh))
  let evicted = false
  for (let k = 0; k < unique; k++) {
    const hi = hashes[2 * k] as number
    const lo = hashes[2 * k + 1] as number
    // After an eviction an index found before may hold another record (its slot was reused): look again.
    const at = evicted ? findRecord(w.mem, w.at, hi, lo) : (held[k] as number)
    if (touchRecord(w.mem, w.at, cap, at, hi, lo, now)) evicted = true
  }
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
}

export const REQUEST: EvaluateStep = { countRequest: true }

function passed(limit: Limit, passes: readonly number[] | undefined): boolean {
  return passes !== undefined && limit.action === 'challenge' && passes.includes(limit.index)
}

/** The ladder; between equally severe limits the one written first in the config decides. */
function moreSevere(limit: Limit, than: Limit | null): boolean {
  return than === null || limit.severity > than.severity || (limit.severity === than.severity && limit.index < than.index)
}
