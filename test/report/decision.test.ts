// The decision sink (src/report/reporter.ts) without a server: what one decision writes to the
// log, the audit trail (a real one, in a temp dir), the incident list and the webhooks; record
// ids as pseudonyms everywhere when pseudonymise is on; a webhook per account, route, limit and
// kind at most once a minute; operator events audited and sent on.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyBaseLogger } from 'fastify'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { AuditTrail, pseudonymise } from '../../src/audit/index.js'
import type { CompiledRoute } from '../../src/config/compile.js'
import type { Decision, DecisionKind } from '../../src/engine/engine.js'
import { buildPolicy, type Limit } from '../../src/engine/policy.js'
import type { IncidentEvent, Notifier } from '../../src/notify/index.js'
import { Reporter, type DecisionContext, type Incident } from '../../src/report/reporter.js'
import { removeTempDirs, tempDir } from '../audit/helpers.js'

afterAll(removeTempDirs)
afterEach(() => {
  vi.restoreAllMocks()
})

const KEY = 'pseudonym-key-0123456789abcdef01'
const NOW = Date.UTC(2024, 2, 11, 14, 20)
const p = (id: string, key: string = KEY) => `~${pseudonymise(key, id)}`

const policy = buildPolicy(
  'contact',
  [
    { kind: 'distinctRecords', windowMs: 60_000, max: 20, action: 'throttle' },
    { kind: 'requests', windowMs: 60_000, max: 40, action: 'disable' },
  ],
  false,
)
const route = { name: 'contact', policy } as unknown as CompiledRoute
const [throttleLimit, disableLimit] = policy.limits as [Limit, Limit]
const T = '1m distinctRecords 20 → throttle'
const D = '1m requests 40 → disable'

function decision(kind: DecisionKind, more: Partial<Decision> = {}): Decision {
  const limit = kind === 'disable' || kind === 'disabled' ? disableLimit : kind === 'throttle' ? throttleLimit : null
  return {
    kind,
    block: kind !== 'allow' && kind !== 'log',
    wouldBlock: kind !== 'allow' && kind !== 'log',
    shadow: false,
    account: 'basic:mallory#ab12',
    route: 'contact',
    limit,
    counts: [21, 25],
    disabledUntil: null,
    ...more,
  }
}

interface Line {
  level: string
  obj: Record<string, unknown>
  msg: string | undefined
}

/** The four places a decision goes, as fakes (the audit is real when asked for). */
async function setup(options: { pseudonymise?: boolean; key?: string; audit?: boolean } = {}) {
  const lines: Line[] = []
  const push = (level: string) => (obj: Record<string, unknown>, msg?: string) => void lines.push({ level, obj, msg })
  const log = { warn: push('warn'), info: push('info'), error: push('error') } as unknown as FastifyBaseLogger
  const incidents: Incident[] = []
  const notified: IncidentEvent[] = []
  const notifier = {
    notify: (e: IncidentEvent) => {
      notified.push(e)
      return 'id'
    },
  } as unknown as Notifier
  const file = join(tempDir(), 'audit.jsonl')
  const audit = options.audit === false ? null : await AuditTrail.open({ file, fsync: 'never', now: () => NOW + 5 })
  const reporter = new Reporter({
    pseudonymise: options.pseudonymise ?? true,
    key: 'key' in options ? options.key : KEY,
    audit,
    notifier,
    incidents: { record: (i) => void incidents.push(i) },
  })
  const context = (more: Partial<DecisionContext> = {}): DecisionContext => ({
    log,
    route,
    identity: 'basic',
    clientIp: '203.0.113.9',
    method: 'GET',
    target: '/api/contacts/7',
    records: ['7'],
    step: 'request',
    now: NOW,
    ...more,
  })
  /** The trail's entries after the genesis, once written. */
  const entries = async () => {
    await audit?.close()
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .slice(1)
  }
  return { reporter, context, log, lines, incidents, notified, entries, file }
}

