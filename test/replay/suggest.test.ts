// `sluice suggest` on a generated office: thresholds above what honest clerks do (the p99.9
// with the documented ×2 margin), below both enumerators, as YAML that parses; ladders keep
// their order; no number from a log shorter than the window or from records it cannot see.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { compileConfigText } from '../../src/config/index.js'
import { replayLogs, type ReplayResult, type RouteStats } from '../../src/replay/replay.js'
import { formatSuggestionYaml, roundUp2, suggestLimits, type Suggestion } from '../../src/replay/suggest.js'
import { formatReplayText } from '../../src/replay/summary.js'
import { SUGGEST_CONFIG } from './fixtures.js'
import { combined, FAST, population, SLOW } from './population.js'

const dir = mkdtempSync(join(tmpdir(), 'sluice-suggest-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const config = () => compileConfigText(SUGGEST_CONFIG, 'test.yaml')

function writeLog(name: string, lines: Iterable<string>): string {
  const file = join(dir, name)
  writeFileSync(file, [...lines].join('\n') + '\n')
  return file
}

/** p-th percentile, nearest rank: the definition suggest documents. */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] as number
}

const routeNamed = (r: ReplayResult, name: string) => r.routes.find((s) => s.route.name === name) as RouteStats

describe('suggest on honest clerks, a slow and a fast enumerator', () => {
  let result: ReplayResult
  let suggestion: Suggestion
  beforeAll(async () => {
    // Two working days and the night between: the log is longer than the longest window (1d).
    const file = writeLog(
      'office.log',
      [...population({ clerks: 150, days: 2 })].map((h) => combined(h)),
    )
    result = await replayLogs(config(), [file])
    suggestion = suggestLimits(result)
  })

  it('flags both enumerators and leaves them out of the percentile', () => {
    const flagged = suggestion.routes[0]?.scrapers.map((s) => s.account).sort()
    expect(flagged).toEqual([FAST, SLOW].sort())
  })

  it('puts every threshold above the honest p99.9 × 2 and below the enumerators that reach it', () => {
    const route = routeNamed(result, 'contact')
    const honest = [...route.accounts.values()].filter((a) => a.account !== SLOW && a.account !== FAST)
    expect(honest.length).toBe(150)
    const slow = route.accounts.get(SLOW)!
    const fast = route.accounts.get(FAST)!
    for (const [i, l] of (suggestion.routes[0]?.limits ?? []).entries()) {
      const p999 = percentile(
        honest.map((a) => a.max[i] as number),
        99.9,
      )
      expect(l.percentileValue, l.limit.label).toBe(p999)
      expect(l.suggested, l.limit.label).not.toBeNull()
      expect(l.suggested!, l.limit.label).toBeGreaterThanOrEqual(Math.max(10, roundUp2(p999 * 2)))
      expect(l.honestAbove, l.limit.label).toBe(0)
      // The fast one (4 a second) stands above every window; the slow one (one every 12 s)
      // hides in a minute, and is what the hour and the day are for.
      expect(l.suggested!, l.limit.label).toBeLessThan(fast.max[i] as number)
      if (l.limit.windowMs >= 3_600_000) expect(l.suggested!, l.limit.label).toBeLessThan(slow.max[i] as number)
    }
  })

  it('keeps each ladder in order: the harsher step fires after the milder one, at its configured ratio', () => {
    const [minuteDistinct, minuteRequests, hourLog, hourChallenge] = suggestion.routes[0]!.limits
    // requests ≥ distinct records always: 1m requests → disable keeps 40/20 of the throttle step
    expect(minuteRequests!.suggested!).toBeGreaterThanOrEqual(minuteDistinct!.suggested! * 2)
    expect(minuteRequests!.ladder).toBe(0)
    expect(hourChallenge!.suggested!).toBeGreaterThanOrEqual(Math.ceil((hourLog!.suggested! * 100) / 60))
    expect(hourChallenge!.suggested!).toBeGreaterThan(hourLog!.suggested!)
  })

  it('prints a YAML snippet that parses to the suggested numbers', () => {
    const text = formatSuggestionYaml(suggestion, result)
    const doc = parse(text) as { routes: { name: string; limits: Record<string, unknown>[] }[] }
    expect(doc.routes.map((r) => r.name)).toEqual(['contact', 'contact-list'])
    const contact = doc.routes[0]!
    expect(contact.limits).toHaveLength(5)
    contact.limits.forEach((l, i) => {
      const s = suggestion.routes[0]!.limits[i]!
      expect(l).toEqual({
        window: ['1m', '1m', '1h', '1h', '1d'][i],
        [s.limit.kind]: s.suggested,
        action: s.limit.action,
      })
    })
    expect(text).toContain(`# likely scraper: ${FAST}`)
    expect(text).toMatch(/p99\.9 of honest accounts' highest count per window × 2/)
  })
})

describe('suggest says what it cannot know', () => {
  it('proposes nothing for a window longer than the log, and says so', async () => {
    // 08:00–12:00 of one day: a 4-hour log against a 1d window.
    const morning = [...population({ clerks: 40, days: 1, slow: false })].filter(
      (h) => h.time < Date.UTC(2024, 2, 11, 12),
    )
    const r = await replayLogs(config(), [
      writeLog(
        'morning.log',
        morning.map((h) => combined(h)),
      ),
    ])
    const s = suggestLimits(r)
    const day = s.routes[0]!.limits[4]!
    expect(day.suggested).toBeNull()
    expect(day.kept).toMatch(/the log covers 3h\d+m, less than this 1d window/)
    expect(s.routes[0]!.limits[0]!.suggested).not.toBeNull()
    expect(r.warnings.join('\n')).toMatch(/less than the 1d window of route contact:/)
    const doc = parse(formatSuggestionYaml(s, r)) as { routes: { limits: Record<string, unknown>[] }[] }
    expect(doc.routes[0]!.limits[4]).toEqual({ window: '1d', distinctRecords: 300, action: 'disable' })
    expect(formatReplayText(r)).toContain('warning    the log covers 3h')
  })

  it('counts only requests on a route whose records come from bodies, and proposes no distinct limit there', async () => {
    const yaml = `
version: 1
upstream: { url: http://127.0.0.1:9 }
routes:
  - name: search
    methods: [POST]
    path: /api/contacts/search
    records: { response: "$.items[*].id" }
    limits:
      - { window: 1m, requests: 20, action: throttle }
      - { window: 10m, distinctRecords: 100, action: challenge }
`
    const lines = [...population({ clerks: 40, days: 1 })].map((h) => combined(h))
    const r = await replayLogs(compileConfigText(yaml, 'test.yaml'), [writeLog('search.log', lines)])
    const route = r.routes[0]!
    expect(route.requestsOnly).toBe('response')
    expect(route.requests).toBeGreaterThan(100)
    expect(r.warnings[0]).toMatch(
      /route search: records come from the response body, which access logs do not carry; only its requests are counted/,
    )
    const s = suggestLimits(r)
    expect(s.routes[0]!.limits[0]!.suggested).not.toBeNull()
    expect(s.routes[0]!.limits[1]!.suggested).toBeNull()
    expect(s.routes[0]!.limits[1]!.kept).toMatch(/access logs do not carry/)
    const text = formatReplayText(r)
    expect(text).toContain('(not in access logs: requests only)')
    expect(text).toMatch(/10m distinctRecords 100 → challenge\s+n\/a\s+records not in the log/)
  })
})

describe('strings from the log cannot escape their place', () => {
  it('an account with a newline and terminal escapes stays inside its YAML comment and prints inert', async () => {
    const evil = 'x\n  - name: pwned\n    limits: []\n\u001b[2J\u202e'
    const lines: string[] = []
    const t0 = Date.UTC(2024, 2, 11, 8)
    // 30 quiet accounts and one that walks 500 contacts in a day: it is flagged, so its name is printed.
    for (let a = 0; a < 30; a++)
      for (let i = 0; i < 40; i++)
        lines.push(
          JSON.stringify({
            time: t0 + a * 1000 + i * 60_000 * 20,
            method: 'GET',
            url: `/api/contacts/${a * 7 + (i % 5)}`,
            user: `clerk${a}`,
          }),
        )
    for (let i = 0; i < 500; i++)
      lines.push(
        JSON.stringify({
          time: t0 + 3_600_000 + i * 30_000,
          method: 'GET',
          url: `/api/contacts/${9000 + i}?q=%1b`,
          user: evil,
        }),
      )
    lines.push(JSON.stringify({ time: t0 + 26 * 3_600_000, method: 'GET', url: '/', user: 'clerk0' }))
    const r = await replayLogs(config(), [writeLog('evil.jsonl', lines)])
    const s = suggestLimits(r)
    expect(s.routes[0]!.scrapers.map((x) => x.account)).toEqual([evil])
    const yaml = formatSuggestionYaml(s, r)
    const doc = parse(yaml) as { routes: { name: string }[] }
    expect(doc.routes.map((x) => x.name)).toEqual(['contact', 'contact-list'])
    expect(yaml).toContain('# likely scraper: x\\x0A  - name: pwned\\x0A    limits: []\\x0A\\x1B[2J\\u{202E}')
    const text = formatReplayText(r)
    // eslint-disable-next-line no-control-regex -- no control character may reach a terminal
    expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u202e]/)
    expect(text).toContain('x\\x0A  - name: pwned')
  })
})
