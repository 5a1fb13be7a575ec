// Networks' and routes' windows (wide logs) survive a state file like accounts' do: a store
// restored from one decides exactly as the store that wrote it.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Engine, type Decision } from '../../src/engine/engine.js'
import { buildPolicy } from '../../src/engine/policy.js'
import { MemoryStore } from '../../src/store/memory.js'
import { readState, writeState } from '../../src/store/state.js'
import { WideLog } from '../../src/store/wide.js'

const dir = mkdtempSync(join(tmpdir(), 'sluice-wide-state-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('state file: network and route windows', () => {
  it('restores them exactly, a large route log across sections included', async () => {
    const policy = buildPolicy(
      'contact',
      [
        { windowMs: 600_000, kind: 'distinctRecords', max: 1000, action: 'throttle' },
        { per: 'network', windowMs: 3_600_000, kind: 'distinctRecords', max: 300, action: 'throttle' },
        { per: 'network', windowMs: 3_600_000, kind: 'distinctAccounts', max: 5, action: 'challenge' },
        { per: 'network', windowMs: 60_000, kind: 'requests', max: 400, action: 'throttle' },
        { per: 'route', windowMs: 3_600_000, kind: 'distinctRecords', max: 50_000, action: 'log' },
      ],
      false,
    )
    const original = new MemoryStore({ maxAccounts: 1000 })
    const engine = new Engine(original, { disableForMs: 60_000 })
    const at = (i: number) => ({ network: `10.0.${i % 3}.0/24` })
    let now = Date.now() - 30_000
    // 45,000 records on the route (more than two sections of 20,000), a few hundred per network.
    for (let i = 0; i < 45_000; i++) engine.observe(`u${i % 12}`, policy, [`r${i}`], now, at(i))
    now += 1000
    const path = join(dir, 'state')
    await writeState(original, path)
    const restored = new MemoryStore({ maxAccounts: 1000 })
    const report = await readState(restored, path)
    expect(report.problems).toEqual([])
    const again = new Engine(restored, { disableForMs: 60_000 })
    for (let i = 0; i < 40; i++) {
      const records = [`r${i * 997}`, `new${i}`]
      const want = engine.observe(`u${i % 15}`, policy, records, now + i, at(i)) as Decision
      const got = again.observe(`u${i % 15}`, policy, records, now + i, at(i)) as Decision
      expect({ i, kind: got.kind, account: got.account, counts: got.counts }).toEqual({
        i,
        kind: want.kind,
        account: want.account,
        counts: want.counts,
      })
    }
  })
})

describe('a wide log saved before records were hashed', () => {
  it('reads [id, time] entries as the records they name', () => {
    const policy = buildPolicy(
      'contact',
      [{ per: 'route', windowMs: 3_600_000, kind: 'distinctRecords', max: 3, action: 'throttle' }],
      false,
    )
    const route = policy.parts?.find((p) => p.per === 'route')?.policy ?? policy
    const t = Date.now() - 1000
    const old = new WideLog(route, {
      newest: t,
      requests: [],
      records: [
        ['r1', t],
        ['r2', t],
        ['r3', t],
      ],
    })
    old.adopt(route)
    const counts = new Array<number>(route.slots).fill(0)
    // The three are held: re-reading one is free, a fourth crosses the limit.
    expect(old.decide(['r2'], t + 10, true, undefined, counts, null)).toBeNull()
    expect(old.decide(['r4'], t + 10, true, undefined, counts, null)?.max).toBe(3)
    // Saved again, they come back as hashes, and read the same.
    const again = new WideLog(route, old.save())
    again.adopt(route)
    expect(again.save().records).toEqual(old.save().records)
    expect(again.decide(['r1', 'r3'], t + 20, true, undefined, counts, null)).toBeNull()
  })
})