describe('a decision', () => {
  it('goes to the log, the audit, the incidents and a webhook, with the same facts', async () => {
    const s = await setup({ pseudonymise: false })
    s.reporter.decision(decision('throttle'), s.context())
    const fields = {
      decision: 'throttle',
      blocked: true,
      shadow: false,
      account: 'basic:mallory#ab12',
      identity: 'basic',
      clientIp: '203.0.113.9',
      route: 'contact',
      step: 'request',
      limit: T,
      counts: { [T]: 21, [D]: 25 },
      records: 1,
      recordIds: ['7'],
      method: 'GET',
      path: '/api/contacts/7',
      // The block answer carries the same reference (GET /decisions/:ref explains it).
      reference: expect.stringMatching(/^[0-9A-HJKMNP-TV-Z]{10}$/),
    }
    expect(s.lines).toEqual([{ level: 'warn', obj: { event: 'sluice.decision', ...fields }, msg: 'throttle' }])
    expect(await s.entries()).toEqual([
      {
        seq: 2,
        time: expect.any(String),
        type: 'decision',
        ...fields,
        prev: expect.any(String),
        hash: expect.any(String),
      },
    ])
    expect(s.incidents).toEqual([
      {
        time: NOW,
        account: 'basic:mallory#ab12',
        route: 'contact',
        limit: T,
        action: 'throttle',
        decision: 'throttle',
        blocked: true,
        shadow: false,
        counts: { [T]: 21, [D]: 25 },
        clientIp: '203.0.113.9',
        reference: fields.reference,
      },
    ])
    expect(s.notified).toEqual([
      {
        type: 'throttle',
        time: new Date(NOW).toISOString(),
        account: 'basic:mallory#ab12',
        route: 'contact',
        limit: T,
        action: 'throttle',
        counts: { [T]: 21, [D]: 25 },
        shadow: false,
        blocked: true,
        clientIp: '203.0.113.9',
      },
    ])
  })

  it('counts every limit of the route by its label, 0 where the engine gave none', async () => {
    const s = await setup({ audit: false })
    s.reporter.decision(decision('throttle', { counts: [21] }), s.context())
    expect(s.lines[0]?.obj.counts).toEqual({ [T]: 21, [D]: 0 })
    expect(s.incidents[0]?.counts).toEqual({ [T]: 21, [D]: 0 })
  })

  it('in shadow, says what it would have done', async () => {
    const s = await setup({ audit: false })
    s.reporter.decision(decision('throttle', { shadow: true, block: false }), s.context())
    expect(s.lines[0]).toMatchObject({ msg: 'shadow: would throttle', obj: { shadow: true, blocked: false } })
    expect(s.incidents[0]).toMatchObject({ shadow: true, blocked: false })
    expect(s.notified[0]).toMatchObject({ shadow: true, blocked: false })
  })

  it('a disable is its own audit entry type and says until when (or forever)', async () => {
    const s = await setup()
    s.reporter.decision(decision('disable', { disabledUntil: NOW + 3_600_000 }), s.context())
    s.reporter.decision(decision('disable', { account: 'basic:bob#cd34', disabledUntil: Infinity }), s.context())
    const until = new Date(NOW + 3_600_000).toISOString()
    expect(s.lines.map((l) => l.obj.disabledUntil)).toEqual([until, 'forever'])
    expect(s.notified.map((n) => n.disabledUntil)).toEqual([until, 'forever'])
    expect(s.notified[0]).toMatchObject({ type: 'disable', action: 'disable', limit: D })
    expect((await s.entries()).map((e) => [e.type, e.disabledUntil])).toEqual([
      ['disable', until],
      ['disable', 'forever'],
    ])
    expect(s.incidents.map((i) => i.decision)).toEqual(['disable', 'disable'])
  })

  it('no disabledUntil when the decision has none', async () => {
    const s = await setup({ audit: false })
    s.reporter.decision(decision('throttle'), s.context())
    expect(s.lines[0]?.obj).not.toHaveProperty('disabledUntil')
    expect(s.notified[0]).not.toHaveProperty('disabledUntil')
  })

  it('an already disabled account or an unavailable store is logged, audited and listed, but sends no webhook', async () => {
    const s = await setup()
    s.reporter.decision(decision('disabled', { disabledUntil: NOW + 1000 }), s.context())
    s.reporter.decision(decision('unavailable', { degraded: 'fail-closed' }), s.context())
    expect(s.lines.map((l) => l.msg)).toEqual(['disabled', 'unavailable'])
    expect((await s.entries()).map((e) => [e.type, e.decision])).toEqual([
      ['decision', 'disabled'],
      ['decision', 'unavailable'],
    ])
    // Without a limit, the incident's action is the decision.
    expect(s.incidents.map((i) => [i.decision, i.action, i.limit])).toEqual([
      ['disabled', 'disable', D],
      ['unavailable', 'unavailable', null],
    ])
    expect(s.notified).toEqual([])
  })

  it('works with no audit, notifier or incident list', async () => {
    const s = await setup()
    const bare = new Reporter({ pseudonymise: true, key: KEY })
    bare.decision(decision('throttle'), s.context())
    bare.event('unlock', { account: 'x' })
    expect(s.lines).toHaveLength(1)
    expect(bare.audit).toBeNull()
  })
})

