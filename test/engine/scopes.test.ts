// Limits keyed by the client network and by the route, and distinct-account limits: the
// engine (memory store) against the naive per-key reference (test/helpers/scoped-reference.ts).
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Engine, type Decision } from '../../src/engine/engine.js'
import { buildPolicy } from '../../src/engine/policy.js'
import { MemoryStore } from '../../src/store/memory.js'
import { capacityOf, ScopedReference, scopedLimitArb, scopedStepArb } from '../helpers/scoped-reference.js'

describe('property: network, route and distinct-account limits equal the naive reference', () => {
  it('on random traces of five accounts on two networks', () => {
    fc.assert(
      fc.property(
        fc.array(scopedLimitArb, { minLength: 1, maxLength: 4 }),
        fc.array(scopedStepArb, { maxLength: 80 }),
        (limits, steps) => {
          const disableForMs = 4000
          const policy = buildPolicy('r', limits, false)
          const engine = new Engine(new MemoryStore({ maxAccounts: 100 }), { disableForMs })
          const ref = new ScopedReference(policy, disableForMs)
          let now = 1_000
          for (const step of steps) {
            now += step.gap
            const got = engine.observe(step.account, policy, step.records, now, { network: step.network }) as Decision
            const want = ref.observe(step, now)
            // A `log` limit lets its set fill to the cap; past it, evicted records may count as
            // fresh again (windows.ts): the trace ends there, as in the account-only test.
            const full = policy.limits.some(
              (l) => l.kind !== 'requests' && (got.counts[l.index] ?? 0) >= capacityOf(policy, l),
            )
            if (full) break
            expect(got.kind).toBe(want.kind)
            if (want.kind !== 'allow') expect(got.account).toBe(want.key)
            if (want.kind !== 'disabled')
              expect(got.counts).toEqual(want.counts.map((c, i) => Math.min(c, capacityOf(policy, policy.limits[i]!))))
          }
        },
      ),
      { numRuns: 400 },
    )
  })
})

describe('scoped limits', () => {
  const engine = () => new Engine(new MemoryStore({ maxAccounts: 1000 }), { disableForMs: 60_000 })

  it('stops many accounts of one network at exactly the network limit; another network is untouched', () => {
    const policy = buildPolicy(
      'contact',
      [
        { windowMs: 600_000, kind: 'distinctRecords', max: 10, action: 'challenge' },
        { per: 'network', windowMs: 3_600_000, kind: 'distinctRecords', max: 100, action: 'challenge' },
      ],
      false,
    )
    const e = engine()
    let served = 0
    let id = 0
    for (let a = 0; a < 50; a++) {
      for (let k = 0; k < 10; k++) {
        const d = e.observe(`user:scraper${a}`, policy, [`c${id++}`], 1000 + id, {
          network: '203.0.113.0/24',
        }) as Decision
        if (!d.block) served++
        else {
          expect(d.kind).toBe('challenge')
          expect(d.account).toBe('net:203.0.113.0/24')
        }
      }
    }
    expect(served).toBe(100)
    const clerk = e.observe('user:clerk', policy, ['c1'], 1000 + id, { network: '198.51.100.0/24' }) as Decision
    expect(clerk.kind).toBe('allow')
  })

  it('a network disable blocks that network on every route', () => {
    const login = buildPolicy(
      'login',
      [{ per: 'network', windowMs: 3_600_000, kind: 'distinctAccounts', max: 3, action: 'disable' }],
      false,
    )
    const other = buildPolicy('other', [{ windowMs: 60_000, kind: 'requests', max: 100, action: 'throttle' }], false)
    const e = engine()
    const net = { network: '192.0.2.0/24' }
    for (const u of ['u1', 'u2', 'u3']) expect((e.observe(u, login, [], 1000, net) as Decision).kind).toBe('allow')
    const fourth = e.observe('u4', login, [], 1001, net) as Decision
    expect(fourth.kind).toBe('disable')
    expect(fourth.account).toBe('net:192.0.2.0/24')
    const elsewhere = e.observe('u1', other, [], 1002, net) as Decision
    expect(elsewhere.kind).toBe('disabled')
    expect(elsewhere.account).toBe('net:192.0.2.0/24')
    expect((e.observe('u1', other, [], 1003, { network: '192.0.3.0/24' }) as Decision).kind).toBe('allow')
  })
})

