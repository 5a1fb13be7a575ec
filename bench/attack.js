// Exactness under load: 200 concurrent connections enumerate records on ONE account through
// sluice; count what was served against the limit. Prints JSON.
import http from 'node:http'
import autocannon from 'autocannon'
import { buildProxy, compileConfigText } from '../dist/index.js'

const LIMIT = 100
const upstream = http.createServer((req, res) => {
  req.resume()
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ url: req.url }))
})
await new Promise((r) => upstream.listen(0, '127.0.0.1', r))
const config = compileConfigText(
  `version: 1
upstream: { url: http://127.0.0.1:${upstream.address().port} }
log: { level: silent }
identity: [ { type: header, name: x-account-id, trusted: true } ]
routes:
  - name: contact
    path: /records/:id
    records: { param: id }
    limits:
      - { window: 1h, distinctRecords: ${LIMIT}, action: throttle }
`,
  'attack.yaml',
  { env: {} },
)
const app = await buildProxy(config, { logger: false })
const url = await app.listen({ host: '127.0.0.1', port: 0 })

let n = 0
let served = 0
let blocked = 0
let limitReachedAt = 0
let firstBlockAt = 0
const instance = autocannon({
  url,
  connections: 200,
  amount: 3000,
  requests: [
    {
      method: 'GET',
      setupRequest(req) {
        req.path = `/records/${++n}`
        req.headers = { ...req.headers, 'x-account-id': 'scraper' }
        return req
      },
    },
  ],
})
instance.on('response', (_client, status) => {
  if (status === 200) {
    served++
    if (served === LIMIT) limitReachedAt = performance.now()
  } else if (status === 429) {
    blocked++
    if (!firstBlockAt) firstBlockAt = performance.now()
  }
})
await instance
await app.close()
upstream.close()
console.log(
  JSON.stringify({
    connections: 200,
    limit: LIMIT,
    served,
    blocked,
    firstBlockAfterMs: Math.max(0, Math.round((firstBlockAt - limitReachedAt) * 100) / 100),
  }),
)
