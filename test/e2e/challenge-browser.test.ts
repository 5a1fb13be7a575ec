// The challenge in a real browser (Debian's headless Chromium): a person is let through after
// the page solves the proof of work by itself; a script that ignores it gets nothing more.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser } from 'playwright-core'
import { hasChromium, launchChromium, screenshotPath } from '../helpers/browser.js'
import { basic } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const CONFIG = `
version: 1
upstream: { url: UPSTREAM, timeout: 5s }
identity: [{ type: basic }]
routes:
  - name: contact
    methods: [GET]
    path: /contacts/:id
    records: { param: id }
    limits:
      - { window: 10m, distinctRecords: 3, action: challenge }
actions:
  challenge: { difficulty: 300000 }
`

let upstream: Upstream
let proxy: RunningProxy
let browser: Browser

describe.skipIf(!hasChromium)('challenge in headless Chromium', () => {
  beforeAll(async () => {
    upstream = await startUpstream((req, res) => {
      const id = /^\/contacts\/(\d+)$/.exec(req.url ?? '')?.[1]
      res.writeHead(id ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' })
      res.end(
        id
          ? `<!doctype html><title>Contact ${id}</title><h1 id="name">Contact ${id}</h1><p>Rue du Marché ${id}, 1204 Genève</p>`
          : 'not found',
      )
    })
    proxy = await startProxy(CONFIG, { upstream: upstream.url })
    browser = await launchChromium()
  }, 30_000)
  afterAll(async () => {
    await browser?.close()
    await proxy?.close()
    await upstream?.close()
  })

  it('a person browsing past the limit solves the page and ends on the data; then browses on with the pass', async () => {
    const context = await browser.newContext({ extraHTTPHeaders: basic('clerk') })
    const page = await context.newPage()
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(e.message))
    const external: string[] = []
    page.on('request', (r) => {
      if (!r.url().startsWith(proxy.url)) external.push(r.url())
    })

    for (let id = 1; id <= 3; id++) {
      const res = await page.goto(`${proxy.url}/contacts/${id}`)
      expect(res?.status()).toBe(200)
    }
    const started = Date.now()
    const challenged = await page.goto(`${proxy.url}/contacts/4`)
    expect(challenged?.status()).toBe(429)
    // The page solves, sets its cookie and reloads by itself: the data appears.
    await page.waitForSelector('#name', { timeout: 60_000 })
    const solvedMs = Date.now() - started
    expect(await page.textContent('#name')).toBe('Contact 4')
    await page.screenshot({ path: screenshotPath('challenge-solved.png') })
    console.log(`browser solved a difficulty-300000 challenge and loaded the data in ${solvedMs} ms`)

    // With the pass cookie, the next records load directly.
    for (let id = 5; id <= 8; id++) {
      const res = await page.goto(`${proxy.url}/contacts/${id}`)
      expect(res?.status()).toBe(200)
      expect(await page.textContent('#name')).toBe(`Contact ${id}`)
    }
    const cookies = await context.cookies()
    expect(cookies.find((c) => c.name === 'sluice_pass')?.httpOnly).toBe(true)
    expect(cookies.find((c) => c.name === 'sluice_solution')).toBeUndefined() // spent and cleared
    expect(errors).toEqual([])
    expect(external).toEqual([])
    await context.close()
  }, 90_000)

  it('a script that ignores the challenge gets nothing more', async () => {
    const context = await browser.newContext({ extraHTTPHeaders: basic('scraper') })
    const page = await context.newPage()
    expect((await page.goto(`${proxy.url}/contacts/1`))?.status()).toBe(200)
    const before = upstream.received.length
    // Runs in the page: fetch() sends the identity but never runs the challenge page's script.
    const results = await page.evaluate(async (base) => {
      const out: { status: number; hasData: boolean }[] = []
      for (let id = 2; id <= 30; id++) {
        const res = await fetch(`${base}/contacts/${id}`)
        const text = await res.text()
        out.push({ status: res.status, hasData: text.includes('Rue du Marché') })
      }
      return out
    }, proxy.url)
    expect(results.slice(0, 2).every((r) => r.status === 200 && r.hasData)).toBe(true) // records 2 and 3
    expect(results.slice(2).every((r) => r.status === 429 && !r.hasData)).toBe(true)
    expect(upstream.received.length - before).toBe(2)
    await page.screenshot({ path: screenshotPath('challenge-script.png') })
    await context.close()
  }, 60_000)
})
