// redis-server CPU per observation of the Redis store, and the client's, for one or more builds
// of sluice measured in turn against one redis-server (interleaved rounds, so that a neighbour
// stealing the CPU hurts every build alike). The observations are the bench's Redis scenario
// without HTTP: the sensitive route's 3 limits, 10,000 accounts ($ACCOUNTS), the bench's record
// ids, 50 in flight ($CONCURRENCY), made through RedisStore and Engine as the proxy makes them.
// CPU is utime + stime from /proc (Linux), so the numbers hold on a busy machine better than
// requests/s do. Build each tree first (npm run build); copy a build elsewhere to keep it:
//   node bench/redis-hit.js <observations per round> <rounds> <dist dir>...
//   node bench/redis-hit.js 30000 5 /tmp/before/dist dist
// $SCOPED=1 adds scenario 4b's per-network and per-route limits.
// $STATS=1 prints INFO commandstats at the end; $PERF=<file> records `perf record -g` of
// redis-server during the measured rounds.
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const [nArg, roundsArg, ...dists] = process.argv.slice(2)
if (dists.length === 0) throw new Error('usage: node bench/redis-hit.js <observations> <rounds> <dist dir>...')
const N = Number(nArg || 30_000)
const ROUNDS = Number(roundsArg || 3)
const CONCURRENCY = Number(process.env.CONCURRENCY || 50)
const ACCOUNTS = Number(process.env.ACCOUNTS || 10_000)
const SCOPED = process.env.SCOPED === '1'
const STEP = SCOPED ? { network: '127.0.0.0/24' } : undefined
const TICK_US = 1e6 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100)
const cpuUs = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) * TICK_US
}
const port = await new Promise((done) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port
    s.close(() => done(p))
  })
})
const server = spawn(
  'redis-server',
  ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
  { stdio: 'ignore' },
)
try {
  await new Promise((r) => setTimeout(r, 400))
  const url = `redis://127.0.0.1:${port}`
  const builds = []
  for (const dir of dists) {
    const base = pathToFileURL(resolve(dir)).href
    const { RedisStore } = await import(`${base}/store/redis.js`)
    const { buildPolicy } = await import(`${base}/engine/policy.js`)
    const { Engine } = await import(`${base}/engine/engine.js`)
    const policy = buildPolicy(
      'contact',
      [
        { kind: 'requests', windowMs: 60_000, max: 1000, action: 'throttle' },
        { kind: 'distinctRecords', windowMs: 600_000, max: 500, action: 'challenge' },
        { kind: 'distinctRecords', windowMs: 86_400_000, max: 5000, action: 'disable' },
        // $SCOPED=1: bench scenario 4b's limits besides (the load from one network).
        ...(SCOPED
          ? [
              { kind: 'distinctRecords', per: 'network', windowMs: 3_600_000, max: 200_000, action: 'challenge' },
              { kind: 'distinctAccounts', per: 'network', windowMs: 3_600_000, max: 20_000, action: 'challenge' },
              { kind: 'distinctRecords', per: 'route', windowMs: 3_600_000, max: 200_000, action: 'log' },
            ]
          : []),
      ],
      false,
    )
    const store = new RedisStore({
      url,
      keyPrefix: `b${builds.length}:`,
      commandTimeoutMs: 2000,
      onError: 'fail-closed',
      maxAccounts: 10,
    })
    await store.ready()
    builds.push({ dir, store, engine: new Engine(store, { disableForMs: 3_600_000 }), policy, n: 0, rounds: [] })
  }
  const admin = builds[0].store.client
  const stat = (info, key) => Number(new RegExp(`${key}:(\\d+)`).exec(info)?.[1] ?? 0)

  async function round(b) {
    const info0 = await admin.info('stats')
    const redis0 = cpuUs(server.pid)
    const client0 = process.cpuUsage()
    const t0 = performance.now()
    let sent = 0
    let unavailable = 0
    const worker = async () => {
      while (sent < N) {
        sent++
        const n = ++b.n
        const d = await b.engine.observe(
          `acct-${n % ACCOUNTS}`,
          b.policy,
          [String((n * 7919) % 100_000)],
          Date.now(),
          STEP,
        )
        if (d.kind === 'unavailable') unavailable++
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker))
    const ms = performance.now() - t0
    const client = process.cpuUsage(client0)
    const redis = cpuUs(server.pid) - redis0
    const info1 = await admin.info('stats')
    if (unavailable > 0) throw new Error(`${b.dir}: ${unavailable} observations unavailable`)
    b.rounds.push({
      redis: redis / N,
      client: (client.user + client.system) / N,
      perSecond: (N / ms) * 1000,
      reads: (stat(info1, 'total_reads_processed') - stat(info0, 'total_reads_processed')) / N,
    })
  }

  for (const b of builds) await round(b) // warm-up: every account's windows exist
  for (const b of builds) b.rounds = []
  let perf
  if (process.env.PERF) {
    perf = spawn('perf', ['record', '-F', '2000', '-g', '-p', String(server.pid), '-o', process.env.PERF], {
      stdio: 'ignore',
    })
    await new Promise((r) => setTimeout(r, 300))
  }
  for (let r = 0; r < ROUNDS; r++) for (const b of builds) await round(b)
  if (perf) {
    perf.kill('SIGINT')
    await new Promise((r) => perf.once('exit', r))
  }
  const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]
  for (const b of builds) {
    const m = (k) => median(b.rounds.map((x) => x[k]))
    const each = b.rounds.map((x) => x.redis.toFixed(1)).join(' ')
    console.log(
      `${b.dir}: redis-server ${m('redis').toFixed(1)} µs/observation (rounds: ${each}), ` +
        `client ${m('client').toFixed(1)} µs, ${m('perSecond').toFixed(0)} observations/s, ` +
        `${m('reads').toFixed(3)} socket reads/observation`,
    )
  }
  if (process.env.STATS) console.log(await admin.info('commandstats'))
  for (const b of builds) await b.store.close()
} finally {
  server.kill('SIGTERM')
}
