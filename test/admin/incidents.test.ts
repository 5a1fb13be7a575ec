// GET /incidents over the bounded ring buffer, POST /reload through its hook, and /readyz with
// the audit trail's state.
import { afterEach, describe, expect, it } from 'vitest'
import { IncidentLog, type Incident } from '../../src/admin/incidents.js'
import { Metrics } from '../../src/admin/metrics.js'
import { buildAdmin, readiness, type AdminAction, type AdminOptions, type AuditHealth } from '../../src/admin/server.js'
import type { IncidentSink } from '../../src/report/reporter.js'
import { MemoryStore } from '../../src/store/memory.js'
import { call, TOKEN } from './helpers.js'

const T0 = Date.parse('2024-05-01T12:00:00Z')

function incident(i: number, account = `user:u${i % 3}`): Incident {
  return {
    time: T0 + i * 60_000,
    account,
    route: 'contact',
    limit: '10m distinctRecords 5 → throttle',
    action: 'throttle',
    decision: 'throttle',
    counts: { '10m distinctRecords 5 → throttle': 6 },
    shadow: false,
    clientIp: '10.0.0.1',
  }
}

const running: { close(): Promise<unknown> }[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((a) => a.close()))
})

async function start(options: Partial<AdminOptions> = {}): Promise<string> {
  const admin = await buildAdmin({
    token: TOKEN,
    metrics: new Metrics(),
    store: new MemoryStore({ maxAccounts: 10 }),
    ...options,
  })
  running.push(admin)
  return admin.listen({ host: '127.0.0.1', port: 0 })
}

describe('IncidentLog', () => {
  it('keeps the newest `capacity` incidents, newest first, numbered', () => {
    const log = new IncidentLog(3, { groupWithinMs: 0 })
    expect(log.list({ limit: 10 })).toEqual([])
    for (let i = 1; i <= 5; i++) log.record(incident(i))
    expect(log.size).toBe(3)
    expect(log.recorded).toBe(5)
    expect(log.list({ limit: 10 }).map((e) => e.seq)).toEqual([5, 4, 3])
    expect(log.list({ limit: 2 }).map((e) => e.seq)).toEqual([5, 4])
  })

  it('filters by account and time', () => {
    const log = new IncidentLog(100, { groupWithinMs: 0 })
    for (let i = 1; i <= 9; i++) log.record(incident(i))
    expect(log.list({ limit: 10, account: 'user:u1' }).map((e) => e.seq)).toEqual([7, 4, 1])
    expect(log.list({ limit: 10, since: T0 + 7 * 60_000 }).map((e) => e.seq)).toEqual([9, 8, 7])
    expect(log.list({ limit: 1, account: 'user:u1', since: T0 + 2 * 60_000 }).map((e) => e.seq)).toEqual([7])
  })

  it("does not keep the caller's object (a later change does not rewrite history)", () => {
    const log = new IncidentLog(2, { groupWithinMs: 0 })
    const e = incident(1)
    log.record(e)
    e.account = 'user:changed'
    expect(log.list({ limit: 1 })[0]?.account).toBe('user:u1')
  })

  it("is what the plugin's reporter records incidents into", () => {
    const sink: IncidentSink = new IncidentLog(1)
    sink.record({ ...incident(1), action: 'throttle', blocked: true })
    expect((sink as IncidentLog).list({ limit: 1 })[0]).toMatchObject({ blocked: true, seq: 1 })
  })

  it('groups an episode: one row per (account, route, limit, action) with first, last and a count', () => {
    const log = new IncidentLog(10)
    const at = (s: number, account = 'user:u1', reference = `R${s}`) => ({
      ...incident(0, account),
      time: T0 + s * 1000,
      reference,
    })
    for (let s = 0; s < 12; s++) log.record(at(s * 30))
    log.record(at(100, 'user:u2'))
    log.record({ ...at(200), action: 'disable', limit: '1h requests 9 → disable' })
    expect(log.recorded).toBe(14)
    expect(log.episodes).toBe(3)
    const rows = log.list({ limit: 10 })
    // Latest decision first.
    expect(rows.map((r) => [r.account, r.action, r.count])).toEqual([
      ['user:u1', 'throttle', 12],
      ['user:u1', 'disable', 1],
      ['user:u2', 'throttle', 1],
    ])
    expect(rows[0]).toMatchObject({ first: T0, last: T0 + 330_000, time: T0 + 330_000 })
    expect(rows[0]).toMatchObject({ firstReference: 'R0', reference: 'R330' })
    // More than 10 minutes of quiet: a new episode.
    log.record(at(330 + 601))
    expect(log.list({ limit: 10, account: 'user:u1' }).map((r) => r.count)).toEqual([1, 12, 1])
  })

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new IncidentLog(0)).toThrow(/positive integer/)
  })
})

