// The indexed path of evaluate (a hash table of the request, probed with one pass over the log)
// against the plain loops most requests take, and eviction in one pass (touchRecords, both
// paths) against the naive reference, with many ids per request and small capacities.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { distinctSetFull, Reference } from '../helpers/reference.js'
import { Engine, type Decision } from '../../src/engine/engine.js'
import { scanLimits } from '../../src/engine/evaluate.js'
import { buildPolicy, SEVERITY, type ActionName, type Limit, type RoutePolicy } from '../../src/engine/policy.js'
import { MemoryStore } from '../../src/store/memory.js'

const DISABLE_MS = 40
const POOL = 30

const plainLimits = { ...scanLimits }

/** `f` with every request, however small, taking the indexed path. */
function indexed<T>(f: () => T): T {
  Object.assign(scanLimits, { few: 0, ids: 0, work: 0 })
  try {
    return f()
  } finally {
    Object.assign(scanLimits, plainLimits)
  }
}

const engine = () => new Engine(new MemoryStore({ maxAccounts: 10 }), { disableForMs: DISABLE_MS })

const windowArb = fc.constantFrom(10, 50, 100, 250)
const limitArb = fc.record({
  kind: fc.constantFrom('requests' as const, 'distinctRecords' as const, 'distinctRecords' as const),
  windowMs: windowArb,
  max: fc.integer({ min: 1, max: 12 }),
  action: fc.constantFrom<ActionName>('log', 'throttle', 'challenge', 'disable'),
})
// Many ids per request from a small pool: repeats within a request, re-reads, and (with the
// small capacities above) requests bringing more new records than a log holds.
const stepArb = fc.record({
  gap: fc.oneof(fc.integer({ min: 0, max: 30 }), windowArb),
  records: fc.array(fc.integer({ min: 1, max: POOL }).map(String), { maxLength: 20 }),
  response: fc.boolean(),
  passes: fc.subarray([0, 1, 2, 3]),
})
const limitsArb = fc.array(limitArb, { minLength: 1, maxLength: 3 })

describe('property: the indexed path', () => {
  it('decides exactly as the plain loops, evicting or not', () => {
    // Both find the same records and touch them alike (touchRecords): their logs stay identical.
    fc.assert(
      fc.property(limitsArb, fc.array(stepArb, { maxLength: 60 }), (limits, steps) => {
        const policy = buildPolicy('p', limits, false)
        const fast = engine()
        const plain = engine()
        let now = 1_000
        for (const step of steps) {
          now += step.gap
          const options = { countRequest: !step.response, passes: step.passes }
          const a = indexed(() => fast.observe('acct', policy, step.records, now, options)) as Decision
          const b = plain.observe('acct', policy, step.records, now, options) as Decision
          expect([a.kind, a.limit?.index, a.counts, a.block]).toEqual([b.kind, b.limit?.index, b.counts, b.block])
        }
      }),
      { numRuns: 300 },
    )
  })

  it('and the plain loops equal the naive reference at small capacities, evicting', () => {
    fc.assert(
      fc.property(limitsArb, fc.array(stepArb, { maxLength: 60 }), (limits, steps) => {
        const policy = buildPolicy('p', limits, false)
        const paths = [
          { engine: engine(), observe: indexed },
          { engine: engine(), observe: <T>(f: () => T): T => f() },
        ]
        for (const path of paths) {
          const ref = new Reference([...policy.limits], DISABLE_MS)
          let passedBefore = false
          let now = 1_000
          for (const step of steps) {
            now += step.gap
            const options = { countRequest: !step.response, passes: step.passes }
            const got = path.observe(() => path.engine.observe('acct', policy, step.records, now, options)) as Decision
            const want = ref.observe(step.records, now, !step.response, step.passes)
            agrees(policy, got, want, passedBefore || step.passes.length > 0)
            if (step.passes.length > 0) passedBefore = true
            if (passedBefore && distinctSetFull(policy, got.counts)) break
          }
        }
      }),
      { numRuns: 300 },
    )
  })

  it('counts exactly as the naive reference under log limits, however often records are evicted', () => {
    // Log limits never block: a log stays at its capacity, evicting on most requests, and its
    // counts (capped at the capacity) stay exact only if the least recently touched go first.
    const logArb = fc.record({
      kind: fc.constant('distinctRecords' as const),
      windowMs: windowArb,
      max: fc.integer({ min: 1, max: 12 }),
      action: fc.constant('log' as const),
    })
    const fewArb = fc.record({
      gap: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 30 }), windowArb),
      records: fc.array(fc.integer({ min: 1, max: 24 }).map(String), { maxLength: 10 }),
    })
    const logsArb = fc.array(logArb, { minLength: 1, maxLength: 3 })
    fc.assert(
      fc.property(logsArb, fc.array(fewArb, { maxLength: 100 }), (limits, steps) => {
        const policy = buildPolicy('p', limits, false)
        const e = engine()
        const ref = new Reference([...policy.limits], DISABLE_MS)
        let now = 1_000
        for (const step of steps) {
          now += step.gap
          const got = indexed(() => e.observe('acct', policy, step.records, now)) as Decision
          const want = ref.observe(step.records, now)
          expect(got.counts).toEqual(want.counts.map((c) => Math.min(c, policy.distinctCapacity)))
        }
      }),
      { numRuns: 300 },
    )
  })
})

