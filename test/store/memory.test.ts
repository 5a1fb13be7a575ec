// The memory store's arena of windows: many accounts sharing it, blocks freed and reused on
// eviction, sections growing across size classes, reloads, clock rebases, reset and close.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { limitArb } from '../helpers/traces.js'
import { Reference } from '../helpers/reference.js'
import { Engine, type Decision } from '../../src/engine/engine.js'
import { buildPolicy, MAX_WINDOW_MS, type ActionName, type Limit, type RoutePolicy } from '../../src/engine/policy.js'
import { MemoryStore } from '../../src/store/memory.js'

const MIN = 60_000
const DAY = 86_400_000

type Limits = Parameters<typeof buildPolicy>[1]

function engineOf(store: MemoryStore): Engine {
  return new Engine(store, { disableForMs: 40 })
}

const see = (e: Engine, p: RoutePolicy, records: string[], now: number, account = 'alice', countRequest = true) =>
  e.observe(account, p, records, now, { countRequest }) as Decision

/** Counts as the engine reports them: windows keep at most capacity entries. */
function capped(policy: RoutePolicy, counts: number[]): number[] {
  return counts.map((c, i) =>
    Math.min(c, (policy.limits[i] as Limit).kind === 'requests' ? policy.requestCapacity : policy.distinctCapacity),
  )
}

// Limits without `disable` (a disable is per account, the reference per route) and, for the
// comparison with the reference, without `log` (a saturated log limit may count a re-read
// record again: the one tolerated difference, see test/engine/engine.test.ts).
const actionArb = (actions: ActionName[]) =>
  limitArb.chain((l) => fc.constantFrom(...actions).map((action) => ({ ...l, action })))

const hitArb = fc.record({
  account: fc.integer({ min: 0, max: 5 }),
  route: fc.integer({ min: 0, max: 2 }),
  gap: fc.oneof(fc.integer({ min: 0, max: 30 }), fc.constantFrom(10, 50, 100, 250)),
  records: fc.array(fc.integer({ min: 1, max: 12 }).map(String), { maxLength: 3 }),
  response: fc.boolean(),
})