describe('record ids', () => {
  const ids = Array.from({ length: 25 }, (_, i) => `rec-secret-${String(i).padStart(3, '0')}`)
  const target = `/api/contacts/${ids[0]}?ids=${ids[1]},${ids[2]}&page=2`

  it('are pseudonyms everywhere when pseudonymise is on: the count and at most 20 of them', async () => {
    const s = await setup()
    s.reporter.decision(decision('disable', { disabledUntil: NOW + 1000 }), s.context({ records: ids, target }))
    s.reporter.decision(
      decision('throttle', { account: 'basic:bob#cd34' }),
      s.context({ records: ids.slice(0, 3), target, step: 'response' }),
    )
    const line = s.lines[0]?.obj ?? {}
    expect(line.records).toBe(25)
    expect(line.recordIds).toEqual(ids.slice(0, 20).map((id) => p(id)))
    expect(line.path).toBe(
      `/api/contacts/${p(ids[0] as string)}?ids=${encodeURIComponent(`${p(ids[1] as string)},${p(ids[2] as string)}`)}&page=2`,
    )
    const entries = await s.entries()
    expect(entries[0]).toMatchObject({ type: 'disable', records: 25, recordIds: line.recordIds, path: line.path })
    expect(entries[1]).toMatchObject({ step: 'response', records: 3, recordIds: ids.slice(0, 3).map((id) => p(id)) })
    for (const [where, text] of [
      ['log', JSON.stringify(s.lines)],
      ['audit', readFileSync(s.file, 'utf8')],
      ['incidents', JSON.stringify(s.incidents)],
      ['webhooks', JSON.stringify(s.notified)],
    ] as const) {
      expect(text, where).not.toContain('rec-secret')
    }
  })

  it('are written as they are when pseudonymise is off (still at most 20)', async () => {
    const s = await setup({ pseudonymise: false, audit: false })
    s.reporter.decision(decision('throttle'), s.context({ records: ids, target }))
    expect(s.lines[0]?.obj).toMatchObject({ records: 25, recordIds: ids.slice(0, 20), path: target })
    expect(s.reporter.record('42')).toBe('42')
  })

  it('the same id and key give the same pseudonym; another key, or none (random per process), another', async () => {
    const a = new Reporter({ pseudonymise: true, key: KEY })
    const b = new Reporter({ pseudonymise: true, key: Buffer.from(KEY) })
    const other = new Reporter({ pseudonymise: true, key: 'another-key-0123456789abcdef0123' })
    const random1 = new Reporter({ pseudonymise: true, key: undefined })
    const random2 = new Reporter({ pseudonymise: true, key: undefined })
    expect(a.record('42')).toBe(p('42'))
    expect(a.record('42')).toMatch(/^~[0-9a-f]{32}$/)
    expect(b.record('42')).toBe(a.record('42'))
    expect(a.record('43')).not.toBe(a.record('42'))
    expect(other.record('42')).not.toBe(a.record('42'))
    expect(random1.record('42')).not.toBe(random2.record('42'))
    expect(random1.record('42')).toBe(random1.record('42'))
  })

  it('in the target: decoded path segments and query values, list elements one by one', () => {
    const r = new Reporter({ pseudonymise: true, key: KEY })
    expect(r.target('/api/contacts/a%20b/x', ['a b'])).toBe(`/api/contacts/${p('a b')}/x`)
    expect(r.target('/q?name=a%26b&id=+7+', ['a&b', '7'])).toBe(
      `/q?name=${encodeURIComponent(p('a&b'))}&id=${encodeURIComponent(` ${p('7')} `)}`,
    )
    expect(r.target('/q?ids=1;2|3%2C4', ['1', '2', '3', '4'])).toBe(
      `/q?ids=${encodeURIComponent(`${p('1')};${p('2')}|${p('3')},${p('4')}`)}`,
    )
    // Only whole ids: 12 is not 123, a key is not a value, a bare key stays.
    expect(r.target('/api/contacts/123?12&x=123', ['12'])).toBe('/api/contacts/123?12&x=123')
    expect(r.target('/api/contacts/7', [])).toBe('/api/contacts/7')
    expect(new Reporter({ pseudonymise: false, key: KEY }).target('/api/contacts/7', ['7'])).toBe('/api/contacts/7')
  })
})