describe('GET /incidents', () => {
  it('lists recent incidents, bounded and filterable by account, time and count', async () => {
    const incidents = new IncidentLog(5, { groupWithinMs: 0 })
    for (let i = 1; i <= 8; i++) incidents.record(incident(i))
    const url = await start({ incidents, clock: () => T0 + 9 * 60_000 })
    const all = await call(url, 'GET', '/incidents')
    expect(all.status).toBe(200)
    expect(all.json.capacity).toBe(5)
    expect(all.json.recorded).toBe(8)
    expect(all.json.incidents.map((e: { seq: number }) => e.seq)).toEqual([8, 7, 6, 5, 4])
    const at = '2024-05-01T12:08:00.000Z'
    expect(all.json.incidents[0]).toEqual({ ...incident(8), time: at, first: at, last: at, count: 1, seq: 8 })
    expect(
      (await call(url, 'GET', '/incidents?account=user%3Au2')).json.incidents.map((e: { seq: number }) => e.seq),
    ).toEqual([8, 5])
    expect((await call(url, 'GET', '/incidents?limit=2')).json.incidents.map((e: { seq: number }) => e.seq)).toEqual([
      8, 7,
    ])
    // since: a duration back from the admin clock, an ISO time, or epoch milliseconds.
    expect((await call(url, 'GET', '/incidents?since=2m')).json.incidents.map((e: { seq: number }) => e.seq)).toEqual([
      8, 7,
    ])
    expect(
      (await call(url, 'GET', `/incidents?since=${new Date(T0 + 6 * 60_000).toISOString()}`)).json.incidents.map(
        (e: { seq: number }) => e.seq,
      ),
    ).toEqual([8, 7, 6])
    expect(
      (await call(url, 'GET', `/incidents?since=${T0 + 8 * 60_000}`)).json.incidents.map((e: { seq: number }) => e.seq),
    ).toEqual([8])
  })

  it('is empty without an incident log', async () => {
    const url = await start()
    expect((await call(url, 'GET', '/incidents')).json).toEqual({
      incidents: [],
      capacity: 0,
      recorded: 0,
      episodes: 0,
    })
  })
})

describe('POST /reload', () => {
  it('answers 501 without a reload hook', async () => {
    const url = await start()
    const res = await call(url, 'POST', '/reload')
    expect(res.status).toBe(501)
    expect(res.json).toMatchObject({ code: 'SLUICE_ERR_ADMIN_RELOAD_UNSUPPORTED' })
  })

  it('reports a reload done, rejected (422 with the errors) or failed, as admin actions', async () => {
    const actions: AdminAction[] = []
    const answers = [
      { ok: true },
      {
        ok: false,
        errors: ['sluice.yaml:3:5: SLUICE_ERR_CONFIG_SCHEMA at routes[0]: must have required property limits'],
      },
    ]
    let calls = 0
    const url = await start({
      reload: async () => {
        const a = answers[calls++]
        if (!a) throw new Error('cannot read sluice.yaml')
        return a
      },
      onAdminAction: (a) => void actions.push(a),
      clock: () => T0,
    })
    expect(await call(url, 'POST', '/reload')).toMatchObject({ status: 200, json: { ok: true } })
    const rejected = await call(url, 'POST', '/reload')
    expect(rejected.status).toBe(422)
    expect(rejected.json).toMatchObject({
      code: 'SLUICE_ERR_ADMIN_RELOAD_REJECTED',
      detail: 'the new config is invalid (1 problem); the running config stays',
      errors: answers[1]?.errors,
    })
    const failed = await call(url, 'POST', '/reload')
    expect(failed.status).toBe(500)
    expect(failed.json.detail).toBe('reload failed: cannot read sluice.yaml; the running config stays')
    expect(actions).toEqual([
      { action: 'reload', result: 'reloaded', remoteAddress: '127.0.0.1', time: T0 },
      { action: 'reload', result: 'rejected', errors: answers[1]?.errors, remoteAddress: '127.0.0.1', time: T0 },
      { action: 'reload', result: 'failed', errors: ['cannot read sluice.yaml'], remoteAddress: '127.0.0.1', time: T0 },
    ])
  })

  it('an onAdminAction that throws does not fail the action', async () => {
    const url = await start({
      reload: async () => ({ ok: true }),
      onAdminAction: () => {
        throw new Error('audit closed')
      },
    })
    expect((await call(url, 'POST', '/reload')).status).toBe(200)
  })
})

describe('/readyz with the audit trail', () => {
  const store = new MemoryStore({ maxAccounts: 1 })
  const audit = (a: AuditHealth) => ({ audit: () => a })

  it('ready while the sink writes, degraded (200) while it retries, 503 once it refuses entries', () => {
    expect(readiness(store, audit({ healthy: true, backlog: 0 }))).toEqual({
      code: 200,
      body: { status: 'ready', store: { type: 'memory', state: 'ok' }, audit: { state: 'ok', backlog: 0 } },
    })
    expect(readiness(store, audit({ healthy: false, backlog: 42 }))).toEqual({
      code: 200,
      body: { status: 'degraded', store: { type: 'memory', state: 'ok' }, audit: { state: 'retrying', backlog: 42 } },
    })
    expect(readiness(store, audit({ healthy: false, backlog: 10_000, refusing: true }))).toEqual({
      code: 503,
      body: {
        status: 'degraded',
        store: { type: 'memory', state: 'ok' },
        audit: { state: 'refusing', backlog: 10_000 },
      },
    })
  })

  it('is served unauthenticated with the audit state', async () => {
    const url = await start({ audit: () => ({ healthy: false, backlog: 7, refusing: true }) })
    const res = await call(url, 'GET', '/readyz', null)
    expect(res.status).toBe(503)
    expect(res.json).toEqual({
      status: 'degraded',
      store: { type: 'memory', state: 'ok' },
      audit: { state: 'refusing', backlog: 7 },
    })
  })
})
