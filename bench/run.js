// `npm run bench` (about 9 minutes) and `npm run bench -- --quick` (under 1 minute; CI's smoke run).
//
// Side by side in one run, interleaved A B C D … for several rounds, on loopback:
//   upstream direct · plain @fastify/http-proxy · raw node:http + undici (the Node ceiling) ·
//   nginx limit_req keyed by the account header (nginx-light, one worker) · sluice (memory,
//   non-sensitive route) · sluice (memory, sensitive route, 3 limits, 10,000 accounts) · sluice
//   (redis store) · sluice (memory, the 10 KB list endpoint with its response ids counted) · …
// Nothing is pinned by default (users do not pin): that run is the headline. `--pin` pins the
// proxies to CPU 0 and the upstream, Redis and the load generator to CPU 1 (taskset).
// Ratios to the plain proxy are what count: absolute numbers on a noisy 2-core box are not. A
// ratio is taken within each round (against the plain proxy measured minutes apart at most),
// and the median over rounds reported, with the CPU-time ratio (each proxy's user + system time
// per request, from /proc) beside it.
// Then: memory of one process holding 10k / 100k accounts × 3 routes with full windows, Redis
// memory per active account of the same shape (bench/redis-memory.js), a store-churn flood
// (bench/churn.js: 1,000,000 fresh identities against a full store), and an exactness run
// (200 concurrent connections enumerating records on one account).
//
// Options (after `npm run bench --`):
//   --quick             1 round of 2 s, no 100k memory fill (CI)
//   --rounds N          interleaved rounds (default 5)
//   --duration S        seconds per run (default 5)
//   --pin               pin proxies to CPU 0, everything else to CPU 1 (default: unpinned)
//   --compare <ref>     build <ref> in a temporary git worktree and run its sluice scenarios
//                       interleaved with this working tree's, reporting working ÷ ref
//   --node <spec>[,…]   run the whole bench under another Node: a path to a node binary, or a
//                       version (24, 22.13.0) installed from npm's node-linux-<arch> package into
//                       ~/.cache/sluice-node/<version> ($SLUICE_NODE_CACHE); several run in turn
//   --throughput-only   skip the memory, churn and exactness parts
//   --cli               start sluice's scenarios with its CLI and a YAML file (`sluice start -c`,
//                       its own logger at the config's level) instead of buildProxy in bench/targets.js
import { spawn, spawnSync } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { configFor, pathOf } from './configs.js'

