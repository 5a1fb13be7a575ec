// Shadow mode serves everything and shows the truth: a scraper past a limit in shadow is
// counted for what it took (2,000 records, not the limit + 1), while decisions stay exactly
// those enforce would make.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { buildAdmin } from '../../src/admin/server.js'
import { accountPath, call, policiesOf, TOKEN } from '../admin/helpers.js'
import { send } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const CONFIG = `
version: 1
mode: shadow
upstream: { url: UPSTREAM, timeout: 2s }
identity: [{ type: header, name: x-user, trusted: true }]
routes:
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 1h, distinctRecords: 500, action: throttle }
`

let upstream: Upstream
let proxy: RunningProxy | undefined
beforeEach(async () => {
  upstream = await startUpstream()
})
afterEach(async () => {
  await proxy?.close()
  proxy = undefined
  await upstream.close()
})

describe('shadow counts', () => {
  it('a scraper that took 2,000 records in shadow shows 2,000, every request served', async () => {
    proxy = await startProxy(CONFIG, { upstream: upstream.url })
    const admin = await buildAdmin({
      token: TOKEN,
      metrics: proxy.app.sluice.metrics,
      store: proxy.app.sluice.store,
      policies: policiesOf(CONFIG),
    })
    const url = await admin.listen({ host: '127.0.0.1', port: 0 })
    try {
      for (let id = 1; id <= 2000; id++) {
        const res = await send(proxy.url, `/api/contacts/${id}`, { headers: { 'x-user': 'scraper' } })
        expect(res.status).toBe(200)
      }
      // Re-reads are free in shadow too.
      for (let id = 1; id <= 10; id++)
        await send(proxy.url, `/api/contacts/${id}`, { headers: { 'x-user': 'scraper' } })
      const last = proxy.decisions().at(-1) as { decision: string; shadow: boolean; counts: Record<string, number> }
      expect(last).toMatchObject({ decision: 'throttle', shadow: true })
      expect(last.counts['1h distinctRecords 500 → throttle']).toBe(2000)
      const shown = await call(url, 'GET', accountPath('header:scraper'))
      expect(shown.json.routes[0].limits[0].count).toBe(2000)
      const list = await call(url, 'GET', '/accounts')
      expect(list.json.accounts[0]).toMatchObject({ account: 'header:scraper' })
      expect(list.json.accounts[0].routes[0].limits[0].count).toBe(2000)
    } finally {
      await admin.close()
    }
  }, 60_000)
})
