// RSS and heap of one process holding N active accounts × 3 routes with full windows
// (memory store). Run by bench/run.js with --expose-gc; prints JSON.
import { Engine, MemoryStore } from '../dist/index.js'
import { buildPolicy } from '../dist/engine/policy.js'

const accounts = Number(process.argv[2] ?? 10_000)
const LIMITS = [
  { kind: 'requests', windowMs: 60_000, max: 30, action: 'throttle' },
  { kind: 'distinctRecords', windowMs: 600_000, max: 20, action: 'throttle' },
]
const routes = ['contact', 'parcel', 'invoice'].map((name) => buildPolicy(name, LIMITS, false))
const store = new MemoryStore({ maxAccounts: accounts })
const engine = new Engine(store, { disableForMs: 60_000 })

global.gc?.()
const base = process.memoryUsage()
let now = Date.now()
for (let a = 0; a < accounts; a++) {
  const account = `acct-${a}`
  for (const policy of routes) {
    // Fill every window to its cap: 31 request timestamps, 21 distinct records.
    for (let i = 0; i < 31; i++) engine.observe(account, policy, i < 21 ? [String(1_000_000 + a * 50 + i)] : [], now++)
  }
}
global.gc?.()
const used = process.memoryUsage()
console.log(JSON.stringify({
  describe: '3 routes × (30 requests/1m + 20 distinct records/10m), windows at their caps',
  accounts: store.size,
  rssMB: Math.round(used.rss / 2 ** 20),
  heapUsedMB: Math.round(used.heapUsed / 2 ** 20),
  baseRssMB: Math.round(base.rss / 2 ** 20),
}))