describe('network keys under churn', () => {
  it('a flood of fresh networks shares net:* once the store holds its bound of networks, and resets nobody', () => {
    const store = new MemoryStore({ maxAccounts: 100 }) // at most 1,000 networks
    const e = new Engine(store, { disableForMs: 60_000 })
    const policy = buildPolicy(
      'contact',
      [{ per: 'network', windowMs: 3_600_000, kind: 'distinctRecords', max: 50, action: 'throttle' }],
      false,
    )
    const at = (n: number) => ({ network: `10.${n >> 8}.${n & 255}.0/24` })
    // The office network reads 40 records, then 999 other networks one each: the store is full.
    for (let r = 0; r < 40; r++) e.observe('clerk', policy, [`office-${r}`], 1000, at(0))
    for (let n = 1; n < 1000; n++) e.observe(`u${n}`, policy, [`r${n}`], 2000, at(n))
    // 10,000 more networks, each with a record: all counted under net:*, throttled as one at 50.
    let served = 0
    for (let n = 1000; n < 11_000; n++) {
      const d = e.observe(`flood${n}`, policy, [`f${n}`], 3000, at(n)) as Decision
      if (!d.block) served++
      else expect(d.account).toBe('net:*')
    }
    expect(served).toBe(50)
    // The office kept its 40: 10 more are served, the 11th is not.
    for (let r = 40; r < 50; r++)
      expect((e.observe('clerk', policy, [`office-${r}`], 4000, at(0)) as Decision).block).toBe(false)
    expect((e.observe('clerk', policy, ['office-50'], 4000, at(0)) as Decision).block).toBe(true)
    // An hour later the idle networks make room again.
    expect((e.observe('late', policy, ['x'], 3_700_000, at(20_000)) as Decision).account).toBe('late')
  })
})

describe('the networks held', () => {
  it('a network asked for again and again stays the most recently used: idle others make room first', () => {
    const policy = buildPolicy(
      'contact',
      [{ per: 'network', windowMs: 60_000, kind: 'distinctRecords', max: 50, action: 'throttle' }],
      false,
    )
    const store = new MemoryStore({ maxAccounts: 100 })
    const e = new Engine(store, { disableForMs: 60_000 })
    const at = (n: number) => ({ network: `10.${n >> 8}.${n & 255}.0/24` })
    // 1,000 networks (the store's bound); the first is then asked for twice in a row.
    for (let n = 0; n < 1000; n++) e.observe(`u${n}`, policy, [`r${n}`], 1000, at(n))
    e.observe('u0', policy, ['again'], 2000, at(0))
    e.observe('u0', policy, ['again2'], 2000, at(0))
    // A minute later every one is idle: each newcomer evicts the least recently used, never net 0.
    for (let n = 1000; n < 1500; n++) e.observe(`u${n}`, policy, [`r${n}`], 70_000, at(n))
    expect(store.account('net:10.0.0.0/24', [policy], 70_000)).not.toBeNull()
    expect(store.account('net:10.0.1.0/24', [policy], 70_000)).toBeNull()
    // Its records are still counted.
    const d = e.observe('u0', policy, ['again'], 80_000, at(0)) as Decision
    expect(d.kind).toBe('allow')
  })
})

describe('shadow', () => {
  it('a shadow route decides network limits exactly as enforce would, blocks nothing, and its network disable never blocks an enforced route', () => {
    const limits = [
      {
        per: 'network' as const,
        windowMs: 3_600_000,
        kind: 'distinctAccounts' as const,
        max: 2,
        action: 'disable' as const,
      },
    ]
    const shadowed = buildPolicy('signup', limits, true)
    const enforced = buildPolicy(
      'contact',
      [{ windowMs: 60_000, kind: 'requests', max: 100, action: 'throttle' }],
      false,
    )
    const e = new Engine(new MemoryStore({ maxAccounts: 100 }), { disableForMs: 60_000 })
    const net = { network: '192.0.2.0/24' }
    e.observe('a', shadowed, [], 1, net)
    e.observe('b', shadowed, [], 2, net)
    const third = e.observe('c', shadowed, [], 3, net) as Decision
    expect(third).toMatchObject({
      kind: 'disable',
      block: false,
      wouldBlock: true,
      shadow: true,
      account: 'net:192.0.2.0/24',
    })
    expect((e.observe('c', shadowed, [], 4, net) as Decision).kind).toBe('disabled')
    expect((e.observe('a', enforced, [], 5, net) as Decision).kind).toBe('allow')
  })
})
