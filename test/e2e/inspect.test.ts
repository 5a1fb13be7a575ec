// Records counted from what the upstream returns (and from request bodies): a real upstream on
// loopback, sluice in front, every answer checked before it reaches the client.
import { gzipSync, brotliCompressSync } from 'node:zlib'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { basic } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const TOTAL = 200
const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i).filter((id) => id <= TOTAL)

/** A legacy list endpoint: paged JSON, optionally compressed; a few odd answers besides. */
async function listUpstream(): Promise<Upstream> {
  return startUpstream((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString()
      if (url.pathname === '/api/contacts') {
        const page = Number(url.searchParams.get('page') ?? 1)
        const size = Number(url.searchParams.get('pageSize') ?? 10)
        let payload = Buffer.from(
          JSON.stringify({
            items: ids((page - 1) * size + 1, size).map((id) => ({
              id,
              name: `Contact ${id}`,
              phone: '+41 00 000 00 00',
            })),
            page,
          }),
        )
        const headers: Record<string, string> = { 'content-type': 'application/json' }
        // How legacy AJAX pages get their data: JSONP, or behind an XSSI guard (AngularJS's).
        const wrap = url.searchParams.get('wrap')
        if (wrap === 'jsonp') {
          payload = Buffer.concat([Buffer.from('/**/ cb('), payload, Buffer.from(');')])
          headers['content-type'] = 'application/javascript'
        }
        if (wrap === 'xssi') payload = Buffer.concat([Buffer.from(")]}',\n"), payload])
        const enc = url.searchParams.get('enc')
        if (enc === 'gzip') payload = gzipSync(payload)
        if (enc === 'br') payload = brotliCompressSync(payload)
        if (enc === 'bogus') payload = Buffer.from('this is not gzip')
        if (enc) headers['content-encoding'] = enc === 'bogus' ? 'gzip' : enc
        if (url.searchParams.get('broken') === '1') {
          // The application dies halfway through its answer.
          res.writeHead(200, { ...headers, 'content-length': String(payload.length) })
          res.write(payload.subarray(0, payload.length >> 1))
          return setTimeout(() => res.destroy(), 20)
        }
        if (url.searchParams.get('chunked') === '1') {
          res.writeHead(200, headers)
          for (let i = 0; i < payload.length; i += 100) res.write(payload.subarray(i, i + 100))
          return res.end()
        }
        res.writeHead(200, { ...headers, 'content-length': String(payload.length) })
        return res.end(payload)
      }
      if (url.pathname === '/api/export') {
        res.writeHead(200, { 'content-type': 'text/csv' })
        return res.end('id,name\n1,Contact 1\n')
      }
      if (url.pathname === '/api/missing') {
        res.writeHead(404, { 'content-type': 'application/json' })
        return res.end('{"error":"not found"}')
      }
      if (url.pathname === '/api/search') {
        res.writeHead(200, { 'content-type': 'application/json', 'x-received-body': encodeURIComponent(body) })
        return res.end(JSON.stringify({ found: body.length }))
      }
      res.writeHead(404).end()
    })
  })
}

const config = (extra = '', mode = 'enforce') => `
version: 1
mode: ${mode}
upstream: { url: UPSTREAM, timeout: 5s }
identity: [{ type: basic }]
routes:
  - name: list
    methods: [GET]
    path: /api/contacts
    records: { response: "$.items[*].id", maxInspectBytes: 8kb }
    clampQuery: { pageSize: 20 }
    limits:
      - { window: 10m, distinctRecords: 50, action: throttle }
  - name: export
    methods: [GET]
    path: /api/export
    records: { response: "$.rows[*].id" }
    limits:
      - { window: 10m, distinctRecords: 50, action: throttle }
  - name: missing
    methods: [GET]
    path: /api/missing
    records: { response: "$.items[*].id" }
    limits:
      - { window: 10m, distinctRecords: 50, action: throttle }
  - name: search
    methods: [POST]
    path: /api/search
    records: { body: "$.ids[*]", maxInspectBytes: 1kb }
    limits:
      - { window: 10m, distinctRecords: 30, action: throttle }
${extra}
actions:
  throttle: { retryAfter: 30s }
`

