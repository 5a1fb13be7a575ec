// A/B of sluice targets by CPU time per request: each target in its own process (targets.js),
// loaded in turn for a few seconds over several rounds (interleaved, so that a neighbour's load
// falls on all of them alike), CPU time (utime + stime from /proc/<pid>/stat) ÷ requests served.
//   node bench/ab.js [--rounds 6] [--seconds 4] [--warm 8] [--prof dir] [--node-args "..."] [--path list|html|csv]
//     label=scenario[@dist/index.js] ...
// e.g. node bench/ab.js 4=memory 4b=scoped base4b=scoped@/tmp/base/dist/index.js
// A scenario is one of targets.js's sluice scenarios, or `plain` (the plain @fastify/http-proxy).
// --node-args: node flags for every target, e.g. "--trace-gc" (a target's stdout, which holds
// its GC trace, is written to <label>.log in the --prof dir, or the working directory).
// (after npm run build; Linux only; the targets run on this node binary).
import { spawn, spawnSync } from 'node:child_process'
import { createWriteStream, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { pathOf } from './configs.js'

const here = dirname(fileURLToPath(import.meta.url))
const argv = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`)
  if (i < 0) return dflt
  const v = argv[i + 1]
  argv.splice(i, 2)
  return v
}
const ROUNDS = Number(opt('rounds', 6))
const SECONDS = Number(opt('seconds', 4))
const WARM = Number(opt('warm', 8))
const PROF = opt('prof', null)
const NODE_ARGS = (opt('node-args', '') ?? '').split(' ').filter(Boolean)
// --path: what the load asks for, as bench/run.js's scenarios do (default: a record by id).
const PATH = opt('path', 'records')
const specs = argv.map((a) => {
  const [label, rest] = a.split('=')
  const [scenario, dist] = rest.split('@')
  return { label, scenario, dist }
})
const TICK_US = 1e6 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100)
const children = []
const stopAll = () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM')
}
process.on('exit', stopAll)
process.on('SIGINT', () => process.exit(1))

function start(args, env = {}, nodeArgs = [], logFile = null) {
  const child = spawn(process.execPath, [...nodeArgs, join(here, 'targets.js'), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  })
  children.push(child)
  return new Promise((resolve, reject) => {
    let out = ''
    if (logFile) child.stdout.pipe(createWriteStream(logFile))
    const timer = setTimeout(() => reject(new Error('did not start')), 30_000)
    const ready = (c) => {
      out += c
      const m = /READY (\S+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        child.stdout.off('data', ready)
        resolve({ url: m[1], pid: child.pid, child })
      }
    }
    child.stdout.on('data', ready)
  })
}

function cpuUs(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) * TICK_US
}

function load(url, duration) {
  let n = 0
  return autocannon({
    url,
    connections: 50,
    duration,
    requests: [
      {
        method: 'GET',
        setupRequest(req) {
          n++
          req.path = pathOf(PATH, n)
          req.headers = { ...req.headers, 'x-account-id': `acct-${n % 10_000}` }
          return req
        },
      },
    ],
  })
}

const upstream = await start(['upstream'])
const targets = []
for (const s of specs) {
  const env = s.dist ? { SLUICE_BENCH_DIST: s.dist } : {}
  const nodeArgs = [...NODE_ARGS]
  if (PROF) nodeArgs.push('--cpu-prof', '--cpu-prof-dir', PROF, '--cpu-prof-name', `${s.label}.cpuprofile`)
  const args = s.scenario === 'plain' ? ['plain', upstream.url] : ['sluice', upstream.url, s.scenario]
  const logFile = NODE_ARGS.length > 0 ? join(PROF ?? '.', `${s.label}.log`) : null
  targets.push({ ...s, ...(await start(args, env, nodeArgs, logFile)), samples: [] })
}
for (const t of targets) await load(t.url, WARM)
for (let r = 0; r < ROUNDS; r++) {
  // Alternate the order every round.
  const order = r % 2 ? [...targets].reverse() : targets
  for (const t of order) {
    const before = cpuUs(t.pid)
    const res = await load(t.url, SECONDS)
    const used = cpuUs(t.pid) - before
    const n = res.requests.total
    t.samples.push({ rps: n / SECONDS, us: used / n, errors: res.errors + res.non2xx })
  }
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const first = targets[0]
for (const t of targets) {
  const us = t.samples.map((x) => x.us)
  const ratio = t.samples.map((x, i) => first.samples[i].us / x.us)
  console.log(
    `${t.label.padEnd(8)} cpu µs/req median ${median(us).toFixed(1)} [${us.map((x) => x.toFixed(1)).join(' ')}]` +
      `  req/s ${Math.round(median(t.samples.map((x) => x.rps)))}  ${first.label}/this by cpu ${median(ratio).toFixed(3)}` +
      `  errors ${t.samples.reduce((a, x) => a + x.errors, 0)}`,
  )
}
// Profiles are written on a clean exit.
for (const t of targets) {
  const exited = new Promise((r) => t.child.once('exit', r))
  t.child.kill('SIGINT')
  await exited
}
stopAll()
process.exit(0)
