// Store churn (issue 13): a memory store full of real accounts with open windows, then a
// flood of fresh identities, each naming limit + 1 records (answered by sluice itself, the
// cheapest flood there is). Measures memory and time, and checks that no real account was
// reset or unlocked. Run by bench/run.js with --expose-gc; prints JSON.
import { buildPolicy } from '../dist/engine/policy.js'
import { Engine, MemoryStore } from '../dist/index.js'

const accounts = Number(process.argv[2] ?? 100_000)
const flood = Number(process.argv[3] ?? 1_000_000)
const policy = buildPolicy(
  'contact',
  [
    { kind: 'requests', windowMs: 60_000, max: 30, action: 'throttle' },
    { kind: 'distinctRecords', windowMs: 600_000, max: 20, action: 'disable' },
  ],
  false,
)
let overflowed = 0
const store = new MemoryStore({ maxAccounts: accounts, onOverflow: () => overflowed++ })
const engine = new Engine(store, { disableForMs: 86_400_000 })
const mb = (n) => Math.round(n / 2 ** 20)

let now = Date.now()
// Real accounts: 5 records each; every 100th disabled (21 records in one request).
for (let a = 0; a < accounts; a++) {
  const ids = Array.from({ length: a % 100 === 0 ? 21 : 5 }, (_, i) => String(a * 100 + i))
  engine.observe(`user:${a}`, policy, ids, now++)
}
global.gc?.()
const before = process.memoryUsage()

const started = performance.now()
for (let i = 0; i < flood; i++) {
  const ids = Array.from({ length: 21 }, (_, k) => `f${i}-${k}`)
  engine.observe(`session:${i.toString(36)}`, policy, ids, now + (i % 1000), {
    overflowKey: () => `10.${i % 250}.${(i >> 8) % 4}.0/24`,
  })
}
const floodMs = performance.now() - started
global.gc?.()
const after = process.memoryUsage()

// Every real account kept its count; every disabled one is still disabled.
let intact = 0
let stillDisabled = 0
let disabledBefore = 0
for (let a = 0; a < accounts; a++) {
  const d = engine.observe(`user:${a}`, policy, [], now + 2000)
  if (a % 100 === 0) {
    disabledBefore++
    if (d.kind === 'disabled') stillDisabled++
  } else if (d.counts[1] === 5) intact++
}
console.log(
  JSON.stringify({
    accounts,
    flood,
    floodSeconds: Math.round(floodMs) / 1000,
    rssMB: { before: mb(before.rss), after: mb(after.rss) },
    heapUsedMB: { before: mb(before.heapUsed), after: mb(after.heapUsed) },
    storeSize: store.size,
    held: store.held,
    overflowed,
    intact: `${intact} / ${accounts - disabledBefore}`,
    stillDisabled: `${stillDisabled} / ${disabledBefore}`,
  }),
)
