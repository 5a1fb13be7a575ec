// One observation's cost grows linearly with the ids it carries and the log it meets: ten times
// the work takes about ten times as long (a quadratic step would take a hundred). Only ratios
// are asserted, never a time, and each is the best of a few runs: the machine may be busy (a
// loaded 2-core CI machine measured 42× once, garbage collection of the million ids included;
// the bound sits halfway between linear and quadratic).
import { describe, expect, it } from 'vitest'
import { buildPolicy, type ActionName } from '../../src/engine/policy.js'
import { MemoryStore } from '../../src/store/memory.js'

const DAY = 86_400_000
const BOUND = 50

const policyOf = (max: number, action: ActionName = 'log') =>
  buildPolicy('bulk', [{ kind: 'distinctRecords', windowMs: DAY, max, action }], false)

/** `n` ids, `distinct` of them. */
const idsOf = (prefix: string, n: number, distinct = n) =>
  Array.from({ length: n }, (_, i) => `${prefix}-${i % distinct}`)

/**
 * Milliseconds of the fastest of `runs` observations of `records` against a fresh account,
 * after `before` (not timed) has filled its log; and that observation's result.
 */
function time(policy: ReturnType<typeof policyOf>, records: string[], before: string[] = [], runs = 5) {
  let best = Infinity
  let result
  for (let r = 0; r < runs; r++) {
    const store = new MemoryStore({ maxAccounts: 10 })
    const hit = (ids: string[], now: number) =>
      store.hit({ account: 'bulk', policy, records: ids, now, shadow: false, disableForMs: DAY })
    if (before.length > 0) hit(before, 1_000)
    const start = performance.now()
    result = hit(records, 2_000)
    best = Math.min(best, performance.now() - start)
  }
  return { ms: best, result: result as ReturnType<MemoryStore['hit']> }
}

describe('one observation of many ids', () => {
  it('takes linear time in distinct ids: 1,000,000 against 100,000', () => {
    const policy = policyOf(1_000_000)
    const small = time(policy, idsOf('id', 100_000), [], 5)
    const large = time(policy, idsOf('id', 1_000_000))
    expect(small.result.counts).toEqual([100_000])
    expect(large.result.counts).toEqual([1_000_000])
    expect(large.ms).toBeLessThan(BOUND * small.ms)
  })

  it('takes linear time in ids that are mostly repeats', () => {
    const policy = policyOf(5_000)
    const small = time(policy, idsOf('id', 100_000, 1_000), [], 5)
    const large = time(policy, idsOf('id', 1_000_000, 1_000))
    expect(small.result.counts).toEqual([1_000])
    expect(large.result.counts).toEqual([1_000])
    expect(large.ms).toBeLessThan(BOUND * small.ms)
  })

  it('blocks a million new ids, counting none, in linear time', () => {
    const policy = policyOf(99_999, 'throttle')
    const small = time(policy, idsOf('id', 100_000), [], 5)
    const large = time(policy, idsOf('id', 1_000_000))
    expect(small.result.blocked).toBe(true)
    expect(large.result).toMatchObject({ blocked: true, counts: [100_000] })
    expect(large.ms).toBeLessThan(BOUND * small.ms)
  })
})

describe('eviction from a full log', () => {
  // A log limit lets a log stay at its capacity (the largest max + 1): new records replace the
  // least recently touched, all at once.
  it('replaces a whole log of 100,000 in linear time', () => {
    const run = (cap: number) => time(policyOf(cap - 1), idsOf('new', cap), idsOf('old', cap), 5)
    const small = run(10_000)
    const large = run(100_000)
    expect(large.result.counts).toEqual([100_000])
    expect(large.ms).toBeLessThan(BOUND * small.ms)
  })

  it('replaces a quarter of a log of 100,000, beside re-reads, in linear time', () => {
    // A quarter of the log re-read and as many new records: a quarter of the others go.
    const run = (cap: number) =>
      time(policyOf(cap - 1), [...idsOf('old', cap / 4), ...idsOf('new', cap / 4)], idsOf('old', cap), 5)
    const small = run(10_000)
    const large = run(100_000)
    expect(large.result.counts).toEqual([100_000])
    expect(large.ms).toBeLessThan(BOUND * small.ms)
  })
})
