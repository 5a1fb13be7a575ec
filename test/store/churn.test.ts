// Store churn (issue 13 §1): no flood of fresh identities resets, unlocks or unbinds anyone.
// A store full of accounts with open windows counts newcomers under their network instead
// of evicting; only accounts whose every window is empty make room.
import { describe, expect, it } from 'vitest'
import { Engine, type Decision } from '../../src/engine/engine.js'
import { buildPolicy } from '../../src/engine/policy.js'
import { MemoryStore, OVERFLOW_ALL } from '../../src/store/memory.js'

const MIN = 60_000
const T0 = Date.UTC(2026, 11, 7)

const policy = buildPolicy(
  'contact',
  [
    { kind: 'requests', windowMs: MIN, max: 1000, action: 'throttle' },
    { kind: 'distinctRecords', windowMs: 10 * MIN, max: 10, action: 'disable' },
  ],
  false,
)

function setup(maxAccounts: number) {
  const store = new MemoryStore({ maxAccounts })
  const engine = new Engine(store, { disableForMs: 24 * 60 * MIN })
  const see = (account: string, records: string[], now: number, network = '198.51.100.0/24') =>
    engine.observe(account, policy, records, now, { overflowKey: () => network }) as Decision
  return { store, see }
}

const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => String(from + i))

describe('store churn', () => {
  it('a flood of fresh identities neither resets nor evicts an account with open windows', () => {
    const { store, see } = setup(100)
    expect(see('user:victim', ids(1, 5), T0).kind).toBe('allow')
    // 20,000 fresh identities from 100 networks, each answered by sluice itself (limit + 1 ids).
    for (let i = 0; i < 20_000; i++)
      see(`session:${i}`, ids(10_000 + i * 11, 11), T0 + 1 + (i % 1000), `10.${i % 100}.0.0/24`)
    expect(store.size).toBeLessThanOrEqual(100 + Math.max(100, 10) + 1)
    // The victim's five records are still counted: five more are allowed, the sixth new one is not.
    expect(see('user:victim', ids(1, 5), T0 + 2000).counts[1]).toBe(5)
    expect(see('user:victim', ids(6, 5), T0 + 2001).kind).toBe('allow')
    expect(see('user:victim', ['11'], T0 + 2002).kind).toBe('disable')
  })

  it('identities that disable themselves in one request cannot unlock a disabled account', () => {
    const { see } = setup(50)
    expect(see('user:mallory', ids(1, 11), T0).kind).toBe('disable')
    for (let i = 0; i < 5_000; i++)
      see(`ip:10.0.${i >> 8}.${i & 255}`, ids(100 + i, 11), T0 + 1 + i, `10.0.${i >> 8}.0/24`)
    // An hour later, every window is empty, yet the disable holds.
    expect(see('user:mallory', ['1'], T0 + 60 * MIN).kind).toBe('disabled')
  })

  it('counts newcomers under their network when full, and a network that crosses a limit is blocked as one', () => {
    const overflowed: string[] = []
    const store = new MemoryStore({ maxAccounts: 10, onOverflow: (_a, key) => overflowed.push(key) })
    const engine = new Engine(store, { disableForMs: 24 * 60 * MIN })
    for (let i = 0; i < 10; i++) engine.observe(`user:clerk${i}`, policy, ['1'], T0)
    // Fresh identities from one /24, one new record each: they share one budget of 10.
    const kinds: string[] = []
    for (let i = 0; i < 12; i++)
      kinds.push(
        (
          engine.observe(`session:s${i}`, policy, [`r${i}`], T0 + i, {
            overflowKey: () => '203.0.113.0/24',
          }) as Decision
        ).kind,
      )
    expect(kinds.slice(0, 10).every((k) => k === 'allow')).toBe(true)
    expect(kinds[10]).toBe('disable')
    expect(kinds[11]).toBe('disabled')
    expect(overflowed[0]).toBe('overflow:203.0.113.0/24')
    const d = engine.observe('session:other', policy, ['x'], T0 + 20, {
      overflowKey: () => '203.0.113.0/24',
    }) as Decision
    expect(d).toMatchObject({ kind: 'disabled', account: 'overflow:203.0.113.0/24' })
    // Another network's newcomer and the tracked clerks are unaffected.
    expect(
      (engine.observe('session:x', policy, ['y'], T0 + 21, { overflowKey: () => '192.0.2.0/24' }) as Decision).kind,
    ).toBe('allow')
    expect((engine.observe('user:clerk3', policy, ['2'], T0 + 22) as Decision).kind).toBe('allow')
    expect(store.size).toBe(12)
  })

  it('an account idle for longer than every window makes room; the overflow pool has a bound and a catch-all', () => {
    const store = new MemoryStore({ maxAccounts: 3 })
    const engine = new Engine(store, { disableForMs: MIN })
    for (let i = 0; i < 3; i++) engine.observe(`a${i}`, policy, ['1'], T0)
    const later = T0 + 10 * MIN
    expect((engine.observe('b', policy, ['1'], later) as Decision).account).toBe('b') // a0 was idle: evicted
    expect(store.account('a0', [policy], later)).toBeNull()
    // 300 networks: the pool holds max(100, maxAccounts / 10); the rest share the catch-all.
    const keys = new Set<string>()
    for (let i = 0; i < 300; i++)
      keys.add(
        (engine.observe(`n${i}`, policy, [], later + 1, { overflowKey: () => `10.${i}.0.0/24` }) as Decision).account,
      )
    expect(keys.has(OVERFLOW_ALL)).toBe(true)
    expect(store.size).toBeLessThanOrEqual(3 + 100 + 1)
  })

  it('session bindings are not pushed out by other logins', () => {
    const store = new MemoryStore({ maxAccounts: 10 })
    store.bindSession('session:alice-old', 'user:alice', 12 * 60 * MIN)
    for (let i = 0; i < 5_000; i++) store.bindSession(`session:${i}`, `user:u${i}`, 12 * 60 * MIN)
    expect(store.sessionAccount('session:alice-old')).toBe('user:alice')
  })

  it('disables and bindings end at their expiry (memory follows what is live)', () => {
    const store = new MemoryStore({ maxAccounts: 10 })
    const engine = new Engine(store, { disableForMs: 1 })
    for (let i = 0; i < 3000; i++) engine.observe(`x${i}`, policy, ids(0, 11), T0 + i)
    expect(store.held.disabled).toBeGreaterThan(0)
    expect(store.disabled('overflow:*', T0 + 10_000)).toEqual([])
  })

  it('reading a counter creates nothing: challenged identities cannot push out what a pass has spent', () => {
    const store = new MemoryStore({ maxAccounts: 10 })
    expect(store.count('pass:mine', 20, 60_000)).toBe(20)
    for (let i = 0; i < 200_000; i++) store.count(`solves:${i}:contact#0`, 0, 60_000)
    expect(store.count('pass:mine', 1, 60_000)).toBe(21)
  })
})
