// Network, route and distinct-account limits on the Redis store: the same decisions as the
// memory store on random traces (standalone: one script, all keys), exact across two proxies
// sharing Redis, and on Redis Cluster (a call per owner slot).
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Engine, type Decision } from '../../src/engine/engine.js'
import { buildPolicy } from '../../src/engine/policy.js'
import { MemoryStore } from '../../src/store/memory.js'
import { RedisStore } from '../../src/store/redis.js'
import { hasRedis, startCluster, startRedis, type RedisCluster, type RedisServer } from '../helpers/redis.js'
import { capacityOf, scopedLimitArb, scopedStepArb } from '../helpers/scoped-reference.js'

const store = (opts: { url?: string; cluster?: string[] }, keyPrefix: string) =>
  new RedisStore({
    ...opts,
    keyPrefix,
    commandTimeoutMs: 2000,
    onError: 'fail-closed',
    maxAccounts: 10,
    clock: 'local',
  })

async function sameAsMemory(redis: RedisStore, runs: number, onePer = false): Promise<void> {
  let run = 0
  const limitsArb = onePer
    ? fc.constantFrom('account' as const, 'network' as const, 'route' as const).chain((per) =>
        fc.array(
          scopedLimitArb.map((l) => ({ ...l, per })),
          { minLength: 1, maxLength: 4 },
        ),
      )
    : fc.array(scopedLimitArb, { minLength: 1, maxLength: 4 })
  await fc.assert(
    fc.asyncProperty(limitsArb, fc.array(scopedStepArb, { maxLength: 50 }), async (limits, steps) => {
      const disableForMs = 4000
      // A fresh route name per run: route keys are shared by every account.
      const policy = buildPolicy(`r${run++}`, limits, false)
      const memory = new Engine(new MemoryStore({ maxAccounts: 100 }), { disableForMs })
      const shared = new Engine(redis, { disableForMs })
      const tag = `-${run}`
      let now = 1_000_000
      for (const step of steps) {
        now += step.gap
        const extra = { network: `${step.network}${tag}` }
        const want = memory.observe(step.account + tag, policy, step.records, now, extra) as Decision
        const got = await shared.observe(step.account + tag, policy, step.records, now, extra)
        const full = policy.limits.some(
          (l) => l.kind !== 'requests' && (want.counts[l.index] ?? 0) >= capacityOf(policy, l),
        )
        if (full) break
        expect(got.kind).toBe(want.kind)
        expect(got.account).toBe(want.account)
        expect(got.block).toBe(want.block)
        if (want.kind !== 'disabled') expect(got.counts).toEqual(want.counts)
      }
    }),
    { numRuns: runs },
  )
}

describe.skipIf(!hasRedis)('scoped limits on Redis', () => {
  let server: RedisServer
  beforeAll(async () => {
    server = await startRedis()
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('make the same decisions with the same counts as the memory store on random traces', async () => {
    const redis = store({ url: server.url }, 'scopes:')
    await redis.ready()
    try {
      await sameAsMemory(redis, 120)
    } finally {
      await redis.close()
    }
  })

  it('two proxies on one Redis never let the N+1-th record of a network through', async () => {
    const a = store({ url: server.url }, 'two:')
    const b = store({ url: server.url }, 'two:')
    await Promise.all([a.ready(), b.ready()])
    try {
      const policy = buildPolicy(
        'contact',
        [{ per: 'network', windowMs: 3_600_000, kind: 'distinctRecords', max: 100, action: 'throttle' }],
        false,
      )
      const engines = [new Engine(a, { disableForMs: 60_000 }), new Engine(b, { disableForMs: 60_000 })]
      const now = Date.now()
      // 40 accounts of one /24, 10 records each, half through each proxy, all at once.
      const decisions = await Promise.all(
        Array.from({ length: 400 }, (_, i) =>
          engines[i % 2]!.observe(`user:u${i % 40}`, policy, [`rec${i}`], now, { network: '203.0.113.0/24' }),
        ),
      )
      expect(decisions.filter((d) => !d.block)).toHaveLength(100)
      for (const d of decisions.filter((x) => x.block)) expect(d.account).toBe('net:203.0.113.0/24')
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })
})

describe.skipIf(!hasRedis)('scoped limits on Redis Cluster', () => {
  let cluster: RedisCluster
  beforeAll(async () => {
    cluster = await startCluster()
  }, 60_000)
  afterAll(async () => {
    await cluster?.stop()
  })

  // A call per owner slot: each owner's windows are exact on their own; across owners a request
  // blocked by a later call may have spent an earlier owner's budget (docs/redis.md).
  it('decide as the memory store does when a route keys its limits by one owner', async () => {
    const redis = store({ cluster: cluster.urls }, 'cl:')
    await redis.ready()
    try {
      await sameAsMemory(redis, 40, true)
    } finally {
      await redis.close()
    }
  })

  it('stop a network at exactly its limit across two proxies, beside account limits', async () => {
    const a = store({ cluster: cluster.urls }, 'cl2:')
    const b = store({ cluster: cluster.urls }, 'cl2:')
    await Promise.all([a.ready(), b.ready()])
    try {
      const policy = buildPolicy(
        'contact',
        [
          { windowMs: 600_000, kind: 'distinctRecords', max: 5, action: 'challenge' },
          { per: 'network', windowMs: 3_600_000, kind: 'distinctRecords', max: 60, action: 'throttle' },
        ],
        false,
      )
      const engines = [new Engine(a, { disableForMs: 60_000 }), new Engine(b, { disableForMs: 60_000 })]
      const now = Date.now()
      const decisions = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          engines[i % 2]!.observe(`user:u${i % 20}`, policy, [`rec${i}`], now, { network: '203.0.113.0/24' }),
        ),
      )
      // 20 accounts × 5 = 100 allowed by the account limits; the network stops them at 60.
      expect(decisions.filter((d) => !d.block)).toHaveLength(60)
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })
})
