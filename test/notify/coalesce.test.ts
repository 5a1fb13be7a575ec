// The coalescer on its own, with a clock of its own: the threshold, the interval, the sample and
// the bound on its state.
import { describe, expect, it } from 'vitest'
import { Coalescer } from '../../src/notify/coalesce.js'

function coalescer(options?: ConstructorParameters<typeof Coalescer>[0]) {
  const emitted: Record<string, unknown>[] = []
  return { c: new Coalescer(options, (s) => void emitted.push(s)), emitted }
}

describe('Coalescer', () => {
  it('lets the first 5 of a (route, type) per 10 s through, folds the rest into one summary emitted when the interval ends', () => {
    const { c, emitted } = coalescer()
    const offers = Array.from({ length: 50 }, (_, i) =>
      c.offer({ type: 'disable', route: 'contact', account: `a${i}`, time: `t${i}` }, 1000 + i),
    )
    expect(offers.filter((o) => !o.fold)).toHaveLength(5)
    const ids = new Set(offers.flatMap((o) => (o.fold ? [o.id] : [])))
    expect(ids.size).toBe(1)
    expect(offers.filter((o) => o.fold && o.started)).toHaveLength(1)
    // Another route, another type: their own 5.
    expect(c.offer({ type: 'disable', route: 'export', account: 'mallory' }, 1100).fold).toBe(false)
    expect(c.offer({ type: 'throttle', route: 'contact', account: 'a0' }, 1100).fold).toBe(false)

    expect(c.flushDue(10_999)).toBe(11_000)
    expect(emitted).toHaveLength(0)
    expect(c.flushDue(11_000)).toBe(Infinity)
    expect(emitted).toEqual([
      {
        type: 'disable',
        id: [...ids][0],
        time: new Date(11_000).toISOString(),
        coalesced: true,
        route: 'contact',
        count: 45,
        individually: 5,
        accounts: Array.from({ length: 20 }, (_, i) => `a${i + 5}`),
        accountsTruncated: true,
        firstTime: 't5',
        lastTime: 't49',
        intervalMs: 10_000,
      },
    ])
    expect(c.folded).toBe(45)
    expect(c.summaries).toBe(1)
    // A new interval starts over.
    expect(c.offer({ type: 'disable', route: 'contact', account: 'a99' }, 11_001).fold).toBe(false)
  })

  it('emits an expired summary when the next incident of its (route, type) comes, without waiting for flushDue', () => {
    const { c, emitted } = coalescer({ intervalMs: 100, individually: 1 })
    c.offer({ type: 'challenge', route: 'r' }, 0)
    c.offer({ type: 'challenge', route: 'r' }, 1)
    c.offer({ type: 'challenge', route: 'r' }, 2)
    expect(c.offer({ type: 'challenge', route: 'r' }, 150).fold).toBe(false)
    expect(emitted).toMatchObject([{ type: 'challenge', route: 'r', count: 2, accounts: [] }])
  })

  it('keeps a bounded number of (route, type) entries: beyond maxKeys, one shared entry per type', () => {
    const { c, emitted } = coalescer({ maxKeys: 3, individually: 1 })
    const folds = Array.from({ length: 1000 }, (_, i) =>
      c.offer({ type: 'disable', route: `r${i}`, account: `a${i}` }, i % 5),
    ).filter((o) => o.fold).length
    // r0, r1, r2 on their own; then the overflow entry: its first on its own, the rest folded.
    expect(folds).toBe(1000 - 4)
    c.flushAll(10)
    expect(emitted).toHaveLength(1)
    expect(emitted[0]).toMatchObject({ type: 'disable', count: 996, accountsTruncated: true })
    expect(emitted[0]?.route).toBeUndefined()
    expect((emitted[0]?.accounts as string[]).length).toBe(20)
  })
})
