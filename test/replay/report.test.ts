// The HTML report in a real browser (Debian's headless Chromium): a chart per route and
// window with its thresholds drawn, "requests only" where the log cannot show records, no
// console errors, nothing fetched, hostile log strings inert. The screenshot is an artifact
// of the run (screenshotPath), not committed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { compileConfigText } from '../../src/config/index.js'
import { replayLogs } from '../../src/replay/replay.js'
import { renderReport } from '../../src/replay/report.js'
import { suggestLimits } from '../../src/replay/suggest.js'
import { hasChromium, launchChromium, screenshotPath } from '../helpers/browser.js'
import { REPORT_CONFIG } from './fixtures.js'
import { combined, FAST, population, SLOW } from './population.js'

// An account name that would fetch an image and run a script if it were not escaped (no
// spaces: it has to survive as one field of a combined log line).
const HOSTILE = "<img/src=//127.0.0.1:9/pwned.png><script>document.title='pwned'</script>"

const dir = mkdtempSync(join(tmpdir(), 'sluice-report-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe.skipIf(!hasChromium)('the HTML report in headless Chromium', () => {
  let browser: Browser
  let file: string

  beforeAll(async () => {
    const lines = [...population({ clerks: 60, days: 1 })].map((h) => combined(h))
    // The hostile account walks 400 contacts at 12:00: flagged, among the top accounts, blocked.
    for (let i = 0; i < 400; i++) {
      lines.push(
        combined({
          time: Date.UTC(2024, 2, 11, 12) + i * 5000,
          account: HOSTILE,
          client: '10.9.9.9',
          method: 'GET',
          target: `/api/contacts/${70_000 + i}`,
          status: 200,
          bytes: 700,
          agent: 'x',
        }),
      )
    }
    const log = join(dir, 'access.log')
    writeFileSync(log, lines.join('\n') + '\n')
    const result = await replayLogs(compileConfigText(REPORT_CONFIG, 'test.yaml'), [log])
    expect(result.routes[0]?.accounts.has(HOSTILE)).toBe(true)
    file = join(dir, 'report.html')
    writeFileSync(file, renderReport(result, suggestLimits(result), { config: 'sluice.yaml' }))
    browser = await launchChromium()
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
  })

  it('draws a chart per route and window with its thresholds, and fetches nothing', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
    const errors: string[] = []
    const requests: string[] = []
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') errors.push(m.text())
    })
    page.on('pageerror', (e) => errors.push(e.message))
    page.on('request', (r) => requests.push(r.url()))
    const url = pathToFileURL(file).href
    await page.goto(url, { waitUntil: 'load' })

    expect(await page.title()).toBe('sluice replay')
    expect(requests).toEqual([url])
    expect(errors).toEqual([])
    expect(await page.locator('img, script').count()).toBe(0)

    const charts = await page.$$eval('svg.chart', (svgs) =>
      svgs.map((svg) => {
        const box = svg.getBoundingClientRect()
        const bars = [...svg.querySelectorAll('rect.bar')].map((b) => (b as SVGGraphicsElement).getBBox())
        return {
          route: svg.getAttribute('data-route'),
          window: svg.getAttribute('data-window'),
          kind: svg.getAttribute('data-kind'),
          width: box.width,
          tallBars: bars.filter((b) => b.height > 1).length,
          current: [...svg.querySelectorAll('line.threshold.current')].map((l) => Number(l.getAttribute('data-value'))),
          suggested: svg.querySelectorAll('line.threshold.suggested').length,
        }
      }),
    )
    // The ladders share a chart: contact's 1m distinct, 1m requests, 1h distinct (60 and 100).
    expect(charts.map((c) => `${c.route} ${c.window} ${c.kind}`)).toEqual([
      'contact 1m distinctRecords',
      'contact 1m requests',
      'contact 1h distinctRecords',
      'contact-list 10m distinctRecords',
      'contact-search 1m requests',
    ])
    expect(charts.map((c) => c.current)).toEqual([[20], [40], [60, 100], [100], [20]])
    for (const c of charts) {
      expect(c.width).toBeGreaterThan(300)
      expect(c.tallBars).toBeGreaterThan(0)
      expect(c.suggested).toBeGreaterThan(0)
    }

    // Body records: marked, and their distinct window shown as not measured.
    const search = page.locator('#route-contact-search')
    await expect(search.locator('.badge').textContent()).resolves.toBe('requests only')
    await expect(search.locator('figure.unmeasured').textContent()).resolves.toContain(
      '10m distinct records: not in access logs',
    )
    await expect(page.locator('ul.warnings').textContent()).resolves.toContain(
      'route contact-search: records come from the response body',
    )

    // The enumerators are flagged; the hostile name is text, not markup.
    const flagged = await page.$$eval('#route-contact tr.scraper td:first-child', (tds) =>
      tds.map((td) => td.textContent),
    )
    expect(flagged).toEqual(expect.arrayContaining([`${FAST} ⚑`, `${SLOW} ⚑`, `${HOSTILE} ⚑`]))

    await page.screenshot({ path: screenshotPath('replay-report.png'), fullPage: true })
    await page.close()
  }, 60_000)
})
