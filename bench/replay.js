// `sluice replay` throughput: a generated, gzipped NCSA combined log of an office in front of an
// address book (honest clerks re-reading their working sets, a few enumerators, pages and assets
// no route counts) replayed through a config with path, query and request-only routes and a
// per-network limit with --network), by the built CLI in a child process, single-threaded and with workers.
// Prints lines/s per run and the median of each mode; the two modes' reports must be identical.
//   node bench/replay.js [--lines N] [--runs R] [--threads 1,2] [--node PATH] [--log FILE] [--keep]
// --threads lists the modes run (`default`: no --threads flag); --log FILE reuses (or writes) the log there;
// --network adds a per-network limit (every request then also counts in its network's windows).
// (after npm run build; not part of npm run bench). The log (~1.5 M lines, ~25 MB gzipped) is
// written to os.tmpdir() and removed afterwards unless --keep or --log is given.
import { spawn } from 'node:child_process'
import { createWriteStream, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { parseArgs } from 'node:util'
import { createGzip } from 'node:zlib'

const { values: args } = parseArgs({
  options: {
    lines: { type: 'string', default: '1500000' },
    runs: { type: 'string', default: '3' },
    threads: { type: 'string', default: '1,2' },
    node: { type: 'string', default: process.execPath },
    log: { type: 'string' },
    keep: { type: 'boolean', default: false },
    network: { type: 'boolean', default: false },
  },
})
const LINES = Number(args.lines)
const RUNS = Number(args.runs)
const BIN = join(import.meta.dirname, '../bin/sluice.js')

const CONFIG = `
version: 1
upstream: { url: http://127.0.0.1:9 }
identity:
  - { type: basic }
network: { ipv4: 24, ipv6: 48 }
routes:
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 1m, distinctRecords: 20, action: throttle }
      - { window: 1m, requests: 40, action: disable }
      - { window: 1d, distinctRecords: 300, action: challenge }${args.network ? '\n      - { per: network, window: 1h, distinctRecords: 3000, action: log }' : ''}
  - name: contact-list
    methods: [GET]
    path: /api/contacts
    records: { query: ids, split: "," }
    limits:
      - { window: 10m, distinctRecords: 100, action: challenge }
  - name: contact-search
    methods: [POST]
    path: /api/contacts/search
    limits:
      - { window: 1m, requests: 20, action: throttle }
`

// ─── the log ─────────────────────────────────────────────────────────────────────────────

const HOUR = 3_600_000
const START = Date.UTC(2024, 2, 11) // a Monday
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const BROWSERS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:123.0) Gecko/20100101 Firefox/123.0',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3.1 Safari/605.1.15',
]
const PAGES = ['/', '/app.js', '/css/site.css', '/favicon.ico', '/contacts', '/api/me', '/api/contacts/export%2Ecsv']

const p2 = (n) => String(n).padStart(2, '0')
/** `11/Mar/2024:09:12:44 +0100` */
function clf(ms) {
  const d = new Date(ms + HOUR)
  return `${p2(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0100`
}

/**
 * Lines in time order: `clerks` honest accounts over `days` working days (a request every
 * 5–60 s, 08:00–18:00), three enumerators (one fast, one slow, one spread over accounts of one
 * network), until `max` lines.
 */
function* traffic(max) {
  let s = 7
  const rnd = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32
  const clerks = 800
  const days = 5
  const actors = []
  for (let c = 0; c < clerks; c++) {
    const account = `clerk${String(c + 1).padStart(4, '0')}`
    const client = `10.${1 + (c >> 12)}.${(c >> 4) & 255}.${(c & 15) + 1}`
    const agent = BROWSERS[c % BROWSERS.length]
    const working = []
    for (let i = 0, n = 8 + Math.floor(rnd() * 40); i < n; i++) working.push(1 + Math.floor(rnd() * 80_000))
    const pick = () => working[Math.floor(rnd() * working.length)]
    let day = 0
    const dayStart = () => START + day * 24 * HOUR + 8 * HOUR + Math.floor(rnd() * 3600) * 1000
    const a = {
      at: dayStart(),
      next() {
        const time = a.at
        a.at += (10 + Math.floor(rnd() * 110)) * 1000
        if (a.at > START + day * 24 * HOUR + 18 * HOUR) {
          day++
          a.at = day < days ? dayStart() : Infinity
        }
        const roll = rnd()
        const hit = { time, account, client, agent, method: 'GET', status: 200, bytes: 600 + Math.floor(rnd() * 1400) }
        if (roll < 0.55) return { ...hit, target: `/api/contacts/${pick()}` }
        if (roll < 0.6) {
          const id = 1 + Math.floor(rnd() * 80_000)
          working.push(id)
          return { ...hit, target: `/api/contacts/${id}` }
        }
        if (roll < 0.67) return { ...hit, target: `/api/contacts?ids=${pick()},${pick()},${pick()}&fields=name,phone` }
        if (roll < 0.72) return { ...hit, target: `/api/contacts?page=${1 + Math.floor(rnd() * 5)}&pageSize=50` }
        if (roll < 0.77) return { ...hit, method: 'POST', target: '/api/contacts/search', bytes: 2100 }
        const page = PAGES[Math.floor(rnd() * PAGES.length)]
        return { ...hit, target: page, status: rnd() < 0.5 ? 304 : 200 }
      },
    }
    actors.push(a)
  }
  const walker = (account, client, from, gapMs, forMs, first, agent, accounts = 1) => {
    let i = 0
    const a = {
      at: from,
      next() {
        const time = a.at
        a.at = time + gapMs > from + forMs ? Infinity : time + gapMs
        const who = accounts > 1 ? `${account}${i % accounts}` : account
        return { time, account: who, client, agent, method: 'GET', target: `/api/contacts/${first + i++}`, status: 200 }
      },
    }
    return a
  }
  for (let d = 0; d < days; d++) {
    actors.push(
      walker('mallory', '203.0.113.77', START + d * 24 * HOUR + 14 * HOUR, 250, 180_000, 90_000, 'curl/8.5.0'),
    )
    actors.push(
      walker(
        'svc-reporting',
        '10.200.0.15',
        START + d * 24 * HOUR + 19 * HOUR,
        12_000,
        8 * HOUR,
        50_000,
        'python-requests/2.31.0',
      ),
    )
    actors.push(
      walker(
        'temp',
        '198.51.100.9',
        START + d * 24 * HOUR + 10 * HOUR,
        2000,
        4 * HOUR,
        60_000,
        'Go-http-client/1.1',
        25,
      ),
    )
  }
  // A binary min-heap on `at`.
  const heap = actors
  const down = (i) => {
    for (;;) {
      const l = 2 * i + 1
      let m = i
      if (l < heap.length && heap[l].at < heap[m].at) m = l
      if (l + 1 < heap.length && heap[l + 1].at < heap[m].at) m = l + 1
      if (m === i) return
      ;[heap[i], heap[m]] = [heap[m], heap[i]]
      i = m
    }
  }
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i)
  for (let n = 0; n < max && heap[0].at !== Infinity; n++) {
    const h = heap[0].next()
    down(0)
    const referer = h.target.startsWith('/api/') ? '"https://contacts.example.internal/contacts"' : '"-"'
    yield `${h.client} - ${h.account} [${clf(h.time)}] "${h.method} ${h.target} HTTP/1.1" ${h.status} ${h.bytes ?? 731} ${referer} "${h.agent}"\n`
  }
}