// Known gaps, pinned: record ids the extractor reads from the query (src/records/extract.ts)
// that the target masking does not find, so they reach the log and the audit as they are
// although pseudonymise is on. When masking follows the extractor these fail: drop `.fails`.
describe('record ids the target masking misses', () => {
  const r = new Reporter({ pseudonymise: true, key: KEY })
  it('an id with a space in it (`?name=a+b`)', () => {
    expect(r.target('/q?name=a+b', ['a b'])).not.toContain('a+b')
  })
  it('ids split on a configured separator other than , ; | or space (`split: ":"`)', () => {
    expect(r.target('/q?ids=1:2', ['1', '2'])).toBe(`/q?ids=${encodeURIComponent(`${p('1')}:${p('2')}`)}`)
  })
  it('a pair after `;`, which servlets and CGI read as a separator (`?a=1;id=5`)', () => {
    expect(r.target('/q?a=1;id=5', ['5'])).not.toMatch(/id=5$/)
  })
})

describe('webhooks', () => {
  it('one per account, route, limit, kind and mode, however often the decision repeats', async () => {
    const s = await setup({ audit: false })
    const ctx = s.context()
    for (let i = 0; i < 5; i++) s.reporter.decision(decision('throttle'), { ...ctx, now: NOW + i * 1000 })
    expect(s.notified).toHaveLength(1)
    expect(s.lines).toHaveLength(5) // the log, the audit and the incidents see every one
    expect(s.incidents).toHaveLength(5)

    s.reporter.decision(decision('throttle', { account: 'basic:bob#cd34' }), ctx)
    s.reporter.decision(decision('throttle', { route: 'invoice' }), ctx)
    s.reporter.decision(decision('throttle', { limit: disableLimit }), ctx)
    s.reporter.decision(decision('challenge', { limit: throttleLimit }), ctx)
    s.reporter.decision(decision('throttle', { shadow: true, block: false }), ctx)
    expect(s.notified.map((n) => `${n.account} ${n.route} ${n.limit} ${n.type} ${n.shadow}`)).toEqual([
      `basic:mallory#ab12 contact ${T} throttle false`,
      `basic:bob#cd34 contact ${T} throttle false`,
      `basic:mallory#ab12 invoice ${T} throttle false`,
      `basic:mallory#ab12 contact ${D} throttle false`,
      `basic:mallory#ab12 contact ${T} challenge false`,
      `basic:mallory#ab12 contact ${T} throttle true`,
    ])
    for (const d of [decision('throttle'), decision('throttle', { shadow: true, block: false })])
      s.reporter.decision(d, ctx)
    expect(s.notified).toHaveLength(6)
  })

  it('again once a minute has passed', async () => {
    // The reporter's memory of what it sent ages on the process clock (performance.now);
    // both clocks move here.
    const start = performance.now()
    let elapsed = 0
    vi.spyOn(performance, 'now').mockImplementation(() => start + elapsed)
    const s = await setup({ audit: false })
    s.reporter.decision(decision('throttle'), s.context())
    const at = async (ms: number) => {
      elapsed = ms
      await new Promise((r) => setTimeout(r, 5)) // past any cached reading of the clock
      s.reporter.decision(decision('throttle'), s.context({ now: NOW + ms }))
      return s.notified.length
    }
    expect(await at(59_000)).toBe(1)
    expect(await at(60_001)).toBe(2)
    expect(await at(90_000)).toBe(2)
    expect(s.notified.map((n) => n.time)).toEqual([new Date(NOW).toISOString(), new Date(NOW + 60_001).toISOString()])
  })
})

