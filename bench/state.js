// The memory store's state file at scale: N accounts × 3 routes with full windows (the shape
// of bench/memory.js) written as sluice writes it in the background, then read back in a
// fresh process. Prints JSON: file size, write and read times, the longest event-loop stall
// during the write (monitorEventLoopDelay and the writer's own slices) and RSS around it.
//   node bench/state.js [accounts] [dir]     (after npm run build; not part of npm run bench)
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { Engine, MemoryStore } from '../dist/index.js'
import { readState, writeState } from '../dist/store/state.js'
import { DESCRIBE, FILL, recordsOf, ROUTES } from './shape.js'

const mb = (bytes) => Math.round(bytes / 2 ** 20)

if (process.argv[2] === '--read') {
  const path = process.argv[3]
  const accounts = Number(process.argv[4])
  const rssBefore = process.memoryUsage().rss
  const store = new MemoryStore({ maxAccounts: accounts })
  const started = performance.now()
  const report = await readState(store, path)
  const ms = performance.now() - started
  global.gc?.()
  console.log(
    JSON.stringify({
      readMs: Math.round(ms),
      restored: report.accounts,
      problems: report.problems,
      rssBeforeReadMB: mb(rssBefore),
      rssAfterReadMB: mb(process.memoryUsage().rss),
    }),
  )
  process.exit(0)
}

const accounts = Number(process.argv[2] ?? 100_000)
const dir = process.argv[3] ?? mkdtempSync(join(tmpdir(), 'sluice-state-bench-'))
const path = join(dir, 'state')
const store = new MemoryStore({ maxAccounts: accounts })
const engine = new Engine(store, { disableForMs: 60_000 })
let now = Date.now()
for (let a = 0; a < accounts; a++) {
  for (const policy of ROUTES)
    for (let i = 0; i < FILL; i++) engine.observe(`acct-${a}`, policy, recordsOf(a, i), now++)
}
global.gc?.()
const rssBefore = process.memoryUsage().rss

// A probe every millisecond: the longest gap between two of its turns is the longest stall.
let peakRss = rssBefore
let longestGap = 0
let last = performance.now()
const probe = setInterval(() => {
  const t = performance.now()
  longestGap = Math.max(longestGap, t - last)
  last = t
  peakRss = Math.max(peakRss, process.memoryUsage().rss)
}, 1)
const delay = monitorEventLoopDelay({ resolution: 1 })
delay.enable()
last = performance.now()
const stats = await writeState(store, path)
delay.disable()
clearInterval(probe)
global.gc?.()
const rssAfter = process.memoryUsage().rss

const read = spawnSync(process.execPath, ['--expose-gc', import.meta.filename, '--read', path, String(accounts)], {
  encoding: 'utf8',
})
console.log(
  JSON.stringify({
    describe: DESCRIBE,
    accounts: stats.accounts,
    fileMB: Math.round((statSync(path).size / 2 ** 20) * 10) / 10,
    writeMs: Math.round(stats.ms),
    longestSliceMs: Math.round(stats.longestSliceMs * 10) / 10,
    longestProbeGapMs: Math.round(longestGap * 10) / 10,
    eventLoopDelayMaxMs: Math.round((delay.max / 1e6) * 10) / 10,
    eventLoopDelayP99Ms: Math.round((delay.percentile(99) / 1e6) * 10) / 10,
    rssBeforeWriteMB: mb(rssBefore),
    rssPeakDuringWriteMB: mb(peakRss),
    rssAfterWriteMB: mb(rssAfter),
    ...JSON.parse(read.stdout || '{}'),
    ...(read.status !== 0 ? { readError: read.stderr } : {}),
  }),
)
if (process.argv[3] === undefined) rmSync(dir, { recursive: true, force: true })
