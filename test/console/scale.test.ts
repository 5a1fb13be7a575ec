// Time to first render with 100,000 tracked accounts (memory store), and the page weight: the
// numbers docs/console.md quotes. Asserted loosely (the machine may be busy); printed exactly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser } from 'playwright-core'
import { buildAdmin } from '../../src/admin/server.js'
import { Metrics } from '../../src/admin/metrics.js'
import { compileConfigText } from '../../src/config/index.js'
import { MemoryStore } from '../../src/store/memory.js'
import { adminConfig } from '../admin/helpers.js'
import { hasChromium, launchChromium } from '../helpers/browser.js'
import { signIn, TOKEN } from './helpers.js'

const ACCOUNTS = 100_000
let url: string
let admin: Awaited<ReturnType<typeof buildAdmin>>
let browser: Browser | undefined

beforeAll(async () => {
  const config = compileConfigText(adminConfig().replaceAll('UPSTREAM', 'http://127.0.0.1:1'), 'test.yaml', { env: {} })
  const policy = config.routes[0]?.policy as NonNullable<(typeof config.routes)[0]>['policy']
  const store = new MemoryStore({ maxAccounts: ACCOUNTS * 2 })
  const now = Date.now()
  for (let i = 0; i < ACCOUNTS; i++)
    store.hit({
      account: `header:user-${i}`,
      policy,
      records: [`${i % 7}`, `${i % 3}`],
      now,
      shadow: false,
      disableForMs: 3_600_000,
    })
  admin = await buildAdmin({
    token: TOKEN,
    metrics: new Metrics(),
    store,
    policies: config.routes.map((r) => r.policy),
    console: { sessionTtlMs: 3_600_000, config: () => config, loadedAt: () => now },
  })
  url = await admin.listen({ host: '127.0.0.1', port: 0 })
  if (hasChromium) browser = await launchChromium()
}, 120_000)
afterAll(async () => {
  await browser?.close()
  await admin.close()
})

describe(`the console with ${ACCOUNTS.toLocaleString('en')} tracked accounts`, () => {
  it('serves the overview and an account page quickly; prints their time and weight', async () => {
    const { cookie } = await signIn(url)
    const timed = async (path: string) => {
      const start = performance.now()
      const res = await fetch(`${url}${path}`, { headers: { cookie } })
      const text = await res.text()
      expect(res.status).toBe(200)
      return { ms: Math.round(performance.now() - start), bytes: Buffer.byteLength(text) }
    }
    await timed('/console') // warm-up: the first listing compiles the code paths
    const overview = await timed('/console')
    const account = await timed('/console/accounts/header%3Auser-4242')
    const js = await timed('/console/console.js')
    const css = await timed('/console/console.css')
    console.log(
      `server: overview ${overview.ms} ms (${overview.bytes} B HTML), account ${account.ms} ms (${account.bytes} B); ` +
        `console.js ${js.bytes} B, console.css ${css.bytes} B; overview page weight ${overview.bytes + js.bytes + css.bytes} B`,
    )
    expect(overview.ms).toBeLessThan(3000)
    expect(account.ms).toBeLessThan(1000)
  })

  it.skipIf(!hasChromium)('renders the overview in the browser: first contentful paint', async () => {
    const context = await (browser as Browser).newContext()
    const page = await context.newPage()
    await page.goto(`${url}/console/login`)
    await page.getByLabel('Admin token').fill(TOKEN)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForURL(`${url}/console`)
    for (const path of ['/console', '/console/accounts/header%3Auser-4242']) {
      const start = Date.now()
      await page.goto(`${url}${path}`)
      // The paint entry may come after the load event: wait for it.
      const fcp = await page.evaluate(
        () =>
          new Promise<number>((resolve) =>
            new PerformanceObserver((list) => {
              const paint = list.getEntriesByName('first-contentful-paint')[0]
              if (paint) resolve(paint.startTime)
            }).observe({ type: 'paint', buffered: true }),
          ),
      )
      console.log(
        `browser: ${path} first contentful paint ${Math.round(fcp)} ms after navigation start (load ${Date.now() - start} ms)`,
      )
      expect(fcp).toBeGreaterThan(0)
    }
  })
})
