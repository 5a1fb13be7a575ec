// The demo's server-rendered portal in a real browser (Debian's headless Chromium), through
// sluice with examples/demo.yaml: an honest clerk logs in at the form and browses without a
// single block, and the AJAX quick view gets through a challenge by itself (its page includes
// /__sluice/challenge.js): the rows keep coming, no error shown.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLegacyApp, type LegacyApp } from '../../src/demo/legacy-app.js'
import { hasChromium, launchChromium, screenshotPath } from '../helpers/browser.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'

const DEMO = readFileSync(join(import.meta.dirname, '../../examples/demo.yaml'), 'utf8').replace(
  'http://127.0.0.1:3000',
  'UPSTREAM',
)

let app: LegacyApp
let proxy: RunningProxy
let browser: Browser

describe.skipIf(!hasChromium && process.env.CI === undefined)('the portal in headless Chromium', () => {
  beforeAll(async () => {
    app = await startLegacyApp({ contacts: 300 })
    proxy = await startProxy(DEMO, { upstream: app.url })
    browser = await launchChromium()
  }, 30_000)
  afterAll(async () => {
    await browser?.close()
    await proxy?.close()
    await app?.close()
  })

  async function loggedIn(user: string) {
    const context = await browser.newContext()
    const page = await context.newPage()
    const statuses: number[] = []
    page.on('response', (r) => {
      if (r.url().startsWith(proxy.url)) statuses.push(r.status())
    })
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(e.message))
    await page.goto(`${proxy.url}/`)
    await page.fill('input[name=username]', user)
    await page.fill('input[name=password]', `${user}-pw`)
    await Promise.all([page.waitForURL(`${proxy.url}/`), page.click('button[type=submit]')])
    return { page, statuses, errors }
  }

  it('a clerk browses the list, opens contacts and exports a page without a single block', async () => {
    const { page, statuses, errors } = await loggedIn('alice')
    await page.goto(`${proxy.url}/addressbook/list.do`)
    for (let p = 0; p < 3; p++) {
      // Open two contacts of the page, come back, go to the next page.
      for (const n of [1, 5]) {
        await page.click(`table.results tr:nth-child(${n + 1}) a`)
        await page.waitForSelector('dl.contact')
        await page.goBack()
      }
      await page.click('text=Next »')
      await page.waitForURL(/page=\d+/)
    }
    const download = await Promise.all([page.waitForEvent('download'), page.click('text=Export this page (CSV)')])
    expect(download[0].suggestedFilename()).toBe('addressbook.csv')
    await page.screenshot({ path: screenshotPath('portal-clerk.png') })
    expect(statuses.filter((s) => s >= 400)).toEqual([])
    expect(errors).toEqual([])
  }, 60_000)

  it('the AJAX quick view solves a challenge by itself and keeps loading rows', async () => {
    const { page, statuses, errors } = await loggedIn('bob')
    await page.goto(`${proxy.url}/addressbook/ajax.html`)
    const status = (text: string) =>
      page.waitForFunction((t) => document.getElementById('status')?.textContent === t, text, { timeout: 20_000 })
    await status('Page 1 loaded')
    // book-rows challenges past 60 distinct rows: the 4th page of 20 is the first challenged.
    for (let p = 2; p <= 5; p++) {
      await page.click('#more')
      await status(`Page ${p} loaded`)
    }
    await page.screenshot({ path: screenshotPath('portal-ajax.png') })
    expect(await page.locator('#rows tr').count()).toBe(100)
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0) // challenged, and answered
    expect(errors).toEqual([])
  }, 90_000)
})