let upstream: Upstream
let proxy: RunningProxy | undefined
beforeAll(async () => {
  upstream = await listUpstream()
})
afterAll(() => upstream.close())
afterEach(async () => {
  await proxy?.close()
  proxy = undefined
  upstream.received.length = 0
})

const get = (path: string, user = 'mallory', headers: Record<string, string> = {}) =>
  fetch(`${proxy!.url}${path}`, { headers: { ...basic(user), ...headers } })
const itemIds = async (res: Response) => ((await res.json()) as { items: { id: number }[] }).items.map((i) => i.id)

describe('records in responses', () => {
  it('an account paging through a list receives at most distinctRecords ids; the page that would cross is withheld', async () => {
    proxy = await startProxy(config(), { upstream: upstream.url })
    const received = new Set<number>()
    const statuses: number[] = []
    for (let page = 1; page <= 6; page++) {
      const res = await get(`/api/contacts?page=${page}&pageSize=20`)
      statuses.push(res.status)
      if (res.status === 200) for (const id of await itemIds(res)) received.add(id)
      else {
        expect(res.headers.get('content-type')).toMatch(/problem\+json/)
        const text = await res.text()
        expect(text).not.toMatch(/Contact \d/) // nothing of the withheld page leaks
      }
    }
    expect(statuses).toEqual([200, 200, 429, 429, 429, 429])
    expect(received.size).toBe(40) // pages 1 and 2; page 3 would make 60 > 50
    expect(received.size).toBeLessThanOrEqual(50)
    // The upstream answered every page: sluice counted each answer before letting it out.
    expect(upstream.received.filter((r) => r.url.startsWith('/api/contacts')).length).toBe(6)
    const withheld = proxy.decisions().filter((d) => d.step === 'response' && d.blocked)
    expect(withheld.length).toBe(4)
    // Records already received can be read again; another account is untouched.
    expect((await get('/api/contacts?page=1&pageSize=20')).status).toBe(200)
    expect((await get('/api/contacts?page=2&pageSize=10')).status).toBe(200)
    expect((await get('/api/contacts?page=9&pageSize=20', 'alice')).status).toBe(200)
  })

  it('a JSONP answer and one behind an XSSI guard are counted as the JSON inside them', async () => {
    proxy = await startProxy(config(), { upstream: upstream.url })
    for (const wrap of ['jsonp', 'xssi']) {
      const statuses: number[] = []
      for (let page = 1; page <= 3; page++)
        statuses.push((await get(`/api/contacts?page=${page}&pageSize=20&wrap=${wrap}`, `ajax-${wrap}`)).status)
      expect({ wrap, statuses }).toEqual({ wrap, statuses: [200, 200, 429] })
    }
  })

  it('clampQuery: the upstream never sees an over-large page size, however it is spelled', async () => {
    proxy = await startProxy(config(), { upstream: upstream.url })
    for (const q of [
      'pageSize=100000',
      'PAGESIZE=100000',
      'pageSize=-1',
      'pageSize=all',
      'page%53ize=500',
      'pageSize=5&pageSize=99999',
    ]) {
      const res = await get(`/api/contacts?page=1&${q}`, `u-${q}`)
      expect(res.status, q).toBe(200)
      expect((await itemIds(res)).length, q).toBeLessThanOrEqual(20)
    }
    const seen = upstream.received.map((r) => r.url)
    expect(seen).toContain('/api/contacts?page=1&pageSize=20')
    expect(seen).toContain('/api/contacts?page=1&PAGESIZE=20')
    expect(seen).toContain('/api/contacts?page=1&pageSize=5&pageSize=20')
    expect(seen.some((u) => /100000|99999|-1|all|=500/.test(u))).toBe(false)
    expect((await get('/api/contacts?page=1&pageSize=7', 'carol')).status).toBe(200)
    expect(upstream.received.at(-1)?.url).toBe('/api/contacts?page=1&pageSize=7') // within the cap: untouched
  })

  it('clampQuery in shadow mode only says what it would rewrite: the upstream gets the query as sent', async () => {
    for (const shadowed of [
      config('', 'shadow'),
      config().replace('    clampQuery:', '    mode: shadow\n    clampQuery:'),
    ]) {
      proxy = await startProxy(shadowed, { upstream: upstream.url })
      const res = await get('/api/contacts?page=1&pageSize=100000', 'shadow-user')
      expect(res.status).toBe(200)
      expect(upstream.received.at(-1)?.url).toBe('/api/contacts?page=1&pageSize=100000')
      const line = proxy.logs.find((l) => l.event === 'sluice.clamped')
      expect(line).toMatchObject({ shadow: true, params: ['pageSize'], msg: 'shadow: query would be clamped' })
      await proxy.close()
      proxy = undefined
    }
  })

  it('gzip and br bodies are decoded to count, and reach the client as the upstream sent them', async () => {
    proxy = await startProxy(config(), { upstream: upstream.url })
    for (const enc of ['gzip', 'br']) {
      const res = await get(`/api/contacts?page=1&pageSize=20&enc=${enc}`, `z-${enc}`, { 'accept-encoding': enc })
      expect(res.status).toBe(200)
      expect(res.headers.get('content-encoding')).toBe(enc)
      expect(await itemIds(res)).toEqual(ids(1, 20)) // fetch decodes it
      // The ids were counted: 40 more would cross 50.
      const next = await get(`/api/contacts?page=2&pageSize=20&enc=${enc}`, `z-${enc}`, { 'accept-encoding': enc })
      expect(next.status).toBe(200)
      await next.arrayBuffer()
      expect(
        (await get(`/api/contacts?page=3&pageSize=20&enc=${enc}`, `z-${enc}`, { 'accept-encoding': enc })).status,
      ).toBe(429)
    }
  })

  it('a chunked answer (no content-length) is counted like any other', async () => {
    proxy = await startProxy(config(), { upstream: upstream.url })
    const a = await get('/api/contacts?page=1&pageSize=20&chunked=1')
    expect(await itemIds(a)).toEqual(ids(1, 20))
    await (await get('/api/contacts?page=2&pageSize=20&chunked=1')).arrayBuffer()
    expect((await get('/api/contacts?page=3&pageSize=20&chunked=1')).status).toBe(429)
  })

  it('an answer that cannot be inspected is withheld by default (larger than the cap, not JSON, undecodable)', async () => {
    proxy = await startProxy(config().replace('clampQuery: { pageSize: 20 }', 'clampQuery: { pageSize: 1000 }'), {
      upstream: upstream.url,
    })
    const big = await get('/api/contacts?page=1&pageSize=200', 'big') // about 13 KB > 8kb
    expect(big.status).toBe(502)
    expect(((await big.json()) as { type: string }).type).toMatch(/\/uninspectable$/)
    const csv = await get('/api/export', 'csv')
    expect(csv.status).toBe(502)
    expect(await csv.text()).not.toContain('Contact 1')
    const bogus = await get('/api/contacts?page=1&enc=bogus', 'bogus')
    expect(bogus.status).toBe(502)
    const reasons = proxy.logs.filter((l) => l.event === 'sluice.uninspectable').map((l) => String(l.reason))
    expect(reasons).toEqual([
      expect.stringMatching(/larger than maxInspectBytes/),
      expect.stringMatching(/content-type "text\/csv" and the body is not JSON/),
      expect.stringMatching(/cannot decode gzip/),
    ])
  })

  it('uninspectable: N lets such an answer through whole, counted as N new records (and withholds it when that crosses)', async () => {
    const yaml = config()
      .replace('maxInspectBytes: 8kb }', 'maxInspectBytes: 8kb, uninspectable: 30 }')
      .replace('clampQuery: { pageSize: 20 }', 'clampQuery: { pageSize: 1000 }')
    proxy = await startProxy(yaml, { upstream: upstream.url })
    const first = await get('/api/contacts?page=1&pageSize=200')
    expect(first.status).toBe(200)
    expect(await itemIds(first)).toEqual(ids(1, 200)) // every byte, streamed on past the cap
    const second = await get('/api/contacts?page=1&pageSize=200')
    expect(second.status).toBe(429) // 30 + 30 > 50: a worst case, never uncounted
    expect(await second.text()).not.toContain('Contact')
  })

  it('HEAD on an inspected route answers headers only, without hanging or counting', async () => {
    proxy = await startProxy(config(), { upstream: upstream.url })
    const head = await fetch(`${proxy.url}/api/contacts?page=1&pageSize=20`, { method: 'HEAD', headers: basic('hank') })
    expect(head.status).toBe(200)
    expect(await head.text()).toBe('')
    // No ids were counted by the HEAD: two pages of 20 still fit under 50.
    for (let page = 1; page <= 2; page++)
      expect((await get(`/api/contacts?page=${page}&pageSize=20`, 'hank')).status).toBe(200)
  })

  it('an answer that breaks off halfway is a 502, nothing of it is sent, and the proxy carries on', async () => {
    proxy = await startProxy(config(), { upstream: upstream.url })
    const res = await get('/api/contacts?page=1&pageSize=20&broken=1', 'ivy')
    expect(res.status).toBe(502)
    expect(await res.text()).not.toContain('Contact')
    expect((await get('/api/contacts?page=1&pageSize=20', 'ivy')).status).toBe(200)
  })

  it('error answers are not inspected: they pass as they are', async () => {
    proxy = await startProxy(config(), { upstream: upstream.url })
    const res = await get('/api/missing')
    expect(res.status).toBe(404)
    expect(await res.json()).toEqual({ error: 'not found' })
  })

  it('shadow mode counts and logs what it would withhold, and withholds nothing', async () => {
    proxy = await startProxy(config('', 'shadow'), { upstream: upstream.url })
    const statuses: number[] = []
    for (let page = 1; page <= 4; page++) statuses.push((await get(`/api/contacts?page=${page}&pageSize=20`)).status)
    expect(statuses).toEqual([200, 200, 200, 200])
    expect(proxy.decisions().filter((d) => d.shadow && d.step === 'response').length).toBeGreaterThan(0)
    expect((await get('/api/export')).status).toBe(200) // uninspectable: logged, not withheld
  })
})

