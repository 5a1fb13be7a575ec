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
