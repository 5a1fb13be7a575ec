// RSS and heap of one process holding N active accounts × 3 routes with full windows
// (memory store). Run by bench/run.js with --expose-gc; prints JSON.
import { Engine, MemoryStore } from '../dist/index.js'
import { DESCRIBE, FILL, recordsOf, ROUTES } from './shape.js'

const accounts = Number(process.argv[2] ?? 10_000)
const store = new MemoryStore({ maxAccounts: accounts })
const engine = new Engine(store, { disableForMs: 60_000 })

global.gc?.()
const base = process.memoryUsage()
let now = Date.now()
for (let a = 0; a < accounts; a++) {
  const account = `acct-${a}`
  // Fill every window to its cap: 31 request timestamps, 21 distinct records.
  for (const policy of ROUTES) for (let i = 0; i < FILL; i++) engine.observe(account, policy, recordsOf(a, i), now++)
}
global.gc?.()
const used = process.memoryUsage()
console.log(
  JSON.stringify({
    describe: DESCRIBE,
    accounts: store.size,
    rssMB: Math.round(used.rss / 2 ** 20),
    heapUsedMB: Math.round(used.heapUsed / 2 ** 20),
    // The young generation is most of the gap between heapTotal and heapUsed: V8 grows it to
    // 2 × 16 MB (Node 20/22) or, on Node 24, up to 2 × 64 MB (1/64 of the heap limit, which follows the
    // machine's memory) under allocation; --max-semi-space-size caps it.
    heapTotalMB: Math.round(used.heapTotal / 2 ** 20),
    arenaMB: Math.round(store.stats().bytesReserved / 2 ** 20),
    baseRssMB: Math.round(base.rss / 2 ** 20),
  }),
)