describe('records in request bodies', () => {
  const post = (body: string, type: string, user = 'mallory') =>
    fetch(`${proxy!.url}/api/search`, { method: 'POST', headers: { ...basic(user), 'content-type': type }, body })

  it('counts ids sent in a JSON or form body and refuses the batch that would cross, before the upstream sees it', async () => {
    proxy = await startProxy(config(), { upstream: upstream.url })
    const a = await post(JSON.stringify({ ids: ids(1, 20) }), 'application/json')
    expect(a.status).toBe(200)
    // The upstream received exactly the bytes the client sent.
    expect(decodeURIComponent(a.headers.get('x-received-body') ?? '')).toBe(JSON.stringify({ ids: ids(1, 20) }))
    const form = await post(
      ids(15, 5)
        .map((id) => `ids=${id}`)
        .join('&'),
      'application/x-www-form-urlencoded',
    )
    expect(form.status).toBe(200) // 15..19 already counted: still 20
    const before = upstream.received.length
    const over = await post(JSON.stringify({ ids: ids(21, 11) }), 'application/json')
    expect(over.status).toBe(429) // 20 + 11 > 30
    expect(upstream.received.length).toBe(before)
    expect((await post(JSON.stringify({ ids: ids(21, 10) }), 'application/json')).status).toBe(200) // 30: at the limit
  })

  it('a body it cannot read for ids is refused with a clear status: too large 413, wrong type 415, broken JSON 400', async () => {
    proxy = await startProxy(config(), { upstream: upstream.url })
    const big = await post(JSON.stringify({ ids: ids(1, 200), pad: 'x'.repeat(2000) }), 'application/json')
    expect(big.status).toBe(413)
    expect((await post('<ids><id>1</id></ids>', 'application/xml')).status).toBe(415)
    const broken = await post('{"ids": [1, 2', 'application/json')
    expect(broken.status).toBe(400)
    expect(((await broken.json()) as { detail: string }).detail).toMatch(/not valid JSON/)
    expect(upstream.received.length).toBe(0)
    // The proxy is fine afterwards.
    expect((await post('{"ids":[1]}', 'application/json')).status).toBe(200)
  })
})
