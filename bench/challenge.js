// `node bench/challenge.js`: how long the proof of work takes to solve, per difficulty, in Node
// (altcha-lib's solver, what an API client would use) and in Debian's headless Chromium (the
// challenge page's own solver). Numbers for docs/challenge.md; not part of `npm run bench`.
// Needs `npm run build` first (it uses dist/) and /usr/bin/chromium for the browser column.
import { existsSync } from 'node:fs'
import { solveChallenge } from 'altcha-lib'
import { deriveKey } from 'altcha-lib/algorithms/sha'
import { chromium } from 'playwright-core'
import { Challenges } from '../dist/actions/challenge.js'
import { challengePage } from '../dist/actions/challenge-page.js'
import { MemoryStore } from '../dist/store/memory.js'

const DIFFICULTIES = [50_000, 300_000, 1_000_000, 3_000_000]
const SAMPLES = 5
const limit = { id: 'bench', index: 0, action: 'challenge' }
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const browser = existsSync('/usr/bin/chromium')
  ? await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox'] })
  : null
const rows = []
for (const difficulty of DIFFICULTIES) {
  const challenges = new Challenges(
    { difficulty, validForMs: 600_000, timeoutMs: 300_000, secret: 'bench-secret-0123456789' },
    new MemoryStore({ maxAccounts: 10 }),
  )
  const node = []
  const web = []
  for (let i = 0; i < SAMPLES; i++) {
    const challenge = await challenges.issue('bench', limit, Date.now())
    let t = performance.now()
    await solveChallenge({ challenge, deriveKey })
    node.push(performance.now() - t)
    if (browser) {
      const page = await browser.newPage()
      // The page reloads itself once solved: that second request ends the timing.
      let served = 0
      let solved
      const done = new Promise((resolve) => (solved = resolve))
      await page.route('**/*', (route) => {
        if (served++ === 0)
          return route.fulfill({ status: 429, contentType: 'text/html', body: challengePage(challenge) })
        solved(performance.now())
        return route.fulfill({ status: 200, contentType: 'text/plain', body: 'ok' })
      })
      t = performance.now()
      await page.goto('http://127.0.0.1/challenge')
      web.push((await done) - t)
      await page.close()
    }
  }
  rows.push({
    difficulty,
    node: median(node),
    nodeMax: Math.max(...node),
    browser: browser ? median(web) : null,
    browserMax: browser ? Math.max(...web) : null,
  })
}
await browser?.close()

console.log(`| difficulty | Node (altcha-lib) median / max | Chromium page median / max |`)
console.log(`|---:|---:|---:|`)
for (const r of rows) {
  const ms = (v) => (v === null ? 'n/a' : `${Math.round(v)} ms`)
  console.log(
    `| ${r.difficulty.toLocaleString('en')} | ${ms(r.node)} / ${ms(r.nodeMax)} | ${ms(r.browser)} / ${ms(r.browserMax)} |`,
  )
}