const here = dirname(fileURLToPath(import.meta.url))
const root = resolve(here, '..')
const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    pin: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    compare: { type: 'string' },
    node: { type: 'string' },
    'throughput-only': { type: 'boolean', default: false },
    cli: { type: 'boolean', default: false },
  },
})
const quick = opts.quick
const ROUNDS = opts.rounds ? Number(opts.rounds) : quick ? 1 : 5
const DURATION = opts.duration ? Number(opts.duration) : quick ? 2 : 5
if (!(ROUNDS >= 1) || !(DURATION >= 1)) throw new Error('--rounds and --duration take positive numbers')
const CONNECTIONS = 50
const ACCOUNTS = 10_000
const canPin = spawnSync('taskset', ['-V']).status === 0 && os.cpus().length >= 2
if (opts.pin && !canPin) throw new Error('--pin needs taskset (util-linux) and 2 CPUs')
const pinned = opts.pin
const hasRedis = spawnSync('redis-server', ['--version']).status === 0
const children = []
const cleanups = []
// Every target, nginx and redis-server is stopped, and every temporary directory and worktree
// removed, however the run ends: normally, on an error, on Ctrl-C or SIGTERM.
function stop() {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM')
}
process.once('exit', () => {
  stop()
  for (const f of cleanups.splice(0)) f()
})
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(signal === 'SIGINT' ? 130 : 143))
const log = (line) => process.stderr.write(`${line}\n`)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function sh(cmd, args, cwd = root) {
  const res = spawnSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${res.status}):\n${res.stderr}${res.stdout}`)
  return res.stdout.trim()
}

/** The node binary for `--node`: a path as it is, a version from npm's node-linux-<arch> package. */
function nodeBinary(spec) {
  if (spec.includes('/')) {
    if (!existsSync(spec)) throw new Error(`--node ${spec}: no such file`)
    return resolve(spec)
  }
  if (process.platform !== 'linux') throw new Error(`--node ${spec}: give the path of a node binary`)
  const pkg = `node-linux-${process.arch}`
  const dir = join(process.env.SLUICE_NODE_CACHE ?? join(os.homedir(), '.cache', 'sluice-node'), spec)
  const bin = join(dir, 'node_modules', pkg, 'bin', 'node')
  if (!existsSync(bin)) {
    log(`installing ${pkg}@${spec} into ${dir}…`)
    sh('npm', ['install', '--prefix', dir, '--no-audit', '--no-fund', '--loglevel=error', `${pkg}@${spec}`])
  }
  return bin
}

/**
 * `--compare <ref>`: that commit checked out in a temporary worktree outside the repository and
 * built there. node_modules is this checkout's (a symlink) when package-lock.json is the same,
 * else `npm ci` installs the ref's own. The working tree's bench/targets.js runs both builds (the
 * same harness and configs: a config key the ref does not know fails its start, loudly).
 */
function prepareRef(ref) {
  const sha = sh('git', ['rev-parse', '--verify', `${ref}^{commit}`])
  const short = sh('git', ['rev-parse', '--short', sha])
  const dir = mkdtempSync(join(os.tmpdir(), 'sluice-bench-ref-'))
  const cleanup = () => {
    const modules = join(dir, 'node_modules')
    try {
      if (lstatSync(modules).isSymbolicLink()) unlinkSync(modules)
    } catch {
      // no node_modules there
    }
    spawnSync('git', ['worktree', 'remove', '--force', dir], { cwd: root, stdio: 'ignore' })
    rmSync(dir, { recursive: true, force: true })
    spawnSync('git', ['worktree', 'prune'], { cwd: root, stdio: 'ignore' })
  }
  try {
    log(`compare: ${ref} (${short}) checked out in ${dir}`)
    sh('git', ['worktree', 'add', '--detach', dir, sha])
    const lock = (d) => readFileSync(join(d, 'package-lock.json'), 'utf8')
    if (lock(root) === lock(dir)) symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir')
    else {
      log('compare: package-lock.json differs, npm ci in the worktree…')
      sh('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], dir)
    }
    log('compare: npm run build in the worktree…')
    sh('npm', ['run', 'build', '--silent'], dir)
  } catch (err) {
    cleanup()
    throw err
  }
  return { ref, sha, short, dir, cleanup }
}

// --node: the whole bench (load generator, targets, memory runs) re-run under each given node,
// one after the other; a --compare worktree is built once for all of them.
if (opts.node) {
  const argv = []
  for (let i = 2; i < process.argv.length; i++) {
    const a = process.argv[i]
    if (a === '--node' || a === '--compare') i++
    else if (!a.startsWith('--node=') && !a.startsWith('--compare=')) argv.push(a)
  }
  const bins = opts.node.split(',').map((spec) => nodeBinary(spec.trim()))
  const ref = opts.compare ? prepareRef(opts.compare) : null
  const env = { ...process.env, ...(ref ? { SLUICE_BENCH_REF: JSON.stringify({ ...ref, cleanup: undefined }) } : {}) }
  const runs = []
  try {
    for (const bin of bins) {
      log(`== bench under ${bin}`)
      const res = spawnSync(bin, [fileURLToPath(import.meta.url), ...argv], { stdio: 'inherit', env })
      if (res.status !== 0) throw new Error(`the bench under ${bin} failed (${res.status ?? res.signal})`)
      runs.push({
        json: JSON.parse(readFileSync(join(here, 'results', 'latest.json'), 'utf8')),
        md: readFileSync(join(here, 'results', 'latest.md'), 'utf8'),
      })
    }
  } finally {
    ref?.cleanup()
  }
  if (runs.length > 1) {
    writeFileSync(join(here, 'results', 'latest.json'), JSON.stringify({ runs: runs.map((r) => r.json) }, null, 2))
    writeFileSync(
      join(here, 'results', 'latest.md'),
      runs.map((r) => `### Node ${r.json.machine.node}\n\n${r.md}`).join('\n'),
    )
  }
  process.exit(0)
}

const ref = process.env.SLUICE_BENCH_REF
  ? JSON.parse(process.env.SLUICE_BENCH_REF)
  : opts.compare
    ? prepareRef(opts.compare)
    : null
if (ref?.cleanup) cleanups.push(ref.cleanup)

function pin(cpu) {
  return pinned ? ['taskset', ['-c', String(cpu), process.execPath]] : [process.execPath, []]
}

function start(kind, args, cpu, env = {}) {
  const [cmd, pre] = pin(cpu)
  const child = spawn(cmd, [...pre, join(here, 'targets.js'), kind, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  })
  children.push(child)
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`${kind} did not start`)), 30_000)
    child.stdout.on('data', (c) => {
      out += c
      const m = /READY (\S+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve({ url: m[1], pids: [child.pid] })
      }
    })
    child.once('exit', (code) => reject(new Error(`${kind} ${args.slice(1).join(' ')} exited with ${code}`)))
  })
}

