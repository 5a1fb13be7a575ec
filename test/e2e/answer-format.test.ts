// The same legacy URL answers in another format when asked — JSON to an AJAX call, a PDF or a
// spreadsheet for `?format=` — and a reader of the configured format finds no ids in it. Such an
// answer is uninspectable (withheld under the default policy), never served uncounted.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { basic, send } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const ids = Array.from({ length: 20 }, (_, i) => i + 1)
const HTML = `<html><body><table class="results">${ids.map((id) => `<tr data-id="${id}"><td>Contact ${id}</td></tr>`).join('')}</table></body></html>`
const CSV = `id,name\r\n${ids.map((id) => `${id},Contact ${id}`).join('\r\n')}\r\n`
const JSON_LIST = JSON.stringify({ items: ids.map((id) => ({ id, name: `Contact ${id}` })) })

const CONFIG = `
version: 1
upstream: { url: UPSTREAM, timeout: 5s }
identity: [{ type: basic }]
routes:
  - name: list
    methods: [GET]
    path: /list.do
    records: { response: { html: "table.results tr[data-id]", attr: data-id } }
    limits: [ { window: 10m, distinctRecords: 100, action: throttle } ]
  - name: export
    methods: [GET]
    path: /export.do
    records: { response: { csv: { column: id } } }
    limits: [ { window: 10m, distinctRecords: 100, action: throttle } ]
`

let upstream: Upstream
let proxy: RunningProxy
beforeEach(async () => {
  // Like a Rails/ASP.NET MVC/PHP page: the format follows Accept, X-Requested-With or ?format=.
  upstream = await startUpstream((req, res) => {
    req.resume()
    const url = new URL(req.url ?? '/', 'http://x')
    const format = url.searchParams.get('format')
    const ajax = req.headers['x-requested-with'] === 'XMLHttpRequest' || /json/.test(req.headers.accept ?? '')
    if (ajax || format === 'json')
      // PHP's echo json_encode(...) without a header: labelled text/html.
      return void res
        .writeHead(200, { 'content-type': format === 'json' ? 'application/json' : 'text/html' })
        .end(JSON_LIST)
    if (format === 'pdf') return void res.writeHead(200, { 'content-type': 'application/pdf' }).end(`%PDF-1.4\n${CSV}`)
    if (format === 'xls')
      return void res
        .writeHead(200, { 'content-type': 'application/octet-stream' })
        .end(Buffer.concat([Buffer.from('PK\x03\x04\x14\x00\x06\x00', 'latin1'), Buffer.from(CSV)]))
    if (url.pathname === '/list.do') return void res.writeHead(200, { 'content-type': 'text/html' }).end(HTML)
    // A CSV export as lazy PHP sends it: text/html.
    if (url.pathname === '/export.do') return void res.writeHead(200, { 'content-type': 'text/html' }).end(CSV)
    res.writeHead(404).end()
  })
  proxy = await startProxy(CONFIG, { upstream: upstream.url })
})
afterEach(async () => {
  await proxy.close()
  await upstream.close()
})

const get = (path: string, headers: Record<string, string> = {}) =>
  send(proxy.url, path, { headers: { ...basic('mallory'), ...headers } })

describe('an answer in another format than the route reads', () => {
  it('is withheld (uninspectable), never served uncounted; the configured format is served', async () => {
    expect((await get('/list.do')).status).toBe(200)
    expect((await get('/export.do')).status).toBe(200) // CSV labelled text/html: read as CSV
    for (const [path, headers] of [
      ['/list.do', { 'x-requested-with': 'XMLHttpRequest' }],
      ['/list.do', { accept: 'application/json' }],
      ['/list.do?format=json', {}],
      ['/list.do?format=pdf', {}],
      ['/export.do?format=json', {}],
      ['/export.do?format=xls', {}],
      ['/export.do', { accept: 'application/json' }],
    ] as const) {
      const r = await get(path, headers)
      expect(r.status, `${path} ${JSON.stringify(headers)}`).toBe(502)
      expect(r.body).not.toContain('Contact 1')
    }
  })
})
