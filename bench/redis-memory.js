// Redis memory per active account (Redis store): N accounts × 3 routes with full windows, the
// same shape as bench/memory.js, in a redis-server of its own. Run by bench/run.js; prints JSON.
//   node bench/redis-memory.js [accounts]
import { spawn } from 'node:child_process'
import { Redis } from 'ioredis'
import { Engine } from '../dist/index.js'
import { RedisStore } from '../dist/store/redis.js'
import { DESCRIBE, FILL, recordsOf, ROUTES } from './shape.js'

const accounts = Number(process.argv[2] ?? 1000)

const port = 20_000 + Math.floor(Math.random() * 20_000)
const server = spawn(
  'redis-server',
  ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
  { stdio: 'ignore' },
)
try {
  const url = `redis://127.0.0.1:${port}`
  // ioredis retries until the server listens.
  const probe = new Redis(url, { retryStrategy: () => 100 })
  probe.on('error', () => {})
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('redis-server did not start')), 10_000)
    probe.once('ready', () => resolve(clearTimeout(timer)))
  })
  const store = new RedisStore({
    url,
    keyPrefix: 'mem:',
    commandTimeoutMs: 5000,
    onError: 'fail-closed',
    maxAccounts: 10,
    clock: 'local',
  })
  await store.ready()
  const engine = new Engine(store, { disableForMs: 60_000 })
  const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await probe.info('memory'))?.[1])
  const before = await usedMemory()
  const now = Date.now()
  const BATCH = 50
  for (let a0 = 0; a0 < accounts; a0 += BATCH) {
    // Accounts of a batch in parallel, each account's observations in order: 31 requests and
    // 21 distinct records per route (every window at its cap), within one second.
    await Promise.all(
      Array.from({ length: Math.min(BATCH, accounts - a0) }, async (_, k) => {
        const a = a0 + k
        for (const policy of ROUTES) {
          for (let i = 0; i < FILL; i++) {
            const d = await engine.observe(`acct-${a}`, policy, recordsOf(a, i), now + i)
            if (d.kind === 'unavailable') throw new Error('redis unavailable')
          }
        }
      }),
    )
  }
  const after = await usedMemory()
  const keys = ROUTES.flatMap((p) => store.keys('acct-7', p.name).slice(0, 2))
  const perKey = await Promise.all(keys.map((k) => probe.memory('USAGE', k)))
  console.log(
    JSON.stringify({
      describe: DESCRIBE,
      accounts,
      bytesPerAccount: Math.round((after - before) / accounts),
      memoryUsagePerRoute: { requests: Number(perKey[0]), records: Number(perKey[1]) },
    }),
  )
  probe.disconnect()
  await store.close()
} finally {
  server.kill('SIGTERM')
}
