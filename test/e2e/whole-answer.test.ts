// An inspected answer is asked for whole and in a coding sluice can undo, whatever the client
// asks: an enumerator's `Range` slices (each cut inside an id, so that no reader counts it,
// joined back together by the client) get the whole answer, counted; Chromium's
// `Accept-Encoding: gzip, deflate, br, zstd` in front of a server that prefers zstd gets an
// answer sluice reads instead of a 502. Through the standalone proxy and the plugin.
import Fastify from 'fastify'
import type http from 'node:http'
import zlib from 'node:zlib'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { compileConfigText, sluice } from '../../src/index.js'
import { decodableOnly } from '../../src/http/whole-answer.js'
import { basic, send } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const rows = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i)
const page = (from: number) =>
  `<html><body><table class="results">${rows(from, 20)
    .map((id) => `<tr data-id="${id}"><td><a href="/view.do?id=${id}">Contact ${id}</a></td></tr>`)
    .join('')}</table></body></html>`
const csv = (from: number) =>
  `id,name\r\n${rows(from, 20)
    .map((id) => `${id},"Contact ${id}"`)
    .join('\r\n')}\r\n`

const CONFIG = `
version: 1
upstream: { url: UPSTREAM, timeout: 5s }
identity: [{ type: basic }]
routes:
  - name: list
    methods: [GET]
    path: /list.do
    records: { response: { html: "table.results tr[data-id]", attr: data-id } }
    limits: [ { window: 10m, distinctRecords: 30, action: throttle } ]
  - name: export
    methods: [GET]
    path: /export.csv
    records: { response: { csv: { column: id } } }
    limits: [ { window: 10m, distinctRecords: 30, action: throttle } ]
`

/** A single `bytes=a-b` / `bytes=a-` range of `size` bytes, as a static file server reads it. */
function rangeOf(header: string | undefined, size: number): [number, number] | null {
  const m = /^bytes=(\d+)-(\d*)$/.exec(header ?? '')
  if (!m) return null
  const start = Number(m[1])
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  return start <= end ? [start, end] : null
}

/** Like a modern server: zstd when offered (Node has it from 22.15), else br, gzip, identity. */
function encode(body: Buffer, accept: string): [Buffer, string | null] {
  const offered = accept.toLowerCase()
  const zstd = (zlib as unknown as { zstdCompressSync?: (b: Buffer) => Buffer }).zstdCompressSync
  // (Where Node has no zstd the body is labelled zstd all the same: sluice must not ask for it.)
  if (/\bzstd\b|\*/.test(offered)) return [zstd ? zstd(body) : zlib.deflateRawSync(body), 'zstd']
  if (/\bbr\b/.test(offered)) return [zlib.brotliCompressSync(body), 'br']
  if (/\bgzip\b/.test(offered)) return [zlib.gzipSync(body), 'gzip']
  return [body, null]
}

/** A static-file-like answer: honours Range (206) and picks its coding from Accept-Encoding. */
function serve(req: http.IncomingMessage, res: http.ServerResponse, text: string, type: string): void {
  const whole = Buffer.from(text)
  const range = rangeOf(req.headers.range, whole.length)
  if (range) {
    res.writeHead(206, {
      'content-type': type,
      'content-range': `bytes ${range[0]}-${range[1]}/${whole.length}`,
      'accept-ranges': 'bytes',
    })
    return void res.end(whole.subarray(range[0], range[1] + 1))
  }
  const [body, coding] = encode(whole, String(req.headers['accept-encoding'] ?? ''))
  res.writeHead(200, {
    'content-type': type,
    'accept-ranges': 'bytes',
    ...(coding ? { 'content-encoding': coding } : {}),
  })
  res.end(body)
}

let upstream: Upstream
let proxy: RunningProxy | undefined
const seen: http.IncomingHttpHeaders[] = []
beforeEach(async () => {
  seen.length = 0
  upstream = await startUpstream((req, res) => {
    req.resume()
    seen.push(req.headers)
    const url = new URL(req.url ?? '/', 'http://x')
    const from = Number(url.searchParams.get('from') ?? 1)
    if (url.pathname === '/list.do') return serve(req, res, page(from), 'text/html; charset=utf-8')
    if (url.pathname === '/export.csv') return serve(req, res, csv(from), 'text/csv; charset=utf-8')
    res.writeHead(404).end()
  })
  proxy = await startProxy(CONFIG, { upstream: upstream.url })
})
afterEach(async () => {
  await proxy?.close()
  proxy = undefined
  await upstream.close()
})