describe('many accounts in one arena', () => {
  it('decide as if each key had a store of its own, and as the naive reference, while idle eviction and overflow free and reuse blocks', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(actionArb(['log', 'throttle', 'challenge']), { minLength: 1, maxLength: 3 }), {
          minLength: 3,
          maxLength: 3,
        }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(hitArb, { maxLength: 150 }),
        (routes, maxAccounts, hits) => {
          const policies = routes.map((limits, i) => buildPolicy(`r${i}`, limits, false))
          const evicted: string[] = []
          const store = new MemoryStore({ maxAccounts, onEvict: (a) => evicted.push(a) })
          const shared = engineOf(store)
          // Per key counted under (the account, or the overflow key when the store was full of
          // accounts with open windows): a store of its own, and a reference per route; both
          // forget the key when the shared store evicts it.
          const alone = new Map<string, Engine>()
          const refs = new Map<string, Reference[]>()
          let now = 1_000
          for (const hit of hits) {
            now += hit.gap
            const policy = policies[hit.route] as RoutePolicy
            const got = see(shared, policy, hit.records, now, `a${hit.account}`, !hit.response)
            const account = got.account
            for (const a of evicted.splice(0)) {
              alone.delete(a)
              refs.delete(a)
            }
            if (!alone.has(account)) {
              alone.set(account, engineOf(new MemoryStore({ maxAccounts: 10 })))
              refs.set(
                account,
                policies.map((p) => new Reference([...p.limits], 40)),
              )
            }
            const want = see(alone.get(account) as Engine, policy, hit.records, now, account, !hit.response)
            expect([got.kind, got.counts, got.block]).toEqual([want.kind, want.counts, want.block])

            const ref = (refs.get(account) as Reference[])[hit.route] as Reference
            const exact = ref.observe(hit.records, now, !hit.response)
            if (policy.limits.every((l) => l.action !== 'log')) {
              expect(got.kind).toBe(exact.kind)
              expect(got.counts).toEqual(capped(policy, exact.counts))
            }
          }
          expect(store.stats().blocks).toBe(store.size)
          void store.close()
          expect(store.stats()).toEqual({ blocks: 0, bytesInUse: 0, freeBlocks: 0, bytesReserved: 0 })
        },
      ),
      { numRuns: 300 },
    )
  })

  it("hands an evicted account's blocks to a newcomer with nothing of its previous owner", () => {
    const store = new MemoryStore({ maxAccounts: 1 })
    const engine = engineOf(store)
    const policy = buildPolicy(
      'r',
      [
        { kind: 'requests', windowMs: MIN, max: 3, action: 'log' },
        { kind: 'distinctRecords', windowMs: MIN, max: 3, action: 'log' },
      ],
      false,
    )
    for (let i = 0; i < 4; i++) see(engine, policy, [`x${i}`], i, 'old')
    expect(see(engine, policy, ['x0'], 5, 'old').counts).toEqual([4, 4])
    const before = store.stats()
    // Once every window of 'old' is empty, it makes room; the newcomer grows through the same
    // size classes, taking the blocks 'old' freed.
    const t = 5 + MIN
    for (let i = 0; i < 3; i++) see(engine, policy, [`y${i}`], t + i, 'new')
    expect(see(engine, policy, ['x0'], t + 3, 'new').counts).toEqual([4, 4]) // x0 is new to 'new'
    expect(see(engine, policy, ['x1'], t + 4, 'new').counts).toEqual([4, 4])
    expect(store.stats()).toMatchObject({
      blocks: 1,
      bytesInUse: before.bytesInUse,
      bytesReserved: before.bytesReserved,
    })
    expect(store.account('old', [policy], t + 5)).toBeNull()
  })

  it("keeps the least recently seen account's windows when a busier one moves to a larger block", () => {
    const store = new MemoryStore({ maxAccounts: 100 })
    const engine = engineOf(store)
    const policy = buildPolicy('r', [{ kind: 'distinctRecords', windowMs: MIN, max: 500, action: 'throttle' }], false)
    for (let a = 0; a < 50; a++) see(engine, policy, [`seed-${a}`], a, `a${a}`)
    for (let i = 0; i < 400; i++) see(engine, policy, [`r${i}`], 100 + i, 'busy')
    for (let a = 0; a < 50; a++) expect(store.account(`a${a}`, [policy], 1000)?.routes[0]?.limits[0]?.count).toBe(1)
    expect(store.account('busy', [policy], 1000)?.routes[0]?.limits[0]?.count).toBe(400)
    expect(store.stats().blocks).toBe(51)
  })
})

