// A disable keeps what made it: the limit and since when, in both stores and across a restart
// with a state file — so `sluice accounts show` can say why on any instance, any time.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Engine } from '../../src/engine/engine.js'
import { buildPolicy } from '../../src/engine/policy.js'
import type { DisableStore, CountingStore } from '../../src/engine/store.js'
import { MemoryStore } from '../../src/store/memory.js'
import { RedisStore } from '../../src/store/redis.js'
import { readState, writeState } from '../../src/store/state.js'
import { hasRedis, startRedis, type RedisServer } from '../helpers/redis.js'

const policy = buildPolicy(
  'contact',
  [
    { windowMs: 60_000, kind: 'requests', max: 100, action: 'throttle' },
    { windowMs: 600_000, kind: 'distinctRecords', max: 3, action: 'disable' },
  ],
  false,
)

async function disableOne(store: CountingStore & DisableStore, account: string, at: number): Promise<void> {
  const engine = new Engine(store, { disableForMs: 3_600_000 })
  for (let i = 1; i <= 4; i++) await engine.observe(account, policy, [`r${i}`], at + i)
}

describe('the why of a disable', () => {
  it('memory store: the limit and since when, gone with an unlock, kept in the state file', async () => {
    const store = new MemoryStore({ maxAccounts: 10 })
    const at = Date.now()
    await disableOne(store, 'user:mallory', at)
    expect(store.disabled('user:mallory', at + 10)).toEqual([
      { account: 'user:mallory', until: at + 4 + 3_600_000, shadow: false, limit: 'contact#1', since: at + 4 },
    ])
    const dir = mkdtempSync(join(tmpdir(), 'sluice-why-'))
    try {
      await writeState(store, join(dir, 'state'))
      const again = new MemoryStore({ maxAccounts: 10 })
      await readState(again, join(dir, 'state'))
      expect(again.disabled('user:mallory', at + 10)[0]).toMatchObject({ limit: 'contact#1', since: at + 4 })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    store.unlock('user:mallory')
    await disableOne(store, 'user:mallory', at + 100) // counts still over: disabled again, a new since
    const [again] = store.disabled('user:mallory', at + 200)
    expect(again?.limit).toBe('contact#1')
    expect(again?.since).toBeGreaterThan(at + 100)
  })

  describe.skipIf(!hasRedis)('redis store', () => {
    let server: RedisServer
    beforeAll(async () => {
      server = await startRedis()
    })
    afterAll(async () => {
      await server?.stop()
    })
    it('keeps it beside the disable, for every instance', async () => {
      const options = { url: server.url, keyPrefix: 'why:', commandTimeoutMs: 2000, onError: 'fail-closed' as const }
      const a = new RedisStore({ ...options, maxAccounts: 10, clock: 'local' })
      const b = new RedisStore({ ...options, maxAccounts: 10, clock: 'local' })
      await Promise.all([a.ready(), b.ready()])
      try {
        const at = Date.now()
        await disableOne(a, 'user:trudy', at)
        const [state] = await b.disabled('user:trudy', at + 10)
        expect(state).toMatchObject({ shadow: false, limit: 'contact#1', since: at + 4 })
        expect((await b.account('user:trudy', [policy], at + 10))?.disabled[0]).toMatchObject({ limit: 'contact#1' })
        expect(await b.unlock('user:trudy')).toBe(true)
        expect(await a.disabled('user:trudy', at + 10)).toEqual([])
      } finally {
        await Promise.all([a.close(), b.close()])
      }
    })
  })
})
