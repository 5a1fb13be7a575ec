// The pipeline's steps, each on its own, without a listening server: the decision → response
// mapping as a pure function, and the hooks through Fastify's inject (no socket) with a
// recording route in place of an upstream.
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { blockResponse } from '../../src/actions/block.js'
import { compileConfigText } from '../../src/config/index.js'
import type { Decision } from '../../src/engine/engine.js'
import { buildPolicy } from '../../src/engine/policy.js'
import { isSluiceCookie } from '../../src/exchange/credentials.js'
import { sluice } from '../../src/plugin.js'

const policy = buildPolicy(
  'contact',
  [{ kind: 'distinctRecords', windowMs: 60_000, max: 2, action: 'challenge' }],
  false,
)
const decision = (kind: Decision['kind']): Decision => ({
  kind,
  block: true,
  wouldBlock: true,
  shadow: false,
  account: 'a',
  route: 'contact',
  limit: policy.limits[0] ?? null,
  counts: [3],
  disabledUntil: null,
})

describe('blockResponse (actions/block.ts)', () => {
  const ctx = {
    accept: 'application/json',
    retryAfterMs: 30_000,
    challenge: async () => ({ parameters: { algorithm: 'SHA-256' }, signature: 's' }) as never,
  }

  it('maps each blocking decision to its answer, naming no limit or count', async () => {
    const throttle = await blockResponse(decision('throttle'), ctx)
    expect(throttle).toMatchObject({ status: 429, headers: { 'retry-after': '30' } })
    expect((await blockResponse(decision('disable'), ctx)).status).toBe(403)
    expect((await blockResponse(decision('disabled'), ctx)).status).toBe(403)
    expect((await blockResponse(decision('unavailable'), ctx)).status).toBe(503)
    const challenge = await blockResponse(decision('challenge'), { ...ctx, rejected: 'replayed' })
    expect(challenge.status).toBe(429)
    expect(JSON.parse(challenge.body)).toMatchObject({ challenge: { signature: 's' }, solutionRejected: 'replayed' })
    for (const r of [throttle, challenge]) expect(r.body).not.toMatch(/distinctRecords|contact#|\b3\b/)
  })

  it('a browser gets a page', async () => {
    const page = await blockResponse(decision('challenge'), { ...ctx, accept: 'text/html' })
    expect(page.headers['content-type']).toMatch(/text\/html/)
  })

  it("tells sluice's own cookies from the upstream's", () => {
    expect(isSluiceCookie('sluice_pass=x; Path=/')).toBe(true)
    expect(isSluiceCookie(['sluice_pass=x', 'sluice_solution=; Max-Age=0'])).toBe(true)
    expect(isSluiceCookie(['sluice_pass=x', 'JSESSIONID=y'])).toBe(false)
  })
})

const CONFIG = compileConfigText(
  `
version: 1
upstream: { url: http://127.0.0.1:1 }
identity: [ { type: header, name: x-user, trusted: true }, { type: cookie, name: sid } ]
routes:
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits: [ { window: 10m, distinctRecords: 2, action: throttle } ]
  - name: lookup
    methods: [GET]
    path: /api/lookup
    records: { query: id }
    clampQuery: { pageSize: 10 }
    limits: [ { window: 10m, distinctRecords: 5, action: throttle } ]
  - name: batch
    methods: [POST]
    path: /api/batch
    records: { body: "$.ids", maxIds: 3 }
    limits: [ { window: 10m, distinctRecords: 5, action: throttle } ]
  - name: list
    methods: [GET]
    path: /api/list
    records: { response: "$.items[*].id" }
    limits: [ { window: 10m, distinctRecords: 3, action: throttle } ]
`,
  'steps.yaml',
)

let app: FastifyInstance | undefined
afterEach(async () => {
  await app?.close()
  app = undefined
})

/** sluice in plugin mode in front of routes that answer what they received. */
async function guarded(): Promise<FastifyInstance> {
  app = Fastify()
  await app.register(sluice, { config: CONFIG })
  app.get('/api/contacts/:id', async (request) => ({ url: request.url, query: request.query }))
  app.get('/api/lookup', async (request) => ({ query: request.query }))
  app.post('/api/batch', async (request) => ({ body: request.body }))
  app.get('/api/list', async (request) => ({
    items: String((request.query as { ids?: string }).ids ?? '')
      .split(',')
      .map((id) => ({ id })),
  }))
  return app
}

describe('admit (onRequest)', () => {
  it('refuses an ambiguous path and an ambiguous session with 400, before the app sees them', async () => {
    const a = await guarded()
    expect((await a.inject({ url: '/api/contacts/..%2f7' })).statusCode).toBe(400)
    const twice = await a.inject({ url: '/api/contacts/1', headers: { cookie: 'sid=a; sid=b' } })
    expect(twice.statusCode).toBe(400)
    expect(twice.json().type).toMatch(/ambiguous-identity$/)
  })

  it('clamps the query the app parses (plugin mode) and counts request-side records', async () => {
    const a = await guarded()
    expect(
      (await a.inject({ url: '/api/lookup?pageSize=999&id=1', headers: { 'x-user': 'u' } })).json().query,
    ).toMatchObject({ pageSize: '10', id: '1' })
    const statuses = []
    for (const id of [1, 2, 3])
      statuses.push((await a.inject({ url: `/api/contacts/${id}`, headers: { 'x-user': 'u' } })).statusCode)
    expect(statuses).toEqual([200, 200, 429])
    expect(a.sluice.metrics.registry.getSingleMetric('sluice_requests_total')).toBeDefined()
  })
})

describe('request bodies (preHandler)', () => {
  it('counts the ids of a parsed body; more than records.maxIds is refused with 413', async () => {
    const a = await guarded()
    const post = (ids: number[]) =>
      a.inject({ method: 'POST', url: '/api/batch', headers: { 'x-user': 'b' }, payload: { ids } })
    expect((await post([1, 2, 3])).statusCode).toBe(200)
    expect((await post([1, 2, 3, 4])).statusCode).toBe(413)
    expect((await post([4, 5, 6])).statusCode).toBe(429) // 6 distinct > 5
  })
})

describe('answers (onSend)', () => {
  it("counts an answer's ids before it leaves and withholds the one that crosses", async () => {
    const a = await guarded()
    const list = (ids: string) => a.inject({ url: `/api/list?ids=${ids}`, headers: { 'x-user': 'l' } })
    expect((await list('1,2')).statusCode).toBe(200)
    const crossing = await list('3,4')
    expect(crossing.statusCode).toBe(429)
    expect(crossing.body).not.toContain('"id":"4"')
    expect((await list('1,2')).statusCode).toBe(200) // re-reads are free
  })
})