describe('sections growing on demand', () => {
  it('start small and grow across size classes up to their capacity, next to a route that keeps its counts', () => {
    const store = new MemoryStore({ maxAccounts: 10 })
    const engine = engineOf(store)
    const big = buildPolicy(
      'big',
      [
        { kind: 'requests', windowMs: DAY, max: 2000, action: 'throttle' },
        { kind: 'distinctRecords', windowMs: DAY, max: 300, action: 'log' },
      ],
      false,
    )
    const small = buildPolicy(
      'small',
      [
        { kind: 'requests', windowMs: DAY, max: 5, action: 'log' },
        { kind: 'distinctRecords', windowMs: DAY, max: 5, action: 'log' },
      ],
      false,
    )
    see(engine, small, ['s'], 0)
    const light = store.stats().bytesInUse
    expect(light).toBeLessThanOrEqual(128) // one account, two light routes: a small block
    let grown = light
    const sizes = new Set<number>()
    for (let i = 0; i < 2500; i++) {
      const d = see(engine, big, [`r${i}`], 1 + i)
      expect(d.counts).toEqual([Math.min(i + 1, 2001), Math.min(i + 1, 301)])
      expect(d.kind).toBe(i + 1 > 2000 ? 'throttle' : i + 1 > 300 ? 'log' : 'allow')
      if (i % 100 === 0) expect(see(engine, small, ['s'], 1 + i, 'alice', false).counts).toEqual([1, 1])
      const now = store.stats()
      expect(now.blocks).toBe(1)
      expect(now.bytesInUse).toBeGreaterThanOrEqual(grown)
      grown = now.bytesInUse
      sizes.add(grown)
    }
    // Full: 2001 request times and 301 records of 12 bytes, plus headers and at most 6% slack.
    expect(grown).toBeGreaterThanOrEqual(2001 * 4 + 301 * 12)
    expect(grown).toBeLessThanOrEqual((2001 * 4 + 301 * 12) * 1.07 + 200)
    expect(sizes.size).toBeGreaterThan(8)
    expect(see(engine, small, ['s'], 3000).counts).toEqual([2, 1])
  })

  it('give a window too large for the chunks a buffer of its own, freed with the account', () => {
    const store = new MemoryStore({ maxAccounts: 10 })
    const engine = engineOf(store)
    const huge = buildPolicy('huge', [{ kind: 'requests', windowMs: DAY, max: 300_000, action: 'throttle' }], false)
    see(engine, huge, [], 0, 'bob')
    const light = store.stats().bytesReserved
    for (let i = 1; i <= 300_000; i++) engine.observe('alice', huge, [], i)
    expect(see(engine, huge, [], 300_001).kind).toBe('throttle')
    expect(see(engine, huge, [], 300_002).counts).toEqual([300_001])
    expect(store.stats().bytesInUse).toBeGreaterThan(300_001 * 4)
    expect(store.reset('alice', { policies: [huge] })).toBe(true)
    // Bob's block is left, and the chunk the growing blocks came from; the dedicated buffer is gone.
    expect(store.stats().blocks).toBe(1)
    expect(store.stats().bytesReserved).toBeLessThan(light + 300_001 * 4)
    expect(see(engine, huge, [], 300_003).counts).toEqual([1])
  })
})

describe('a reload changing capacities', () => {
  const policy = (max: number, records: number): RoutePolicy =>
    buildPolicy(
      'r',
      [
        { kind: 'requests', windowMs: DAY, max, action: 'log' },
        { kind: 'distinctRecords', windowMs: DAY, max: records, action: 'log' },
      ],
      false,
    )

  it('carries the newest requests and the most recently touched records over, down and up, beside other routes', () => {
    const store = new MemoryStore({ maxAccounts: 10 })
    const engine = engineOf(store)
    const other = buildPolicy('other', [{ kind: 'requests', windowMs: DAY, max: 50, action: 'log' }], false)
    const wide = policy(20, 10)
    for (let i = 0; i < 8; i++) {
      see(engine, wide, [`r${i}`], 10 * i)
      see(engine, other, [], 10 * i + 1)
    }
    // r1 touched again: now the most recently touched.
    expect(see(engine, wide, ['r1'], 100).counts).toEqual([9, 8])

    // Down to capacities 4 and 3: the newest 4 requests, records r1, r7, r6 — r1 is free, r5 is not.
    const narrow = policy(3, 2)
    expect(see(engine, narrow, ['r1'], 110).counts).toEqual([4, 3])
    expect(see(engine, narrow, ['r7'], 111).counts).toEqual([4, 3])
    expect(see(engine, narrow, ['r5'], 112).counts).toEqual([4, 3])
    expect(see(engine, narrow, ['r5'], 113).kind).toBe('log')

    // Up again: nothing comes back that was dropped; the kept history still counts.
    const wider = policy(40, 30)
    const d = see(engine, wider, ['r0'], 120)
    expect(d.counts).toEqual([5, 4])
    expect(d.kind).toBe('allow')

    // The other route kept all its requests through every move of the block.
    expect(see(engine, other, [], 130).counts).toEqual([9])
    expect(store.stats().blocks).toBe(1)
  })

  it('serves a policy of the same capacities from the same windows (shadow twin)', () => {
    const store = new MemoryStore({ maxAccounts: 10 })
    const engine = engineOf(store)
    const enforce = policy(5, 5)
    const shadow = buildPolicy(
      'r',
      enforce.limits.map((l) => ({ kind: l.kind, windowMs: l.windowMs, max: l.max, action: l.action })),
      true,
    )
    see(engine, enforce, ['a'], 1)
    expect(see(engine, shadow, ['b'], 2).counts).toEqual([2, 2])
    expect(store.account('alice', [enforce], 3)?.routes[0]?.limits.map((l) => l.count)).toEqual([2, 2])
  })
})