/** The engine property test's comparison (test/engine/engine.test.ts explains the tolerance for full logs). */
function agrees(policy: RoutePolicy, got: Decision, want: { kind: string; counts: number[] }, passed: boolean): void {
  const severity = (k: string) => (k === 'disabled' ? 9 : k === 'allow' ? -1 : SEVERITY[k as ActionName])
  const saturated =
    got.limit?.kind === 'distinctRecords' &&
    got.counts[got.limit.index] === policy.distinctCapacity &&
    severity(got.kind) >= severity(want.kind) &&
    (got.kind === 'log' || passed)
  if (!saturated) expect(got.kind).toBe(want.kind)
  const cap = (l: Limit) => (l.kind === 'requests' ? policy.requestCapacity : policy.distinctCapacity)
  if (want.kind !== 'disabled') {
    expect(got.counts).toEqual(want.counts.map((c, i) => Math.min(c, cap(policy.limits[i] as Limit))))
  }
  if (!saturated) expect(got.block).toBe(want.kind === 'disabled' || SEVERITY[want.kind as ActionName] > 0)
  else if (want.kind !== 'allow' && want.kind !== 'log') expect(got.block).toBe(true)
}

describe('eviction in one pass', () => {
  // Capacity 4. Whether a record is still held shows in the decision on re-reading it alone: a
  // held one is free (allow), an evicted one is new again and over the max (log).
  const policy = buildPolicy('p', [{ kind: 'distinctRecords', windowMs: 1_000_000, max: 3, action: 'log' }], false)
  const see = (e: Engine, ids: string[], now: number) => indexed(() => e.observe('acct', policy, ids, now)) as Decision
  const kinds = (e: Engine, ids: string[], now: number) => ids.map((id) => see(e, [id], now).kind)

  it("replaces the least recently touched records, never the request's own", () => {
    const e = engine()
    see(e, ['a', 'b'], 1)
    see(e, ['c', 'd'], 2)
    // c is re-read: a and b (touched at 1) make room for x and y; d (at 2) stays.
    const d = see(e, ['c', 'x', 'c', 'y'], 3)
    expect([d.kind, d.counts]).toEqual(['log', [4]])
    expect(kinds(e, ['d', 'c', 'x', 'y'], 4)).toEqual(['allow', 'allow', 'allow', 'allow'])
    expect(kinds(e, ['a'], 5)).toEqual(['log'])
  })

  it('replaces the first written of records touched at the same time', () => {
    const e = engine()
    see(e, ['a', 'b', 'c', 'd'], 1)
    see(e, ['x'], 2)
    expect(kinds(e, ['b', 'c', 'd', 'x'], 3)).toEqual(['allow', 'allow', 'allow', 'allow'])
    expect(kinds(e, ['a'], 4)).toEqual(['log'])
  })

  it("replaces records touched earlier in the same millisecond before the request's own", () => {
    const e = engine()
    see(e, ['r'], 1)
    see(e, ['a', 'b', 'c'], 5)
    // r moves to 5 too, ahead of a, b and c in the log; one of those goes for x, not r.
    see(e, ['r', 'x'], 5)
    expect(kinds(e, ['r', 'x'], 6)).toEqual(['allow', 'allow'])
  })

  it('keeps the first new records of a request that brings more than the log holds, beside its re-reads', () => {
    const e = engine()
    see(e, ['a', 'b', 'c'], 1)
    see(e, ['p', 'q', 'b', 'r', 's', 't'], 2)
    expect(kinds(e, ['b', 'p', 'q', 'r'], 3)).toEqual(['allow', 'allow', 'allow', 'allow'])
    expect(kinds(e, ['s'], 4)).toEqual(['log'])
  })
})