async function startRedis() {
  const port = await freePort()
  const [cmd, pre] = pinned ? ['taskset', ['-c', '1', 'redis-server']] : ['redis-server', []]
  const child = spawn(
    cmd,
    [...pre, '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  )
  children.push(child)
  await sleep(400)
  return { url: `redis://127.0.0.1:${port}`, pid: child.pid }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** Whether GET url answers 200 (with an account header, as the load sends). */
function answers200(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { headers: { 'x-account-id': 'probe' }, agent: false }, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.on('error', () => resolve(false))
    req.setTimeout(1000, () => req.destroy())
  })
}

function findNginx() {
  for (const bin of ['nginx', '/usr/sbin/nginx']) {
    const res = spawnSync(bin, ['-v'], { encoding: 'utf8' })
    if (res.status === 0) return { bin, version: /nginx\/(\S+)/.exec(res.stderr)?.[1] ?? '?' }
  }
  return null
}

/** Until url/records/1 answers 200 (10 s at most); an error with the last lines of why() if not. */
async function answering(child, url, what, why) {
  let exited = null
  child.once('exit', (code, signal) => (exited = code ?? signal))
  for (let i = 0; ; i++) {
    if (exited !== null || i === 100) {
      let tail = ''
      try {
        tail = why().trim().split('\n').slice(-3).join(' / ')
      } catch {
        // nothing to tell
      }
      throw new Error(`${what} ${exited !== null ? `exited (${exited})` : 'did not answer in 10 s'}: ${tail}`)
    }
    if (await answers200(`${url}/records/1`)) return
    await sleep(100)
  }
}

/**
 * --cli: a sluice scenario as users start it, `sluice start -c <yaml> -p <port>` from the tree's
 * bin/ (this checkout's or the --compare ref's), the YAML bench/targets.js would compile.
 */
async function startCli(tree, scenario, upstream, redisUrl) {
  const port = await freePort()
  const dir = mkdtempSync(join(os.tmpdir(), 'sluice-bench-cli-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, `${scenario}.yaml`)
  const prefix = `bench:${process.pid}:${tree ? 'ref' : 'wt'}:${scenario}:`
  writeFileSync(file, configFor(scenario, { upstream, redis: redisUrl, prefix }))
  const [cmd, pre] = pin(0)
  const bin = join(tree ? tree.dir : root, 'bin', 'sluice.js')
  let err = ''
  const child = spawn(cmd, [...pre, bin, 'start', '-c', file, '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  child.stderr.on('data', (c) => (err = (err + c).slice(-4000)))
  children.push(child)
  const url = `http://127.0.0.1:${port}`
  await answering(child, url, `sluice start -c ${file}`, () => err)
  return { url, pids: [child.pid] }
}

/** The processes whose parent is pid (nginx's workers), from /proc. */
function childPids(pid) {
  const out = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const fields = readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1].split(' ')
      if (Number(fields[1]) === pid) out.push(Number(name))
    } catch {
      // gone meanwhile
    }
  }
  return out
}

/**
 * nginx in the foreground from a config of its own in a temporary directory (pid file, logs and
 * temp paths there): one worker, no access log, keepalive to the upstream, and on the sensitive
 * path limit_req keyed by the same account header, at a rate it never reaches (so it does all its
 * per-request work — the shared-memory lookup under its lock — and never rejects).
 */
async function startNginx(nginx, upstream) {
  const port = await freePort()
  const dir = mkdtempSync(join(os.tmpdir(), 'sluice-bench-nginx-'))
  chmodSync(dir, 0o755) // the worker (an unprivileged user when started as root) reaches its temp paths
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  const up = new URL(upstream)
  const proxied = `proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";`
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  limit_req_zone $http_x_account_id zone=acct:10m rate=1000000r/s;
  limit_req_status 429;
  upstream bench_upstream {
    server ${up.host};
    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    location /records/ {
      limit_req zone=acct burst=1000000 nodelay;
      ${proxied}
    }
    location / {
      ${proxied}
    }
  }
}
`,
  )
  const [cmd, pre] = pinned ? ['taskset', ['-c', '0', nginx.bin]] : [nginx.bin, []]
  const args = ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;']
  const child = spawn(cmd, [...pre, ...args], { stdio: 'ignore' })
  children.push(child)
  const url = `http://127.0.0.1:${port}`
  await answering(child, url, 'nginx', () => readFileSync(join(dir, 'error.log'), 'utf8'))
  // The master and its worker: CPU per request counts both.
  return { url, pids: [child.pid, ...childPids(child.pid)] }
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
          req.path = pathOf(path, n)
          req.headers = { ...req.headers, 'x-account-id': `acct-${n % ACCOUNTS}` }
          return req
        },
      },
    ],
  })
}