describe('times as 32-bit offsets from a per-account base', () => {
  const windowArb = fc.constantFrom(1000, 2 ** 31, MAX_WINDOW_MS)
  const longLimitArb = fc.record({
    kind: fc.constantFrom('requests' as const, 'distinctRecords' as const),
    windowMs: windowArb,
    max: fc.integer({ min: 1, max: 4 }),
    action: fc.constantFrom<ActionName>('throttle', 'challenge'),
  })
  const longGapArb = fc.constantFrom(
    0,
    1,
    999,
    1000,
    2 ** 31,
    MAX_WINDOW_MS - 1,
    MAX_WINDOW_MS,
    MAX_WINDOW_MS + 1,
    2 ** 32 - 1,
    2 ** 32,
    2 ** 32 + 7,
    60 * DAY,
    400 * DAY,
  )

  it('decide exactly across clock jumps past 2^32 ms (the block is rebased)', () => {
    fc.assert(
      fc.property(
        fc.array(longLimitArb, { minLength: 1, maxLength: 3 }),
        fc.array(
          fc.record({
            gap: longGapArb,
            records: fc.array(fc.integer({ min: 1, max: 6 }).map(String), { maxLength: 2 }),
            other: fc.boolean(),
          }),
          { maxLength: 60 },
        ),
        (limits, steps) => {
          const store = new MemoryStore({ maxAccounts: 10 })
          const engine = engineOf(store)
          const p = buildPolicy('p', limits, false)
          const q = buildPolicy('q', limits, false)
          const refs = [new Reference([...p.limits], 40), new Reference([...q.limits], 40)]
          let now = 1_700_000_000_000
          for (const step of steps) {
            now += step.gap
            const got = see(engine, step.other ? q : p, step.records, now)
            const want = (refs[step.other ? 1 : 0] as Reference).observe(step.records, now)
            expect(got.kind).toBe(want.kind)
            expect(got.counts).toEqual(capped(p, want.counts))
          }
        },
      ),
      { numRuns: 300 },
    )
  })

  it('keeps what is inside a 49-day window when the base moves, and lets idle accounts resume', () => {
    const store = new MemoryStore({ maxAccounts: 10 })
    const engine = engineOf(store)
    const long = buildPolicy(
      'long',
      [
        { kind: 'requests', windowMs: 49 * DAY, max: 100, action: 'log' },
        { kind: 'distinctRecords', windowMs: 49 * DAY, max: 100, action: 'log' },
      ],
      false,
    )
    const t0 = 1_700_000_000_000
    for (const [day, record] of [
      [0, 'a'],
      [20, 'b'],
      [40, 'c'],
      [48, 'd'],
    ] as const)
      see(engine, long, [record], t0 + day * DAY)
    see(engine, long, ['x'], t0, 'idle')
    // 55 days after the first: past 2^32 ms (49.7 days), the base moves to day 6.
    expect(see(engine, long, ['a'], t0 + 55 * DAY).counts).toEqual([4, 4])
    expect(see(engine, long, ['e'], t0 + 55 * DAY + 1).counts).toEqual([5, 5])
    // Read at day 89 (the window starts after day 40): 48, 55 and 55 + 1 ms.
    expect(store.account('alice', [long], t0 + 89 * DAY)?.routes[0]?.limits.map((l) => l.count)).toEqual([3, 3])
    // An account idle for a year: its counts read as empty, and it starts over when it returns.
    expect(store.account('idle', [long], t0 + 365 * DAY)?.routes[0]?.limits.map((l) => l.count)).toEqual([0, 0])
    expect(see(engine, long, ['x'], t0 + 365 * DAY, 'idle').counts).toEqual([1, 1])
    expect(see(engine, long, ['y'], t0 + 366 * DAY, 'idle').counts).toEqual([2, 2])
  })

  it('never runs the clock backwards, even right after a rebase', () => {
    const store = new MemoryStore({ maxAccounts: 10 })
    const engine = engineOf(store)
    const p = buildPolicy('p', [{ kind: 'requests', windowMs: MIN, max: 1, action: 'throttle' }], false)
    see(engine, p, [], 0)
    expect(see(engine, p, [], 100 * DAY).kind).toBe('allow')
    expect(see(engine, p, [], 5).kind).toBe('throttle') // clamped to 100 days
    expect(see(engine, p, [], 100 * DAY + MIN + 1).kind).toBe('allow')
  })
})

