// The account shape both memory benchmarks hold (bench/memory.js for the memory store,
// bench/redis-memory.js for Redis): 3 routes, each with a request limit and a distinct-record
// limit, filled to their caps by FILL observations (31 requests, the first 21 with a new record).
import { buildPolicy } from '../dist/engine/policy.js'

export const DESCRIBE = '3 routes × (30 requests/1m + 20 distinct records/10m), windows at their caps'
export const ROUTES = ['contact', 'parcel', 'invoice'].map((name) =>
  buildPolicy(
    name,
    [
      { kind: 'requests', windowMs: 60_000, max: 30, action: 'throttle' },
      { kind: 'distinctRecords', windowMs: 600_000, max: 20, action: 'throttle' },
    ],
    false,
  ),
)
export const FILL = 31
/** The records of an account's i-th observation on a route. */
export const recordsOf = (account, i) => (i < 21 ? [String(1_000_000 + account * 50 + i)] : [])
