// Memory per active account in Redis, and proof that windows stay within their caps.
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildPolicy } from '../../src/engine/policy.js'
import { hasRedis, redisEngine, startRedis, type RedisServer } from '../helpers/redis.js'

let server: RedisServer
beforeAll(async () => {
  server = await startRedis()
})
afterAll(async () => {
  await server?.stop()
})

describe.skipIf(!hasRedis)('redis memory', () => {
  it('holds at most limit + 1 entries per window and reports bytes per account', async () => {
    const { store, engine } = await redisEngine(server.url, 'mem:')
    const policy = buildPolicy(
      'contact',
      [
        { kind: 'requests', windowMs: 60_000, max: 60, action: 'log' },
        { kind: 'distinctRecords', windowMs: 600_000, max: 100, action: 'log' },
      ],
      false,
    )
    const probe = new Redis(server.url)
    const before = Number(/used_memory:(\d+)/.exec(await probe.info('memory'))?.[1])
    const accounts = 200
    for (let a = 0; a < accounts; a++) {
      // 150 requests for 150 different records: past both caps (log limits never block).
      await Promise.all(
        Array.from({ length: 150 }, (_, i) => engine.observe(`acct-${a}`, policy, [String(100_000 + i)])),
      )
    }
    const after = Number(/used_memory:(\d+)/.exec(await probe.info('memory'))?.[1])
    const [q, d] = store.keys('acct-7', 'contact')
    expect(await probe.zcard(q as string)).toBe(61) // 150 requests within a few ms: each counted once (":seq" members)
    expect(await probe.zcard(d as string)).toBe(101)
    const perKey = {
      requests: Number(await probe.memory('USAGE', q as string)),
      records: Number(await probe.memory('USAGE', d as string)),
    }
    const perAccount = Math.round((after - before) / accounts)
    console.log(
      `redis memory per active account (61 request timestamps + 101 record ids): ${perAccount} bytes (used_memory delta); MEMORY USAGE requests zset ${perKey.requests} B, records zset ${perKey.records} B`,
    )
    expect(perAccount).toBeLessThan(20_000)
    probe.disconnect()
    await store.close()
  }, 60_000)
})