const get = (path: string, headers: Record<string, string> = {}, user = 'mallory') =>
  send((proxy as RunningProxy).url, path, { headers: { ...basic(user), ...headers } })

describe('an inspected answer is asked for whole', () => {
  it('Range slices of an HTML page and a CSV export get the whole answer, counted: nothing past the limit', async () => {
    for (const path of ['/list.do', '/export.csv']) {
      const size = Buffer.byteLength(path === '/list.do' ? page(1) : csv(1))
      // The first answer (ids 1–20) is served whole; the enumerator asks for 13-byte slices.
      const first = await get(`${path}?from=1`, { range: 'bytes=0-12', 'if-range': '"v1"' })
      expect(first.status).toBe(200)
      expect(first.headers['content-range']).toBeUndefined()
      expect(first.body.length).toBe(size)
      // The next answer would take the account to 40 > 30 distinct ids: every slice of it is withheld.
      const got: string[] = []
      for (let at = 0; at < size; at += 13) {
        const slice = await get(`${path}?from=21`, { range: `bytes=${at}-${at + 12}` })
        expect(slice.status).toBe(429)
        got.push(slice.body)
      }
      expect(got.join('')).not.toMatch(/Contact 2[1-9]|Contact 3\d/)
    }
    expect(seen.filter((h) => h.range !== undefined || h['if-range'] !== undefined)).toEqual([])
  })

  it("Chromium's Accept-Encoding in front of a server that prefers zstd: served, decoded, counted", async () => {
    const chromium = { 'accept-encoding': 'gzip, deflate, br, zstd' }
    const first = await get('/list.do?from=1', chromium, 'clerk')
    expect(first.status).toBe(200)
    expect(first.headers['content-encoding']).toBe('br') // sent on as the upstream sent it
    expect(seen.at(-1)?.['accept-encoding']).toBe('gzip, deflate, br')
    expect((await get('/list.do?from=11', { 'accept-encoding': '*' }, 'clerk')).status).toBe(200) // 30 ids
    expect(seen.at(-1)?.['accept-encoding']).toBe('identity')
    expect((await get('/list.do?from=21', chromium, 'clerk')).status).toBe(429) // 40 > 30
  })

  it('Accept-Encoding narrowed to what sluice undoes, weights and order kept', () => {
    expect(decodableOnly('gzip, deflate, br')).toBe('gzip, deflate, br')
    expect(decodableOnly('gzip, deflate, br, zstd')).toBe('gzip, deflate, br')
    expect(decodableOnly('zstd;q=1.0, BR;q=0.9, x-gzip ;q=0.5, compress')).toBe('BR;q=0.9, x-gzip ;q=0.5')
    expect(decodableOnly('*')).toBe('identity')
    expect(decodableOnly('zstd, identity;q=0')).toBe('identity;q=0')
    expect(decodableOnly('')).toBe('identity')
  })

  it("as a plugin: the app's own Range-honouring route answers whole, counted", async () => {
    const config = compileConfigText(CONFIG.replace('UPSTREAM', 'http://127.0.0.1:1'))
    const app = Fastify()
    await app.register(sluice, { config })
    app.get('/export.csv', (req, reply) => {
      const from = Number((req.query as { from?: string }).from ?? 1)
      const whole = Buffer.from(csv(from))
      const range = rangeOf(req.headers.range, whole.length)
      if (range)
        return reply
          .code(206)
          .type('text/csv')
          .send(whole.subarray(range[0], range[1] + 1))
      return reply.type('text/csv').send(whole)
    })
    const inject = (from: number) =>
      app.inject({
        method: 'GET',
        url: `/export.csv?from=${from}`,
        headers: { ...basic('mallory'), range: 'bytes=0-9' },
      })
    const first = await inject(1)
    expect(first.statusCode).toBe(200)
    expect(first.body).toBe(csv(1))
    expect((await inject(21)).statusCode).toBe(429)
    await app.close()
  })
})