describe('events', () => {
  it('are logged when given a log, audited with their own time as `at`, and sent to the notifier', async () => {
    const s = await setup()
    const at = '2024-03-11T14:00:00.000Z'
    s.reporter.event('unlock', { action: 'unlock', account: 'basic:bob#cd34', by: 'admin', time: at }, s.log)
    s.reporter.event('reload', { outcome: 'applied', routes: ['contact'] })
    expect(s.lines).toEqual([
      {
        level: 'info',
        obj: { event: 'sluice.unlock', action: 'unlock', account: 'basic:bob#cd34', by: 'admin', time: at },
        msg: 'unlock',
      },
    ])
    const entries = await s.entries()
    expect(entries[0]).toEqual({
      seq: 2,
      time: new Date(NOW + 5).toISOString(),
      type: 'unlock',
      action: 'unlock',
      account: 'basic:bob#cd34',
      by: 'admin',
      at,
      prev: expect.any(String),
      hash: expect.any(String),
    })
    expect(entries[1]).toMatchObject({ seq: 3, type: 'reload', outcome: 'applied', routes: ['contact'] })
    expect(entries[1]).not.toHaveProperty('at')
    expect(s.notified[0]).toEqual({
      type: 'unlock',
      time: at,
      action: 'unlock',
      account: 'basic:bob#cd34',
      by: 'admin',
    })
    expect(s.notified[1]).toMatchObject({
      type: 'reload',
      outcome: 'applied',
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    })
  })

  it("cannot overwrite the trail's own chain fields", async () => {
    const s = await setup()
    s.reporter.event('admin', { seq: 999, type: 'forged', prev: 'x', hash: 'y', action: 'reset' })
    const [entry] = await s.entries()
    expect(entry).toMatchObject({ seq: 2, type: 'admin', action: 'reset' })
    expect(entry?.prev).not.toBe('x')
    expect(entry?.hash).not.toBe('y')
  })

  it("every event reaches the notifier (it filters by each webhook's events), none is rate limited", async () => {
    const s = await setup({ audit: false })
    for (let i = 0; i < 3; i++) s.reporter.event('reset', { account: 'basic:bob#cd34' })
    expect(s.notified.map((n) => n.type)).toEqual(['reset', 'reset', 'reset'])
  })
})
