// `npm run bench` (about 4 minutes) and `npm run bench -- --quick` (under 1 minute).
//
// Side by side in one run, interleaved A B C D … for several rounds, on loopback:
//   upstream direct · plain @fastify/http-proxy · sluice (memory, non-sensitive route) ·
//   sluice (memory, sensitive route, 3 limits, 10,000 accounts) · sluice (redis store) ·
//   sluice (memory, the 10 KB list endpoint with its response ids counted)
// The proxies are pinned to CPU 0, the upstream and the load generator to CPU 1 (taskset).
// Ratios to the plain proxy are what count: absolute numbers on a noisy 2-core box are not. A
// ratio is taken within each round (against the plain proxy measured minutes apart at most),
// and the median over rounds reported, with each proxy's CPU time per request beside it.
// Then: memory of one process holding 10k / 100k accounts × 3 routes with full windows, Redis
// memory per active account of the same shape (bench/redis-memory.js), a store-churn flood
// (bench/churn.js: 1,000,000 fresh identities against a full store), and an exactness run
// (200 concurrent connections enumerating records on one account).
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'

const here = dirname(fileURLToPath(import.meta.url))
const quick = process.argv.includes('--quick')
const ROUNDS = quick ? 1 : 5
const DURATION = quick ? 2 : 5
const CONNECTIONS = 50
const ACCOUNTS = 10_000
const hasTaskset = spawnSync('taskset', ['-V']).status === 0 && os.cpus().length >= 2
const hasRedis = spawnSync('redis-server', ['--version']).status === 0
const children = []

function pin(cpu) {
  return hasTaskset ? ['taskset', ['-c', String(cpu), process.execPath]] : [process.execPath, []]
}

function start(kind, args, cpu) {
  const [cmd, pre] = pin(cpu)
  const child = spawn(cmd, [...pre, join(here, 'targets.js'), kind, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(child)
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`${kind} did not start`)), 20_000)
    child.stdout.on('data', (c) => {
      out += c
      const m = /READY (\S+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve({ url: m[1], pid: child.pid })
      }
    })
    child.once('exit', (code) => reject(new Error(`${kind} exited with ${code}`)))
  })
}

