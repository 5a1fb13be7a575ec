// One observation against one (account, route) state: the pure heart of sluice. The memory
// store runs it directly; the Redis store runs the same steps in Lua, atomically.
import { DistinctLog, RequestLog } from './windows.js'
import type { ActionName, Limit, RoutePolicy } from './policy.js'

export interface RouteWindows {
  requests: RequestLog | null
  distinct: DistinctLog | null
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

export function newWindows(policy: RoutePolicy): RouteWindows {
  return {
    requests: policy.requestLimits.length > 0 ? new RequestLog(policy.requestCapacity) : null,
    distinct: policy.distinctLimits.length > 0 ? new DistinctLog(policy.distinctCapacity) : null,
  }
}

/**
 * Windows for a changed policy of the same route (a reload): the history carries over, so
 * raising or lowering a limit never hands an account a fresh budget. Redis does the same by
 * trimming to the new capacity on the next hit.
 */
export function carryWindows(w: RouteWindows, policy: RoutePolicy): RouteWindows {
  return {
    requests: policy.requestLimits.length > 0 ? (w.requests?.resized(policy.requestCapacity) ?? new RequestLog(policy.requestCapacity)) : null,
    distinct: policy.distinctLimits.length > 0 ? (w.distinct?.resized(policy.distinctCapacity) ?? new DistinctLog(policy.distinctCapacity)) : null,
  }
}

/**
 * Count the request, decide, and count its records only if nothing blocks it: a blocked
 * request served no data, so it must not spend the account's record budget (ARCHITECTURE.md).
 * `now` must not run backwards per state; callers clamp it (see MemoryStore).
 */
export function evaluate(w: RouteWindows, policy: RoutePolicy, records: readonly string[], now: number, step: EvaluateStep = REQUEST): Evaluation {
  const counts = new Array<number>(policy.limits.length).fill(0)
  let worst: Limit | null = null
  const passes = step.passes

  if (w.requests) {
    // The response step reads the request counts for the logs; the request decided them.
    if (step.countRequest) w.requests.add(now)
    for (const limit of policy.requestLimits) {
      const count = w.requests.countAfter(now - limit.windowMs)
      counts[limit.index] = count
      if (step.countRequest && count > limit.max && !passed(limit, passes) && moreSevere(limit, worst)) worst = limit
    }
  }

  const d = w.distinct
  if (d) {
    const limits = policy.distinctLimits
    d.prune(now - policy.longestDistinctWindowMs)
    const cutoffs = limits.map((l) => now - l.windowMs)
    const inWindow: number[] = new Array<number>(limits.length)
    d.countAfter(cutoffs, inWindow)
    for (let i = 0; i < limits.length; i++) {
      const limit = limits[i] as Limit
      const cutoff = cutoffs[i] as number
      // Records this request touches that are new to this limit's window (a re-read is free).
      let fresh = 0
      for (let r = 0; r < records.length; r++) {
        const record = records[r] as string
        if (r > 0 && records.indexOf(record) < r) continue // the same id twice in one request
        const at = d.lastSeen(record)
        if (at === undefined || at <= cutoff) fresh++
      }
      const count = (inWindow[i] as number) + fresh
      counts[limit.index] = Math.min(count, policy.distinctCapacity)
      if (fresh > 0 && count > limit.max && !passed(limit, passes) && moreSevere(limit, worst)) worst = limit
    }
  }

  const blocked = worst !== null && worst.severity > 0
  if (d && !blocked) for (const record of records) d.touch(record, now)
  return { limit: worst, action: worst?.action ?? null, blocked, counts }
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