/**
 * CPU time (user + system, µs) processes have used, from /proc (Linux; null elsewhere). A proxy's
 * CPU time per request is the steadiest view of its cost: it hardly moves when a neighbour steals
 * the CPU for a moment, while requests/s does.
 */
const TICK_US = 1e6 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100)
function cpuUs(pids) {
  let us = 0
  try {
    for (const pid of pids) {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
      us += (Number(fields[11]) + Number(fields[12])) * TICK_US
    }
    return us
  } catch {
    return null
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

// The scenarios' plain-proxy bases: the non-sensitive and inspected scenarios are compared with
// the plain proxy on the same answer; everything else with the plain proxy on a record.
const BASES = {
  nonsensitive: 'plainList',
  inspect: 'plainList',
  plainList: 'plainList',
  inspectHtml: 'plainHtml',
  plainHtml: 'plainHtml',
  inspectCsv: 'plainCsv',
  plainCsv: 'plainCsv',
}
const baseOf = (key) => BASES[key.replace(/^ref:/, '')] ?? 'plain'

/** a against b within each round: req/s ratio (median, min, max), CPU-time ratio, p99 difference. */
function pair(samples, a, b) {
  const A = samples[a]
  const B = samples[b]
  if (!A || !B) return null
  const r = A.map((x, i) => x.rps / B[i].rps)
  const cpu = A.every((x) => x.cpu) && B.every((x) => x.cpu) ? median(A.map((x, i) => B[i].cpu / x.cpu)) : null
  return {
    ratio: median(r),
    min: Math.min(...r),
    max: Math.max(...r),
    cpuRatio: cpu,
    p99Delta: median(A.map((x, i) => x.p99 - B[i].p99)),
  }
}

async function throughput(notes) {
  const upstream = (await start('upstream', [], 1)).url
  const redis = hasRedis ? await startRedis() : undefined
  if (!redis) notes.push('Redis scenario: not measured (no redis-server).')
  const proxy = async (key, label, args, path, env) => ({
    key,
    label,
    ...(await start(args[0], args.slice(1), 0, env)),
    ...(path ? { path } : {}),
  })
  const targets = [{ key: 'upstream', label: '1. upstream direct', url: upstream, pids: [] }]
  const plain = await proxy('plain', '2. plain @fastify/http-proxy', ['plain', upstream])
  // The list endpoint is also what the plain proxy serves for the non-sensitive comparison, and
  // the plain proxy serves the page and the export for theirs.
  const plainOn = (key, label, path) => ({ ...plain, key, label, path })
  targets.push(
    plain,
    plainOn('plainList', '2b. plain proxy, list endpoint', 'list'),
    plainOn('plainHtml', '2c. plain proxy, HTML list page', 'html'),
    plainOn('plainCsv', '2d. plain proxy, CSV export', 'csv'),
    await proxy('raw', '2e. raw node:http + undici Pool (the Node ceiling)', ['raw', upstream]),
  )
  const nginx = findNginx()
  if (!nginx) notes.push('nginx limit_req: not measured (no nginx: `apt-get install nginx-light`).')
  else {
    try {
      const { url, pids } = await startNginx(nginx, upstream)
      targets.push({
        key: 'nginx',
        label: `2f. nginx ${nginx.version} limit_req per x-account-id, 1 worker`,
        url,
        pids,
      })
    } catch (err) {
      notes.push(`nginx limit_req: not measured (${err.message}).`)
    }
  }
  // sluice's scenarios, of this working tree and (--compare) of the ref's build.
  const sluice = async (tree) => {
    const key = (k) => (tree ? `ref:${k}` : k)
    const label = (l) => (tree ? `${l} — ${tree.short}` : l)
    const env = tree ? { SLUICE_BENCH_DIST: join(tree.dir, 'dist', 'index.js') } : {}
    const one = async (k, l, args, path) =>
      opts.cli
        ? { key: key(k), label: label(l), ...(await startCli(tree, ...args.slice(0, 1), upstream, args[1])), path }
        : proxy(key(k), label(l), ['sluice', upstream, ...args], path, env)
    const out = [
      await one('nonsensitive', '3. sluice, memory, non-sensitive route', ['memory'], 'list'),
      await one('sensitive', '4. sluice, memory, sensitive route (3 limits, 10k accounts)', ['memory']),
      await one('scoped', '4b. sluice, memory, sensitive route + per-network and per-route limits', ['scoped']),
    ]
    if (redis) out.push(await one('redis', '5. sluice, redis store, sensitive route', ['redis', redis.url]))
    const inspecting = await one(
      'inspect',
      '6. sluice, memory, list endpoint inspected (10 KB JSON)',
      ['inspect'],
      'list',
    )
    // The same inspecting process answers the HTML page and the CSV export of the same 50 records.
    out.push(
      inspecting,
      {
        ...inspecting,
        key: key('inspectHtml'),
        label: label('6b. sluice, memory, HTML list page inspected (~10 KB)'),
        path: 'html',
      },
      {
        ...inspecting,
        key: key('inspectCsv'),
        label: label('6c. sluice, memory, CSV export inspected (~7 KB)'),
        path: 'csv',
      },
    )
    return out
  }
  targets.push(...(await sluice(null)))
  if (ref) targets.push(...(await sluice(ref)))

  for (const t of targets) await load(t.url, { path: t.path, duration: quick ? 1 : 3 }) // warm-up (JIT)
  const samples = Object.fromEntries(targets.map((t) => [t.key, []]))
  const redisCpu = { working: [], ref: [] }
  for (let round = 0; round < ROUNDS; round++) {
    // Each round starts one scenario later, so none always runs right after the same neighbour.
    for (let i = 0; i < targets.length; i++) {
      const t = targets[(i + round) % targets.length]
      // A pause between runs: a process that just finished its run (GC, V8's memory reducer)
      // must not spend the next one's CPU.
      await sleep(quick ? 200 : 1000)
      const isRedis = t.key === 'redis' || t.key === 'ref:redis'
      const before = cpuUs(t.pids)
      const redisBefore = isRedis ? cpuUs([redis.pid]) : null
      const r = await load(t.url, { path: t.path })
      const after = cpuUs(t.pids)
      const redisAfter = isRedis ? cpuUs([redis.pid]) : null
      if (redisBefore !== null && redisAfter !== null && r.requests.total > 0)
        redisCpu[t.key === 'redis' ? 'working' : 'ref'].push((redisAfter - redisBefore) / r.requests.total)
      const cpu =
        t.pids.length && before !== null && after !== null && r.requests.total > 0
          ? (after - before) / r.requests.total
          : null
      samples[t.key][round] = {
        rps: r.requests.average,
        p50: r.latency.p50,
        p99: r.latency.p99,
        errors: r.errors + r.non2xx,
        cpu,
      }
      log(
        `  round ${round + 1}/${ROUNDS} ${t.label}: ${Math.round(r.requests.average)} req/s, p99 ${r.latency.p99} ms${cpu !== null ? `, ${cpu.toFixed(1)} µs CPU/req` : ''}${r.errors + r.non2xx ? `, ${r.errors + r.non2xx} errors/non-2xx` : ''}`,
      )
    }
  }
  // Ratios are taken within a round (each scenario against the plain proxy measured in the
  // same minute), then the median over rounds: a noisy minute on a shared VM moves both sides
  // of a ratio together instead of skewing whichever scenario it happened to hit.
  const summary = {}
  for (const t of targets) {
    const s = samples[t.key]
    const cpus = s.map((x) => x.cpu)
    const base = pair(samples, t.key, baseOf(t.key))
    summary[t.key] = {
      label: t.label,
      rps: {
        median: median(s.map((x) => x.rps)),
        min: Math.min(...s.map((x) => x.rps)),
        max: Math.max(...s.map((x) => x.rps)),
      },
      ratio: base.ratio,
      ratioMinMax: [base.min, base.max],
      cpuRatio: base.cpuRatio,
      p50: median(s.map((x) => x.p50)),
      p99: median(s.map((x) => x.p99)),
      p99OverBase: base.p99Delta,
      errors: s.reduce((a, x) => a + x.errors, 0),
      cpuUsPerRequest: cpus.every((c) => c !== null) ? median(cpus) : null,
      samples: s,
    }
  }
  if (summary.redis && redisCpu.working.length) summary.redis.redisServerCpuUsPerRequest = median(redisCpu.working)
  if (summary['ref:redis'] && redisCpu.ref.length)
    summary['ref:redis'].redisServerCpuUsPerRequest = median(redisCpu.ref)
  // sluice against the other proxies, on the same request (a record on the sensitive path).
  const versus = {}
  for (const [k, a, b, label] of [
    ['sensitive/nginx', 'sensitive', 'nginx', 'sluice sensitive route (4) ÷ nginx limit_req (2f)'],
    ['sensitive/raw', 'sensitive', 'raw', 'sluice sensitive route (4) ÷ raw node:http + undici (2e)'],
    ['plain/nginx', 'plain', 'nginx', 'plain @fastify/http-proxy (2) ÷ nginx limit_req (2f)'],
    ['plain/raw', 'plain', 'raw', 'plain @fastify/http-proxy (2) ÷ raw node:http + undici (2e)'],
  ]) {
    const p = pair(samples, a, b)
    if (p) versus[k] = { label, ...p }
  }
  // --compare: each sluice scenario of the working tree against the same scenario of the ref.
  const compared = {}
  if (ref)
    for (const t of targets.filter((x) => x.key.startsWith('ref:'))) {
      const k = t.key.slice(4)
      compared[k] = {
        label: summary[k].label,
        ...pair(samples, k, t.key),
        cpuUs: summary[k].cpuUsPerRequest,
        refCpuUs: summary[t.key].cpuUsPerRequest,
      }
    }
  return { summary, versus, compared }
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
  if (!quick) {
    // As examples/systemd/sluice.service runs it: the young generation capped at 16 MB.
    const res = spawnSync(
      process.execPath,
      ['--expose-gc', '--max-semi-space-size=16', join(here, 'memory.js'), '100000'],
      { encoding: 'utf8', timeout: 240_000 },
    )
    if (res.status !== 0) throw new Error(`memory bench failed: ${res.stderr}`)
    out.unit100000 = JSON.parse(res.stdout)
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

/** --compare: the same fills on the ref's build, by the ref's own bench/memory.js (if it has one). */
function refMemory() {
  const script = join(ref.dir, 'bench', 'memory.js')
  if (!existsSync(script)) return null
  const out = {}
  for (const accounts of quick ? [10_000] : [10_000, 100_000]) {
    const res = spawnSync(process.execPath, ['--expose-gc', script, String(accounts)], {
      encoding: 'utf8',
      timeout: 240_000,
    })
    if (res.status !== 0) throw new Error(`memory bench of ${ref.short} failed: ${res.stderr}`)
    out[accounts] = JSON.parse(res.stdout)
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

const x3 = (v) => v.toFixed(3)
/** "0.95 (rounds 0.90–0.99; by CPU time 0.97)" */
const ratioText = (p) =>
  `${x3(p.ratio)} (rounds ${p.min.toFixed(2)}–${p.max.toFixed(2)}${p.cpuRatio ? `; by CPU time ${x3(p.cpuRatio)}` : ''})`

function targetsReport({ summary: t, versus }, mem, attack) {
  const lines = []
  const check = (name, ok, got) => lines.push(`| ${name} | ${got} | ${ok ? 'pass' : '**miss**'} |`)
  const unmeasured = (name, why) => lines.push(`| ${name} | not measured: ${why} | – |`)
  const ratio = (k) => ratioText({ ...t[k], min: t[k].ratioMinMax[0], max: t[k].ratioMinMax[1] })
  check('non-sensitive route ≥ 1.00 × plain proxy req/s', t.nonsensitive.ratio >= 1, ratio('nonsensitive'))
  check(
    'sensitive route (memory, 3 limits, 10k accounts) ≥ 1.00 × plain proxy req/s',
    t.sensitive.ratio >= 1,
    ratio('sensitive'),
  )
  check(
    'sensitive route p99 ≤ plain + 1 ms',
    t.sensitive.p99OverBase <= 1,
    `${t.sensitive.p99OverBase >= 0 ? '+' : ''}${t.sensitive.p99OverBase.toFixed(2)} ms`,
  )
  if (t.redis)
    check(
      'Redis store ≥ 0.90 × plain proxy req/s',
      t.redis.ratio >= 0.9,
      `${ratio('redis')}${t.redis.redisServerCpuUsPerRequest ? `; redis-server ${t.redis.redisServerCpuUsPerRequest.toFixed(1)} µs CPU per observation` : ''}`,
    )
  else unmeasured('Redis store ≥ 0.90 × plain proxy req/s', 'no redis-server')
  check('inspected JSON list (10 KB) ≥ 0.70 × plain proxy req/s', t.inspect.ratio >= 0.7, ratio('inspect'))
  if (versus['sensitive/nginx'])
    check(
      'sensitive route ≥ 0.60 × nginx limit_req per header',
      versus['sensitive/nginx'].ratio >= 0.6,
      ratioText(versus['sensitive/nginx']),
    )
  else unmeasured('sensitive route ≥ 0.60 × nginx limit_req per header', 'no nginx')
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
      `${x3(byRps)}${byCpu !== null ? ` (by CPU time ${x3(byCpu)})` : ''}`,
    )
  }
  unmeasured(
    'replay ≥ 300,000 lines/s on one core (gzipped combined log), both cores when large',
    'by `node bench/replay.js`, not part of this run',
  )
  if (!mem) {
    unmeasured('100,000 accounts × 3 routes ≤ 200 MB RSS', '--throughput-only')
    return lines
  }
  const rss = mem['100000']?.rssMB
  if (rss === undefined) unmeasured('100,000 accounts × 3 routes ≤ 200 MB RSS', '--quick')
  else {
    const unit = mem.unit100000?.rssMB
    check(
      '100,000 accounts × 3 routes ≤ 200 MB RSS',
      rss <= 200,
      `${rss} MB${unit === undefined ? '' : ` (${unit} MB with the systemd unit's --max-semi-space-size=16)`}`,
    )
  }
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

function markdown(tp, mem, attack, run) {
  const { summary: t, versus, compared } = tp
  const cell = (v, f) => (v === null || v === undefined ? '–' : f(v))
  const rows = Object.entries(t)
    .filter(([k]) => !k.startsWith('ref:'))
    .map(([, s]) => {
      return `| ${s.label} | ${Math.round(s.rps.median)} (${Math.round(s.rps.min)}–${Math.round(s.rps.max)}) | ${x3(s.ratio)} | ${cell(s.cpuRatio, x3)} | ${s.p50} | ${s.p99} | ${cell(s.cpuUsPerRequest, (c) => c.toFixed(1))} | ${s.errors} |`
    })
  const m = run.machine
  const out = [
    `Code: ${run.code}. Machine: ${m.cpus} × ${m.cpu}, ${m.memGB} GB. Node ${run.node} (${nodeSource(run.nodePath)})${run.nodeSupported ? '' : `, **below engines (${run.engines})**`}. **${run.pinned ? 'Pinned (--pin): proxies on CPU 0, load generator, upstream and Redis on CPU 1' : 'Unpinned: every process on any CPU (the headline: users do not pin)'}**. sluice ${opts.cli ? 'started by its CLI: `sluice start -c <yaml>`' : 'built in-process by bench/targets.js (buildProxy, logger off)'}. ${ROUNDS} interleaved round(s) of ${DURATION} s, ${CONNECTIONS} connections, ${ACCOUNTS.toLocaleString('en-US')} accounts${run.nginx ? `; nginx ${run.nginx}` : ''}${ref ? `; compared with ${ref.ref} (${ref.short})` : ''}.`,
    '',
    '| scenario | req/s median (min–max) | ÷ plain proxy, req/s (median of rounds) | ÷ plain proxy, by CPU time | p50 ms | p99 ms | proxy CPU µs/req | non-2xx/errors |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    "(Each ratio is taken within a round, against the plain proxy measured in the same minute, and the median over rounds is shown; \"by CPU time\" is the plain proxy's CPU µs per request ÷ this one's. The non-sensitive and inspected scenarios are compared with the plain proxy on the same answer: the list endpoint (2b), the HTML page (2c), the CSV export (2d). Proxy CPU per request is the proxy's user + system time (nginx: master and worker) over the requests it served: the least noisy view of its cost.)",
    ...(run.notes.length ? ['', ...run.notes] : []),
    ...(t.redis?.redisServerCpuUsPerRequest
      ? [
          '',
          `redis-server CPU per observation${run.pinned ? ' (on CPU 1 with the load generator and the upstream)' : ''}: ${t.redis.redisServerCpuUsPerRequest.toFixed(1)} µs.`,
        ]
      : []),
  ]
  if (Object.keys(versus).length)
    out.push(
      '',
      '| sluice against other proxies (same request, same rounds) | req/s ratio (median of rounds, min–max) | by CPU time |',
      '|---|---|---|',
      ...Object.values(versus).map(
        (v) => `| ${v.label} | ${x3(v.ratio)} (${v.min.toFixed(2)}–${v.max.toFixed(2)}) | ${cell(v.cpuRatio, x3)} |`,
      ),
    )
  if (ref)
    out.push(
      '',
      `| working tree ÷ ${ref.ref} (${ref.short}), same rounds | req/s ratio (median, min–max) | by CPU time | CPU µs/req working / ref | p99 working − ref |`,
      '|---|---|---|---|---|',
      ...Object.values(compared).map(
        (c) =>
          `| ${c.label} | ${x3(c.ratio)} (${c.min.toFixed(2)}–${c.max.toFixed(2)}) | ${cell(c.cpuRatio, x3)} | ${cell(c.cpuUs, (v) => v.toFixed(1))} / ${cell(c.refCpuUs, (v) => v.toFixed(1))} | ${c.p99Delta >= 0 ? '+' : ''}${c.p99Delta} ms |`,
      ),
      '',
      '(Above 1: the working tree is faster. Each ratio is taken within a round, the two builds measured minutes apart at most.)',
    )
  if (mem)
    out.push(
      '',
      '| memory (memory store, 3 routes, full windows) | accounts | RSS MB | heap used MB |',
      '|---|---|---|---|',
      ...Object.entries(mem)
        .filter(([n]) => n !== 'redis' && n !== 'churn' && n !== 'ref' && n !== 'unit100000')
        .map(([n, m]) => `| ${m.describe} | ${n} | ${m.rssMB} | ${m.heapUsedMB} |`),
      ...(mem.unit100000
        ? [
            `| the same, as examples/systemd/sluice.service runs it (\`--max-semi-space-size=16\`) | 100000 | ${mem.unit100000.rssMB} | ${mem.unit100000.heapUsedMB} |`,
          ]
        : []),
      ...(mem.ref
        ? Object.entries(mem.ref).map(
            ([n, m]) => `| the same on ${ref.ref} (${ref.short}) | ${n} | ${m.rssMB} | ${m.heapUsedMB} |`,
          )
        : []),
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
    )
  out.push('', '| target | measured | |', '|---|---|---|', ...targetsReport(tp, mem, attack))
  return out.join('\n')
}

/** The code measured: HEAD's commit, and whether the tree differs from it where the build reads. */
function codeId() {
  try {
    const head = sh('git', ['rev-parse', '--short', 'HEAD'])
    const dirty = sh('git', [
      'status',
      '--porcelain',
      '--',
      'src',
      'bench',
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'tsconfig.build.json',
    ])
    const n = dirty ? dirty.split('\n').length : 0
    return n ? `${head} + ${n} uncommitted file(s) in src/, bench/ or the build (not a commit's figure)` : head
  } catch {
    return 'unknown (not a git checkout)'
  }
}

try {
  // package.json's engines.node (">=22.13"): whether this Node is one sluice supports.
  const engines = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).engines?.node ?? ''
  const least = (/>=\s*([\d.]+)/.exec(engines)?.[1] ?? '0').split('.').map(Number)
  const have = process.versions.node.split('.').map(Number)
  const cmp = [0, 1, 2].map((i) => (have[i] ?? 0) - (least[i] ?? 0)).find((d) => d !== 0) ?? 0
  const run = {
    engines,
    code: codeId(),
    node: process.version,
    nodePath: process.execPath,
    nodeSupported: cmp >= 0,
    pinned,
    nginx: findNginx()?.version ?? null,
    notes: [],
    machine: {
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model ?? 'unknown',
      memGB: Math.round(os.totalmem() / 2 ** 30),
      pinned,
      node: process.version,
    },
  }
  if (pinned) spawnSync('taskset', ['-cp', '1', String(process.pid)])
  log(
    `sluice bench${quick ? ' (quick)' : ''}: ${run.code}; node ${process.version} (${process.execPath}); ${pinned ? 'pinned' : 'unpinned'}${opts.cli ? '; sluice by its CLI' : ''}; ${ROUNDS} round(s) × ${DURATION}s${ref ? `; against ${ref.ref} (${ref.short})` : ''}`,
  )
  const tp = await throughput(run.notes)
  stop()
  let mem = null
  let attack = null
  if (!opts['throughput-only']) {
    log('  memory…')
    mem = memory()
    if (ref) mem.ref = refMemory()
    log('  churn…')
    mem.churn = churn()
    log('  attack…')
    attack = await exactness()
  }
  const report = markdown(tp, mem, attack, run)
  mkdirSync(join(here, 'results'), { recursive: true })
  const json = JSON.stringify(
    {
      date: new Date().toISOString(),
      quick,
      rounds: ROUNDS,
      duration: DURATION,
      code: run.code,
      ref: ref ? { ref: ref.ref, sha: ref.sha } : null,
      cli: opts.cli,
      machine: run.machine,
      notes: run.notes,
      throughput: tp.summary,
      versus: tp.versus,
      compared: tp.compared,
      memory: mem,
      attack,
    },
    null,
    2,
  )
  writeFileSync(join(here, 'results', 'latest.json'), json)
  writeFileSync(join(here, 'results', 'latest.md'), `${report}\n`)
  // One copy per Node version too, so a run on 24 and one on 22.13 both stay at hand.
  writeFileSync(join(here, 'results', `node-${process.version}.json`), json)
  writeFileSync(join(here, 'results', `node-${process.version}.md`), `${report}\n`)
  console.log(report)
} finally {
  stop()
  for (const f of cleanups.splice(0)) f()
}

/** Where a node binary came from, for the report (a machine's paths stay out of committed results). */
function nodeSource(path) {
  const npm = /node-linux-[^/]+/.exec(path)
  return npm ? `npm's ${npm[0]}` : 'the system node'
}
