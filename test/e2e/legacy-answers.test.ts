// HTML, CSV and XML answers through the proxy, in front of a legacy-looking upstream: the ids
// are counted before a byte reaches the client, the page that would cross a limit is withheld
// whole, re-reads are free, compressed answers are counted and sent as the upstream sent them.
import { brotliCompressSync, gzipSync } from 'node:zlib'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { basic, send } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const PAGE = 20
const page = (n: number) =>
  `<html><head><meta charset="windows-1252"><title>Address book</title></head><body><table class="results">` +
  Array.from({ length: PAGE }, (_, i) => n * PAGE + i + 1)
    .map((id) => `<tr data-id="${id}"><td><a href="/addressbook/view.do?id=${id}">Contact ${id}</a></td></tr>`)
    .join('') +
  '</table></body></html>'

const CONFIG = `
version: 1
upstream: { url: UPSTREAM, timeout: 5s }
identity: [{ type: basic }]
routes:
  - name: list
    methods: [GET]
    path: /addressbook/list.do
    records: { response: { html: "table.results tr[data-id]", attr: data-id }, maxInspectBytes: 64kb }
    limits:
      - { window: 10m, distinctRecords: 50, action: throttle }
  - name: export
    methods: [GET]
    path: /addressbook/export.csv
    records: { response: { csv: { column: id } } }
    limits:
      - { window: 10m, distinctRecords: 30, action: throttle }
  - name: soap
    methods: [POST]
    path: /ws/AddressService
    records: { response: { xml: "/Envelope/Body/lookupResponse/entry/@id" } }
    limits:
      - { window: 10m, distinctRecords: 10, action: throttle }
`

let upstream: Upstream
let proxy: RunningProxy | undefined
beforeEach(async () => {
  upstream = await startUpstream((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    req.resume()
    if (url.pathname === '/addressbook/list.do' && (url.searchParams.has('trickle') || url.searchParams.has('bomb'))) {
      // In small pieces, a turn of the event loop apart: compressed (br, gzip) or not; broken off
      // halfway; or a gzip body small on the wire and past maxInspectBytes (64kb) once decoded.
      const n = Number(url.searchParams.get('page') ?? 0)
      const how = url.searchParams.get('trickle') ?? 'gzip'
      let body = Buffer.from(page(n), 'latin1')
      if (url.searchParams.has('bomb')) body = Buffer.concat([Buffer.from(`<!-- ${'x'.repeat(100_000)} -->`), body])
      if (how === 'br') body = brotliCompressSync(body)
      if (how === 'gzip') body = gzipSync(body)
      const coding = how === 'br' || how === 'gzip' ? { 'content-encoding': how } : {}
      res.writeHead(200, { 'content-type': 'text/html', ...coding })
      let at = 0
      const next = () => {
        if (how === 'broken' && at > body.length / 2) return void res.destroy()
        if (at >= body.length) return void res.end()
        res.write(body.subarray(at, (at += 97)))
        setImmediate(next)
      }
      return next()
    }
    if (url.pathname === '/addressbook/list.do') {
      const body = Buffer.from(page(Number(url.searchParams.get('page') ?? 0)), 'latin1')
      const gz = url.searchParams.has('gz')
      res.writeHead(200, { 'content-type': 'text/html', ...(gz ? { 'content-encoding': 'gzip' } : {}) })
      return res.end(gz ? gzipSync(body) : body)
    }
    if (url.pathname === '/addressbook/export.csv') {
      const from = Number(url.searchParams.get('from') ?? 1)
      const rows = Array.from({ length: 20 }, (_, i) => `${from + i},"Name ${from + i}, Esq.","Line 1\r\nLine 2"`)
      res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8' })
      return res.end(`id,name,address\r\n${rows.join('\r\n')}\r\n`)
    }
    if (url.pathname === '/ws/AddressService') {
      const from = Number(url.searchParams.get('from') ?? 1)
      const entries = Array.from({ length: 4 }, (_, i) => `<a:entry id="${from + i}"/>`).join('')
      res.writeHead(200, { 'content-type': 'text/xml; charset=utf-8' })
      return res.end(
        `<?xml version="1.0"?><s:Envelope xmlns:s="urn:s" xmlns:a="urn:a"><s:Body><a:lookupResponse>${entries}</a:lookupResponse></s:Body></s:Envelope>`,
      )
    }
    res.writeHead(404).end()
  })
})
afterEach(async () => {
  await proxy?.close()
  proxy = undefined
  await upstream.close()
})

