// The console in Debian's headless Chromium, against the standalone proxy and its admin
// listener: sign in, watch the overview change while an enumerator is stopped, open the account,
// read why, unlock it and see the enumerator served again; look a reference up; a hostile
// account name stays text. Screenshots go to test-artifacts/console/ (git-ignored, CI artifacts).
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import { readAs } from '../admin/helpers.js'
import { hasChromium, launchChromium } from '../helpers/browser.js'
import { send } from '../helpers/http.js'
import { CONSOLE_CSS } from '../../src/admin/console/assets.js'
import { chartModel, chartSvg } from '../../src/admin/console/chart.js'
import { LIST_EVERY_MS } from '../../src/admin/console/pressure.js'
import { ACTIONS, MINUTES, type ChartAction, type MinuteCounts } from '../../src/admin/console/rate.js'
import { startConsole, TOKEN, type RunningConsole } from './helpers.js'

const SHOTS = join(process.env.SLUICE_ARTIFACTS ?? 'test-artifacts', 'console')
const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, name), fullPage: true })
const HOSTILE = '<img src=x onerror="window.__pwned=1">'
/** The accounts table is listed at most every 15 s for everyone: a test waiting for a new row waits that long. */
const LISTING_WAIT_MS = LIST_EVERY_MS + 10_000

let sluice: RunningConsole
let browser: Browser

/** A page that records script errors, console errors and dialogs (none may happen). */
async function watchedPage(): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } })
  const page = await context.newPage()
  const problems: string[] = []
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`))
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`))
  page.on('dialog', (d) => void problems.push(`dialog: ${d.message()}`))
  page.on('request', (r) => !r.url().startsWith(sluice.url) && problems.push(`external: ${r.url()}`))
  return { page, problems }
}

async function signInAs(page: Page, operator: string): Promise<void> {
  await page.goto(`${sluice.url}/console`)
  await page.getByLabel('Admin token').fill(TOKEN)
  await page.getByLabel('Your name').fill(operator)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL(`${sluice.url}/console`)
}

