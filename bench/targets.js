// One benchmark target per process, so the load generator never shares an event loop with
// what it measures. Prints `READY <url>` when listening.
//   node bench/targets.js upstream
//   node bench/targets.js plain <upstreamUrl>
//   node bench/targets.js raw <upstreamUrl>
//   node bench/targets.js sluice <upstreamUrl> <scenario> [redisUrl]
// SLUICE_BENCH_DIST, when set, is the dist/index.js sluice is loaded from (`--compare` points it at
// another commit's build in a temporary worktree); by default this checkout's ../dist/index.js.
import { createRequire } from 'node:module'
import http from 'node:http'
import { pathToFileURL } from 'node:url'
import { configFor } from './configs.js'

const [kind, upstreamUrl, scenario, redisUrl] = process.argv.slice(2)

function record(id) {
  return {
    id,
    name: `Contact ${id}`,
    email: `contact${id}@example.com`,
    phone: '+44 7700 900123',
    street: '12 Station Road',
    city: 'Leeds',
    postcode: 'LS4 7QT',
    notes: 'Leave parcels with the neighbour at no. 14.',
  }
}

async function upstream() {
  const one = (id) => JSON.stringify(record(id))
  const list = JSON.stringify({
    items: Array.from({ length: 50 }, (_, i) => record(i + 1)),
    page: 1,
    pageSize: 50,
    total: 1000,
  })
  // The same 50 records as a legacy portal serves them: a server-rendered page (~10 KB) and a CSV export.
  const rows = Array.from({ length: 50 }, (_, i) => record(i + 1))
  const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;')
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>Address book</title></head><body><table class="results"><tr><th>Name</th><th>Email</th><th>Address</th></tr>${rows
    .map(
      (r) =>
        `<tr data-id="${r.id}"><td><a href="/view.do?id=${r.id}">${esc(r.name)}</a></td><td>${r.email}</td><td>${esc(r.street)}, ${r.city} ${r.postcode}</td><td>${esc(r.notes)}</td></tr>`,
    )
    .join('\n')}</table></body></html>`
  const csv = `id,name,email,phone,address,notes\r\n${rows
    .map((r) => `${r.id},"${r.name}",${r.email},${r.phone},"${r.street}\r\n${r.city} ${r.postcode}","${r.notes}"`)
    .join('\r\n')}\r\n`
  const server = http.createServer((req, res) => {
    req.resume()
    const [body, type] = req.url.startsWith('/list.html')
      ? [html, 'text/html; charset=utf-8']
      : req.url.startsWith('/export.csv')
        ? [csv, 'text/csv; charset=utf-8']
        : [
            req.url.startsWith('/list') ? list : one(Number(req.url.split('/')[2]?.split('?')[0]) || 1),
            'application/json',
          ]
    res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
  server.keepAliveTimeout = 60_000
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return `http://127.0.0.1:${server.address().port}`
}

async function plain() {
  const { default: Fastify, LogController } = await import('fastify')
  const { default: proxy } = await import('@fastify/http-proxy')
  // The floor: as lean as sluice's own server is (no request logging, which costs a log call
  // and an object per request even with the logger off), so that every µs of difference is
  // sluice's work.
  const app = Fastify({ logger: false, logController: new LogController({ disableRequestLogging: true }) })
  await app.register(proxy, { upstream: upstreamUrl, disableRequestLogging: true, undici: { connections: 128 } })
  return app.listen({ host: '127.0.0.1', port: 0 })
}

// Hop-by-hop headers (RFC 9110 7.6.1), never forwarded, plus host (the upstream's is set by undici).
const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
])
function endToEnd(headers) {
  const named = headers.connection
  const listed = named
    ? String(named)
        .toLowerCase()
        .split(/\s*,\s*/)
    : []
  const out = {}
  for (const name in headers) if (!HOP.has(name) && !listed.includes(name)) out[name] = headers[name]
  return out
}

// The Node ceiling: node:http in front, undici's Pool behind (the client @fastify/reply-from uses,
// the same copy of it), bodies streamed both ways, hop-by-hop headers dropped; no framework, no
// routing, no hooks. What a Node proxy costs before anything is decided about the request.
async function raw() {
  const require = createRequire(import.meta.url)
  const fromProxy = createRequire(require.resolve('@fastify/http-proxy'))
  const fromReplyFrom = createRequire(fromProxy.resolve('@fastify/reply-from'))
  const { Pool } = await import(pathToFileURL(fromReplyFrom.resolve('undici')).href)
  const pool = new Pool(upstreamUrl, { connections: 128, pipelining: 1 })
  const server = http.createServer((req, res) => {
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD'
    pool.stream(
      { path: req.url, method: req.method, headers: endToEnd(req.headers), body: hasBody ? req : null },
      ({ statusCode, headers }) => {
        res.writeHead(statusCode, endToEnd(headers))
        return res
      },
      (err) => {
        if (!err) return
        if (!res.headersSent) res.writeHead(502).end()
        else res.destroy(err)
      },
    )
  })
  server.keepAliveTimeout = 60_000
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return `http://127.0.0.1:${server.address().port}`
}

async function sluice() {
  const dist = process.env.SLUICE_BENCH_DIST ? pathToFileURL(process.env.SLUICE_BENCH_DIST).href : '../dist/index.js'
  const { compileConfigText, buildProxy } = await import(dist)
  const config = compileConfigText(
    configFor(scenario, { upstream: upstreamUrl, redis: redisUrl, prefix: `bench:${process.pid}:` }),
    `bench:${scenario}`,
    { env: {} },
  )
  const app = await buildProxy(config, { logger: false })
  if (scenario === 'redis') await app.sluice.store.ready()
  return app.listen({ host: '127.0.0.1', port: 0 })
}

const url =
  kind === 'upstream'
    ? await upstream()
    : kind === 'plain'
      ? await plain()
      : kind === 'raw'
        ? await raw()
        : await sluice()
console.log(`READY ${url}`)
process.on('SIGINT', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