function* batches(max) {
  let batch = ''
  let n = 0
  for (const line of traffic(max)) {
    batch += line
    if (++n === 4000) {
      yield batch
      batch = ''
      n = 0
    }
  }
  if (batch) yield batch
}

// ─── the runs ────────────────────────────────────────────────────────────────────────────

/**
 * The CLI in a child; a preloaded module reports the child's CPU time (all its threads) at exit:
 * on a shared machine, lines per CPU second moves less than lines per second.
 */
function replay(log, config, threads, probe) {
  return new Promise((resolve, reject) => {
    const flag = threads === 'default' ? [] : ['--threads', threads]
    const child = spawn(
      args.node,
      ['--import', pathToFileURL(probe).href, BIN, 'replay', '--config', config, '--json', ...flag, log],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let out = ''
    let err = ''
    child.stdout.on('data', (c) => (out += c))
    child.stderr.on('data', (c) => (err += c))
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`exit ${code}: ${err.slice(0, 1000)}`))
      const json = JSON.parse(out)
      const elapsedMs = json.elapsedMs
      delete json.elapsedMs
      const cpu = /cpu=(\d+)/.exec(err)
      resolve({ lines: json.lines, elapsedMs, cpuMs: cpu ? Number(cpu[1]) / 1000 : NaN, report: JSON.stringify(json) })
    })
  })
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const fmt = (n) => Math.round(n).toLocaleString('en-US')

const dir = mkdtempSync(join(tmpdir(), 'sluice-replay-bench-'))
try {
  const config = join(dir, 'sluice.yaml')
  writeFileSync(config, CONFIG)
  const probe = join(dir, 'cpu-probe.mjs')
  writeFileSync(
    probe,
    "process.on('exit', () => { const u = process.cpuUsage(); process.stderr.write(`cpu=${u.user + u.system}\\n`) })\n",
  )
  let log = args.log
  if (!log || !existsSync(log)) {
    log ??= join(dir, 'access.log.gz')
    const t0 = performance.now()
    await pipeline(Readable.from(batches(LINES)), createGzip({ level: 6 }), createWriteStream(log))
    console.error(
      `generated ${log}: ${(statSync(log).size / 2 ** 20).toFixed(1)} MB in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    )
  }
  const modes = args.threads.split(',')
  const rates = new Map(modes.map((t) => [t, []]))
  const cpuRates = new Map(modes.map((t) => [t, []]))
  const reports = new Map()
  for (let r = 0; r < RUNS; r++) {
    for (const t of modes) {
      const run = await replay(log, config, t, probe)
      const rate = run.lines / (run.elapsedMs / 1000)
      rates.get(t).push(rate)
      cpuRates.get(t).push(run.lines / (run.cpuMs / 1000))
      console.error(
        `run ${r + 1} threads=${t}: ${fmt(run.lines)} lines in ${(run.elapsedMs / 1000).toFixed(2)} s = ${fmt(rate)} lines/s ` +
          `(${(run.cpuMs / 1000).toFixed(2)} s CPU with startup)`,
      )
      if (!reports.has(t)) reports.set(t, run.report)
      else if (reports.get(t) !== run.report) throw new Error(`threads=${t}: two runs reported differently`)
    }
  }
  const first = reports.get(modes[0])
  const identical = [...reports.values()].every((r) => r === first)
  console.log(
    JSON.stringify({
      node: args.node === process.execPath ? process.version : args.node,
      lines: JSON.parse(first).lines,
      runs: RUNS,
      medianLinesPerSecond: Object.fromEntries(modes.map((t) => [`threads=${t}`, Math.round(median(rates.get(t)))])),
      medianLinesPerCpuSecond: Object.fromEntries(
        modes.map((t) => [`threads=${t}`, Math.round(median(cpuRates.get(t)))]),
      ),
      identicalReports: identical,
    }),
  )
  if (!identical) process.exitCode = 1
} finally {
  // With --log, the log lives elsewhere: only the config is here.
  if (!args.keep) rmSync(dir, { recursive: true, force: true })
}