async function startRedis() {
  const port = 20_000 + Math.floor(Math.random() * 20_000)
  const [cmd, pre] = hasTaskset ? ['taskset', ['-c', '1', 'redis-server']] : ['redis-server', []]
  const child = spawn(
    cmd,
    [...pre, '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  )
  children.push(child)
  await new Promise((r) => setTimeout(r, 400))
  return { url: `redis://127.0.0.1:${port}`, pid: child.pid }
}

function load(url, { path = 'records', duration = DURATION } = {}) {
  let n = 0
  return autocannon({
    url,
    connections: CONNECTIONS,
    duration,
    requests: [
      {
        method: 'GET',
        setupRequest(req) {
          n++
          // Many accounts rotating, each reading a few records: honest-looking traffic that
          // exercises identity, windows and the store on every request.
          req.path =
            path === 'list'
              ? `/list?page=${n % 20}`
              : path === 'html'
                ? `/list.html?page=${n % 20}`
                : path === 'csv'
                  ? `/export.csv?page=${n % 20}`
                  : `/records/${(n * 7919) % 100_000}`
          req.headers = { ...req.headers, 'x-account-id': `acct-${n % ACCOUNTS}` }
          return req
        },
      },
    ],
  })
}

/**
 * CPU time (user + system, µs) a process has used, from /proc (Linux; null elsewhere). With the
 * proxy pinned to its own CPU, its CPU time per request is the steadiest view of its cost: it
 * hardly moves when a neighbour steals the CPU for a moment, while requests/s does.
 */
const TICK_US = 1e6 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100)
function cpuUs(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) * TICK_US
  } catch {
    return null
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

async function throughput() {
  const upstream = (await start('upstream', [], 1)).url
  const redis = hasRedis ? await startRedis() : undefined
  const redisUrl = redis?.url
  const proxy = async (key, label, args, path) => ({
    key,
    label,
    ...(await start(args[0], args.slice(1), 0)),
    ...(path ? { path } : {}),
  })
  const targets = [
    { key: 'upstream', label: '1. upstream direct', url: upstream, pid: null },
    await proxy('plain', '2. plain @fastify/http-proxy', ['plain', upstream]),
    await proxy('nonsensitive', '3. sluice, memory, non-sensitive route', ['sluice', upstream, 'memory'], 'list'),
    await proxy('sensitive', '4. sluice, memory, sensitive route (3 limits, 10k accounts)', [
      'sluice',
      upstream,
      'memory',
    ]),
  ]
  targets.push(
    await proxy('scoped', '4b. sluice, memory, sensitive route + per-network and per-route limits', [
      'sluice',
      upstream,
      'scoped',
    ]),
  )
  if (redisUrl)
    targets.push(
      await proxy('redis', '5. sluice, redis store, sensitive route', ['sluice', upstream, 'redis', redisUrl]),
    )
  targets.push(
    await proxy(
      'inspect',
      '6. sluice, memory, list endpoint inspected (10 KB JSON)',
      ['sluice', upstream, 'inspect'],
      'list',
    ),
  )
  // The same inspecting process answers the HTML page and the CSV export of the same 50 records.
  const inspecting = targets.at(-1)
  targets.push(
    { ...inspecting, key: 'inspectHtml', label: '6b. sluice, memory, HTML list page inspected (~10 KB)', path: 'html' },
    { ...inspecting, key: 'inspectCsv', label: '6c. sluice, memory, CSV export inspected (~7 KB)', path: 'csv' },
  )
  // The list endpoint is also what the plain proxy serves for the non-sensitive comparison, and
  // the plain proxy serves the page and the export for theirs.
  const plainOn = (key, label, path) => ({ key, label, url: targets[1].url, pid: targets[1].pid, path })
  targets.splice(
    2,
    0,
    plainOn('plainList', '2b. plain proxy, list endpoint', 'list'),
    plainOn('plainHtml', '2c. plain proxy, HTML list page', 'html'),
    plainOn('plainCsv', '2d. plain proxy, CSV export', 'csv'),
  )

  for (const t of targets) await load(t.url, { path: t.path, duration: quick ? 1 : 3 }) // warm-up (JIT)
  const samples = Object.fromEntries(targets.map((t) => [t.key, []]))
  let redisCpu = null
  for (let round = 0; round < ROUNDS; round++) {
    // Each round starts one scenario later, so none always runs right after the same neighbour.
    for (let i = 0; i < targets.length; i++) {
      const t = targets[(i + round) % targets.length]
      // A pause between runs: a process that just finished its run (GC, V8's memory reducer)
      // must not spend the next one's CPU.
      await new Promise((r) => setTimeout(r, quick ? 200 : 1000))
      const before = t.pid ? cpuUs(t.pid) : null
      const redisBefore = t.key === 'redis' ? cpuUs(redis.pid) : null
      const r = await load(t.url, { path: t.path })
      const after = t.pid ? cpuUs(t.pid) : null
      const redisAfter = t.key === 'redis' ? cpuUs(redis.pid) : null
      if (redisBefore !== null && redisAfter !== null && r.requests.total > 0)
        (redisCpu ??= []).push((redisAfter - redisBefore) / r.requests.total)
      const cpu = before !== null && after !== null && r.requests.total > 0 ? (after - before) / r.requests.total : null
      samples[t.key][round] = {
        rps: r.requests.average,
        p50: r.latency.p50,
        p99: r.latency.p99,
        errors: r.errors + r.non2xx,
        cpu,
      }
      process.stderr.write(
        `  round ${round + 1}/${ROUNDS} ${t.label}: ${Math.round(r.requests.average)} req/s, p99 ${r.latency.p99} ms${cpu !== null ? `, ${cpu.toFixed(1)} µs CPU/req` : ''}\n`,
      )
    }
  }
  // Ratios are taken within a round (each scenario against the plain proxy measured in the
  // same minute), then the median over rounds: a noisy minute on a shared VM moves both sides
  // of a ratio together instead of skewing whichever scenario it happened to hit.
  const BASES = { nonsensitive: 'plainList', inspect: 'plainList', plainList: 'plainList' }
  Object.assign(BASES, {
    inspectHtml: 'plainHtml',
    plainHtml: 'plainHtml',
    inspectCsv: 'plainCsv',
    plainCsv: 'plainCsv',
  })
  const baseOf = (key) => BASES[key] ?? 'plain'
  const summary = {}
  for (const t of targets) {
    const s = samples[t.key]
    const base = samples[baseOf(t.key)]
    const cpus = s.map((x) => x.cpu)
    summary[t.key] = {
      label: t.label,
      rps: {
        median: median(s.map((x) => x.rps)),
        min: Math.min(...s.map((x) => x.rps)),
        max: Math.max(...s.map((x) => x.rps)),
      },
      ratio: median(s.map((x, r) => x.rps / base[r].rps)),
      ratioMinMax: [
        Math.min(...s.map((x, r) => x.rps / base[r].rps)),
        Math.max(...s.map((x, r) => x.rps / base[r].rps)),
      ],
      p50: median(s.map((x) => x.p50)),
      p99: median(s.map((x) => x.p99)),
      p99OverBase: median(s.map((x, r) => x.p99 - base[r].p99)),
      errors: s.reduce((a, x) => a + x.errors, 0),
      cpuUsPerRequest: cpus.every((c) => c !== null) ? median(cpus) : null,
      cpuRatio:
        cpus.every((c) => c !== null) && base.every((x) => x.cpu !== null)
          ? median(s.map((x, r) => base[r].cpu / x.cpu))
          : null,
      samples: s,
    }
  }
  if (summary.redis && redisCpu) summary.redis.redisServerCpuUsPerRequest = median(redisCpu)
  return summary
}

function memory() {
  const out = {}
  // Quick mode skips the 100k fill (~40 s): it only has to prove the bench still runs.
  for (const accounts of quick ? [10_000] : [10_000, 100_000]) {
    const res = spawnSync(process.execPath, ['--expose-gc', join(here, 'memory.js'), String(accounts)], {
      encoding: 'utf8',
      timeout: 240_000,
    })
    if (res.status !== 0) throw new Error(`memory bench failed: ${res.stderr}`)
    out[accounts] = JSON.parse(res.stdout)
  }
  if (hasRedis) {
    const res = spawnSync(process.execPath, [join(here, 'redis-memory.js'), String(quick ? 200 : 2000)], {
      encoding: 'utf8',
      timeout: 120_000,
    })
    if (res.status !== 0) throw new Error(`redis memory bench failed: ${res.stderr}`)
    out.redis = JSON.parse(res.stdout)
  }
  return out
}

/** A full store, then a flood of fresh identities (bench/churn.js): memory, time, nobody reset. */
function churn() {
  const [accounts, flood] = quick ? [10_000, 100_000] : [100_000, 1_000_000]
  const res = spawnSync(process.execPath, ['--expose-gc', join(here, 'churn.js'), String(accounts), String(flood)], {
    encoding: 'utf8',
    timeout: 240_000,
  })
  if (res.status !== 0) throw new Error(`churn bench failed: ${res.stderr}`)
  return JSON.parse(res.stdout)
}

async function exactness() {
  const res = spawnSync(process.execPath, [join(here, 'attack.js')], { encoding: 'utf8', timeout: 120_000 })
  if (res.status !== 0) throw new Error(`attack bench failed: ${res.stderr}`)
  return JSON.parse(res.stdout)
}

function targetsReport(t, mem, attack) {
  const lines = []
  const check = (name, ok, got) => lines.push(`| ${name} | ${got} | ${ok ? 'pass' : '**miss**'} |`)
  const ratio = (k) =>
    `${t[k].ratio.toFixed(3)} (rounds ${t[k].ratioMinMax.map((x) => x.toFixed(2)).join('–')}${t[k].cpuRatio ? `; by CPU time ${t[k].cpuRatio.toFixed(3)}` : ''})`
  check('sensitive route (memory) ≥ 0.90 × plain proxy req/s', t.sensitive.ratio >= 0.9, ratio('sensitive'))
  check(
    'sensitive route (memory) p99 within +1 ms of plain',
    t.sensitive.p99OverBase <= 1,
    `${t.sensitive.p99OverBase >= 0 ? '+' : ''}${t.sensitive.p99OverBase.toFixed(2)} ms`,
  )
  check('non-sensitive route ≥ 0.97 × plain proxy req/s', t.nonsensitive.ratio >= 0.97, ratio('nonsensitive'))
  // Legacy answers: HTML and CSV inspection aimed at ≥ 0.7 × the plain proxy on the same answer.
  if (t.inspectHtml)
    check('HTML list page inspected ≥ 0.70 × plain (aim)', t.inspectHtml.ratio >= 0.7, ratio('inspectHtml'))
  if (t.inspectCsv) check('CSV export inspected ≥ 0.70 × plain (aim)', t.inspectCsv.ratio >= 0.7, ratio('inspectCsv'))
  if (t.scoped) {
    // Within 5 % of the account-only cost: by throughput and by CPU time per request.
    const byRps = t.scoped.ratio / t.sensitive.ratio
    const byCpu =
      t.sensitive.cpuUsPerRequest && t.scoped.cpuUsPerRequest
        ? t.sensitive.cpuUsPerRequest / t.scoped.cpuUsPerRequest
        : null
    check(
      'sensitive route with network and route keys ≥ 0.95 × account-only',
      byRps >= 0.95,
      `${byRps.toFixed(3)}${byCpu !== null ? ` (by CPU time ${byCpu.toFixed(3)})` : ''}`,
    )
  }
  if (t.redis) check('redis store ≥ 0.75 × plain proxy req/s', t.redis.ratio >= 0.75, ratio('redis'))
  const rss = mem['100000']?.rssMB
  if (rss === undefined) lines.push('| 100,000 accounts × 3 routes ≤ 300 MB RSS | not measured in --quick | – |')
  else check('100,000 accounts × 3 routes ≤ 300 MB RSS', rss <= 300, `${rss} MB`)
  check(
    'records served in the attack run = the limit',
    attack.served === attack.limit,
    `${attack.served} / ${attack.limit}`,
  )
  if (mem.churn) {
    const c = mem.churn
    const [kept, of] = c.intact.split(' / ')
    const [held, was] = c.stillDisabled.split(' / ')
    check(
      `${c.flood.toLocaleString('en-US')} fresh identities reset or unlock no account`,
      kept === of && held === was,
      `${c.intact} counts kept, ${c.stillDisabled} disables held`,
    )
  }
  return lines
}

function markdown(t, mem, attack, machine) {
  const rows = Object.values(t).map((s) => {
    const cpu = s.cpuUsPerRequest === null ? '–' : s.cpuUsPerRequest.toFixed(1)
    return `| ${s.label} | ${Math.round(s.rps.median)} (${Math.round(s.rps.min)}–${Math.round(s.rps.max)}) | ${s.ratio.toFixed(3)} | ${s.p50} | ${s.p99} | ${cpu} | ${s.errors} |`
  })
  return [
    `Machine: ${machine.cpus} × ${machine.cpu}, ${machine.memGB} GB, Node ${process.version}, ${machine.pinned ? 'proxies pinned to CPU 0, load + upstream to CPU 1' : 'not pinned'}; ${ROUNDS} interleaved round(s) of ${DURATION} s, ${CONNECTIONS} connections.`,
    '',
    '| scenario | req/s median (min–max) | ratio to plain proxy (median of rounds) | p50 ms | p99 ms | proxy CPU µs/req | non-2xx/errors |',
    '|---|---|---|---|---|---|---|',
    ...rows,
    '',
    "(Each ratio is taken within a round, against the plain proxy measured in the same minute, and the median over rounds is shown. The non-sensitive and inspected scenarios are compared with the plain proxy on the same answer: the list endpoint (2b), the HTML page (2c), the CSV export (2d). Proxy CPU per request is the proxy process's user + system time over the requests it served: the least noisy view of its cost.)",
    ...(t.redis?.redisServerCpuUsPerRequest
      ? [
          '',
          `redis-server CPU per observation (on CPU 1 with the load generator and the upstream): ${t.redis.redisServerCpuUsPerRequest.toFixed(1)} µs.`,
        ]
      : []),
    '',
    '| memory (memory store, 3 routes, full windows) | accounts | RSS MB | heap used MB |',
    '|---|---|---|---|',
    ...Object.entries(mem)
      .filter(([n]) => n !== 'redis' && n !== 'churn')
      .map(([n, m]) => `| ${m.describe} | ${n} | ${m.rssMB} | ${m.heapUsedMB} |`),
    ...(mem.churn
      ? [
          '',
          `Store churn: ${mem.churn.accounts.toLocaleString('en-US')} accounts with open windows, then ${mem.churn.flood.toLocaleString('en-US')} fresh identities each naming limit + 1 records: ${mem.churn.floodSeconds} s, RSS ${mem.churn.rssMB.before} → ${mem.churn.rssMB.after} MB, heap ${mem.churn.heapUsedMB.before} → ${mem.churn.heapUsedMB.after} MB, ${mem.churn.storeSize.toLocaleString('en-US')} keys held (the overflow pool included), ${mem.churn.held.disabled.toLocaleString('en-US')} disables; ${mem.churn.intact} real accounts kept their counts, ${mem.churn.stillDisabled} stayed disabled.`,
        ]
      : []),
    ...(mem.redis
      ? [
          '',
          `Redis store, ${mem.redis.describe}: **${mem.redis.bytesPerAccount} bytes per active account** (\`used_memory\` delta over ${mem.redis.accounts} accounts); \`MEMORY USAGE\` of one route's keys: requests ${mem.redis.memoryUsagePerRoute.requests} B, records ${mem.redis.memoryUsagePerRoute.records} B.`,
        ]
      : []),
    '',
    `Attack: ${attack.connections} concurrent connections enumerating records on one account, limit ${attack.limit} distinct records → **${attack.served} served**, ${attack.blocked} blocked; first block ${attack.firstBlockAfterMs} ms after the limit-th record was served.`,
    '',
    '| target | measured | |',
    '|---|---|---|',
    ...targetsReport(t, mem, attack),
  ].join('\n')
}

try {
  const machine = {
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memGB: Math.round(os.totalmem() / 2 ** 30),
    pinned: hasTaskset,
  }
  if (hasTaskset) spawnSync('taskset', ['-cp', '1', String(process.pid)])
  process.stderr.write(
    `sluice bench${quick ? ' (quick)' : ''}: ${ROUNDS} round(s) × ${DURATION}s${hasRedis ? '' : ' (no redis-server: redis scenario skipped)'}\n`,
  )
  const t = await throughput()
  for (const c of children.splice(0)) c.kill('SIGTERM')
  process.stderr.write('  memory…\n')
  const mem = memory()
  process.stderr.write('  churn…\n')
  mem.churn = churn()
  process.stderr.write('  attack…\n')
  const attack = await exactness()
  const report = markdown(t, mem, attack, machine)
  mkdirSync(join(here, 'results'), { recursive: true })
  writeFileSync(
    join(here, 'results', 'latest.json'),
    JSON.stringify({ date: new Date().toISOString(), quick, machine, throughput: t, memory: mem, attack }, null, 2),
  )
  writeFileSync(join(here, 'results', 'latest.md'), `${report}\n`)
  console.log(report)
} finally {
  for (const c of children) c.kill('SIGTERM')
}