describe.skipIf(!hasChromium)('the console in headless Chromium', () => {
  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true })
    sluice = await startConsole()
    browser = await launchChromium()
  }, 30_000)
  afterAll(async () => {
    await browser?.close()
    await sluice?.close()
  })

  it('signs in, sees an enumerator stopped live, reads why, unlocks it and it is served again', async () => {
    const { page, problems } = await watchedPage()
    await page.goto(`${sluice.url}/console/accounts`)
    expect(page.url()).toContain('/console/login?next=')
    await shot(page, '1-sign-in.png')
    await signInAs(page, 'carol')
    const cookie = (await page.context().cookies()).find((c) => c.name === 'sluice_console')
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/console' })
    let navigations = 0
    page.on('framenavigated', () => navigations++)
    const before = await page.textContent('#chart-summary')

    // The enumerator: contacts one by one until it is disabled (5 distinct records).
    const statuses = await readAs(sluice.proxy.url, 'mallory', 'contacts', [1, 2, 3, 4, 5, 6, 7, 8])
    expect(statuses.slice(5)).toEqual([403, 403, 403])
    await page.waitForFunction((text) => document.getElementById('chart-summary')?.textContent !== text, before, {
      timeout: 10_000,
    })
    // The tables follow the shared listing (at most every 15 s), the chart every 3 s.
    await page
      .locator('#incidents-rows')
      .getByRole('link', { name: 'header:mallory' })
      .first()
      .waitFor({ timeout: LISTING_WAIT_MS })
    expect(navigations).toBe(0)
    expect(await page.textContent('#chart-summary')).toMatch(/disable/)
    await shot(page, '2-overview.png')

    await page.locator('#accounts-rows').getByRole('link', { name: 'header:mallory' }).click()
    await expect
      .poll(() => page.textContent('main'))
      .toMatch(/Disabled until .* by the limit “?10m distinctRecords 5 → disable/)
    await shot(page, '3-account.png')

    await page.locator('.disabled').getByRole('link').click()
    await expect.poll(() => page.textContent('.sentence')).toMatch(/was\s+disabled\s+on\s+route\s+contact/)
    expect(await page.textContent('main')).toContain('10m distinctRecords 5 → disable')
    await shot(page, '4-reference.png')

    await page.getByRole('link', { name: 'Open the account' }).click()
    await page.getByRole('link', { name: 'Unlock…' }).click()
    await page.getByLabel('Reason (optional)').fill('ticket 4711: confirmed user')
    await shot(page, '5-confirm-unlock.png')
    await page.getByRole('button', { name: 'Confirm: unlock' }).click()
    await expect.poll(() => page.textContent('.flash')).toContain('Unlocked')
    expect(await page.textContent('main')).toContain('Not disabled')
    await shot(page, '6-unlocked.png')

    // Served again (a record it already read: a sixth distinct one would disable it again).
    expect(await readAs(sluice.proxy.url, 'mallory', 'contacts', [1])).toEqual([200])
    const audited = sluice.proxy.logs.find((l) => l.event === 'sluice.admin.action' && l.action === 'unlock')
    expect(audited).toMatchObject({
      account: 'header:mallory',
      operator: 'carol',
      reason: 'ticket 4711: confirmed user',
    })
    expect(problems).toEqual([])
  }, 60_000)

  it('explains a reference pasted from a block page', async () => {
    const blocked = await send(sluice.proxy.url, '/api/invoices/1', { headers: { 'x-user': 'trent' } })
    expect(blocked.status).toBe(200)
    for (let id = 2; id <= 11; id++)
      await send(sluice.proxy.url, `/api/invoices/${id}`, { headers: { 'x-user': 'trent' } })
    const throttled = await send(sluice.proxy.url, '/api/invoices/12', { headers: { 'x-user': 'trent' } })
    expect(throttled.status).toBe(429)
    const reference = String(throttled.headers['sluice-reference'])
    const { page, problems } = await watchedPage()
    await signInAs(page, 'carol')
    await page.getByRole('link', { name: 'Reference lookup' }).click()
    await page.getByLabel('Reference from the block page').fill(` ${reference.toLowerCase()} `)
    await page.getByRole('button', { name: 'Explain' }).click()
    await expect
      .poll(() => page.textContent('.sentence'))
      .toMatch(/header:trent\s+was\s+throttled\s+on\s+route\s+invoice/)
    await shot(page, '7-reference-lookup.png')
    expect(problems).toEqual([])
  })

  it('shows a hostile account name as text: no markup, no script, no console error', async () => {
    const statuses = await readAs(sluice.proxy.url, HOSTILE, 'contacts', [1, 2, 3, 4, 5, 6])
    expect(statuses[5]).toBe(403)
    const { page, problems } = await watchedPage()
    await signInAs(page, 'carol')
    await page
      .locator('#accounts-rows')
      .getByRole('link', { name: `header:${HOSTILE}` })
      .waitFor({ timeout: LISTING_WAIT_MS })
    await shot(page, '8-hostile-overview.png')
    await page
      .locator('#accounts-rows')
      .getByRole('link', { name: `header:${HOSTILE}` })
      .click()
    expect(await page.textContent('h1')).toBe(`Account header:${HOSTILE}`)
    await page.goto(`${sluice.url}/console/incidents`)
    expect(await page.textContent('main')).toContain(`header:${HOSTILE}`)
    await shot(page, '9-incidents.png')
    await page.goto(`${sluice.url}/console/config`)
    await shot(page, '10-config.png')
    expect(await page.locator('img').count()).toBe(0)
    expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined()
    expect(problems).toEqual([])
  }, 60_000)

  it('draws two actions with the same counts so that both stay visible: dash patterns, marker shapes', async () => {
    // throttle and challenge the same every minute, disable and disabled too, log alone.
    const start = Date.now() - MINUTES * 60_000
    const minutes: MinuteCounts[] = Array.from({ length: MINUTES }, (_, i) => {
      const n = i < 30 ? 0 : Math.round(8 + 6 * Math.sin(i / 3))
      const actions = Object.fromEntries(ACTIONS.map((a) => [a, 0])) as Record<ChartAction, number>
      Object.assign(actions, { throttle: n, challenge: n, disable: i % 5 === 0 ? 3 : 0, log: i > 45 ? 2 : 0 })
      actions.disabled = actions.disable
      return { start: start + i * 60_000, actions, requests: 100 }
    })
    const model = chartModel(minutes)
    const { page, problems } = await watchedPage()
    await page.setContent(`<!doctype html><style>${CONSOLE_CSS}</style><main>${chartSvg(model).text}</main>`)
    const styles = await page.$$eval('#chart .series', (series) =>
      series.map((g) => {
        const line = g.querySelector('.line') as SVGPathElement
        const marks = g.querySelector('.marks') as SVGPathElement
        return {
          dash: getComputedStyle(line).strokeDasharray,
          color: getComputedStyle(line).stroke,
          marks: marks.getAttribute('d') ?? '',
        }
      }),
    )
    expect(styles).toHaveLength(ACTIONS.length)
    expect(new Set(styles.map((s) => s.dash)).size).toBe(ACTIONS.length)
    expect(new Set(styles.map((s) => s.color)).size).toBe(ACTIONS.length)
    // The same line, different markers.
    const [throttle, challenge] = model.lines
    expect(throttle?.line).toBe(challenge?.line)
    expect(throttle?.marks).not.toBe(challenge?.marks)
    expect(styles[0]?.marks).not.toBe('')
    expect(await page.locator('.legend li').count()).toBe(ACTIONS.length)
    await shot(page, '11-chart-overlap.png')
    expect(problems).toEqual([])
  })
})