const get = (path: string, user = 'scraper') => send(proxy!.url, path, { headers: basic(user) })

describe('legacy answers', () => {
  it('an HTML list: 50 rows served, the page that would cross withheld whole, re-reads free, gzip counted', async () => {
    proxy = await startProxy(CONFIG, { upstream: upstream.url })
    const statuses: number[] = []
    for (let p = 0; p < 4; p++)
      statuses.push((await get(`/addressbook/list.do?page=${p}${p === 1 ? '&gz' : ''}`)).status)
    expect(statuses).toEqual([200, 200, 429, 429]) // 20 + 20 served; the third page (60 > 50) withheld
    const withheld = await get('/addressbook/list.do?page=2')
    expect(withheld.body).not.toContain('data-id')
    expect((await get('/addressbook/list.do?page=0')).status).toBe(200) // re-read: free
    // gzip is sent as the upstream sent it.
    const gz = await send(proxy.url, '/addressbook/list.do?page=0&gz', { headers: basic('other') })
    expect(gz.headers['content-encoding']).toBe('gzip')
  })

  it('a CSV export with quoted newlines: 30 ids, then withheld', async () => {
    proxy = await startProxy(CONFIG, { upstream: upstream.url })
    expect((await get('/addressbook/export.csv?from=1')).status).toBe(200)
    expect((await get('/addressbook/export.csv?from=21')).status).toBe(429) // 40 > 30
    expect((await get('/addressbook/export.csv?from=11')).status).toBe(200) // 11..30: exactly 30
  })

  it('a SOAP lookup: namespaced entries counted', async () => {
    proxy = await startProxy(CONFIG, { upstream: upstream.url })
    const post = (from: number) =>
      send(proxy!.url, `/ws/AddressService?from=${from}`, { method: 'POST', headers: basic('soapy'), body: '<x/>' })
    expect((await post(1)).status).toBe(200)
    expect((await post(5)).status).toBe(200)
    const third = await post(9)
    expect(third.status).toBe(429) // 12 > 10
  })

  it('an answer trickling in (plain, br, gzip) is counted as it comes and sent as the upstream sent it; past maxInspectBytes once decoded, or broken off, it is withheld', async () => {
    proxy = await startProxy(CONFIG, { upstream: upstream.url })
    const plain = await get('/addressbook/list.do?page=0&trickle=plain', 'streamy')
    expect(plain.status).toBe(200)
    expect(plain.body).toContain('data-id="20"')
    const br = await get('/addressbook/list.do?page=1&trickle=br', 'streamy')
    expect(br.status).toBe(200)
    expect(br.headers['content-encoding']).toBe('br')
    expect((await get('/addressbook/list.do?page=2&trickle=gzip', 'streamy')).status).toBe(429) // 60 > 50
    expect((await get('/addressbook/list.do?page=1&trickle=gzip', 'streamy')).status).toBe(200) // re-read: free

    const bomb = await get('/addressbook/list.do?page=5&bomb', 'bomber')
    expect(bomb.status).toBe(502)
    expect(bomb.body).not.toContain('data-id')
    expect(proxy.logs).toContainEqual(
      expect.objectContaining({
        event: 'sluice.uninspectable',
        reason: expect.stringMatching(/larger than maxInspectBytes .* once decoded/),
      }),
    )

    const broken = await get('/addressbook/list.do?page=6&trickle=broken', 'breaker')
    expect(broken.status).toBe(502)
    expect(broken.body).not.toContain('data-id')
    expect(proxy.logs).toContainEqual(expect.objectContaining({ event: 'sluice.upstream_error', route: 'list' }))
    expect((await get('/addressbook/list.do?page=3&trickle=plain', 'breaker')).status).toBe(200) // and it carries on
  })
})