describe('reset and close', () => {
  it("free an account's block, or shrink it when one route goes", () => {
    const store = new MemoryStore({ maxAccounts: 10 })
    const engine = engineOf(store)
    const wide = buildPolicy('wide', [{ kind: 'distinctRecords', windowMs: DAY, max: 400, action: 'log' }], false)
    const narrow = buildPolicy('narrow', [{ kind: 'requests', windowMs: DAY, max: 5, action: 'log' }], false)
    for (let i = 0; i < 400; i++) see(engine, wide, [`r${i}`], i)
    see(engine, narrow, [], 500)
    see(engine, narrow, [], 501, 'bob')
    const full = store.stats()
    expect(full.blocks).toBe(2)

    expect(store.reset('alice', { policies: [wide, narrow], route: 'wide' })).toBe(true)
    const shrunk = store.stats()
    expect(shrunk.blocks).toBe(2)
    expect(full.bytesInUse - shrunk.bytesInUse).toBeGreaterThan(400 * 12)
    expect(store.account('alice', [wide, narrow], 600)?.routes.map((r) => [r.route, r.limits[0]?.count])).toEqual([
      ['narrow', 1],
    ])
    expect(store.reset('alice', { policies: [wide], route: 'wide' })).toBe(false)
    expect(store.reset('alice', { policies: [wide], route: 'never-seen' })).toBe(false)
    expect(see(engine, wide, ['r1'], 700).counts).toEqual([1])

    expect(store.reset('alice', { policies: [wide, narrow] })).toBe(true)
    expect(store.stats().blocks).toBe(1)
    expect(store.account('alice', [wide, narrow], 800)).toBeNull()
    expect(see(engine, narrow, [], 900, 'bob').counts).toEqual([2])
  })

  it('close frees every block and drops the chunks', async () => {
    const store = new MemoryStore({ maxAccounts: 1000 })
    const engine = engineOf(store)
    const p = buildPolicy(
      'p',
      [
        { kind: 'requests', windowMs: MIN, max: 30, action: 'log' },
        { kind: 'distinctRecords', windowMs: MIN, max: 20, action: 'log' },
      ] satisfies Limits,
      false,
    )
    for (let a = 0; a < 500; a++) for (let i = 0; i < 25; i++) see(engine, p, [`${a}-${i}`], i, `a${a}`)
    expect(store.stats().blocks).toBe(500)
    await store.close()
    expect(store.size).toBe(0)
    expect(store.stats()).toEqual({ blocks: 0, bytesInUse: 0, freeBlocks: 0, bytesReserved: 0 })
  })
})
