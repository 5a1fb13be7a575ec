// The inspection memory budget (issue 13 §4): bodies held for inspection across all requests
// are bounded; past the budget, inspected routes answer 503 instead of growing the heap.
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const CONFIG = `
version: 1
upstream: { url: UPSTREAM, timeout: 5s }
inspection: { memory: 100kb }
routes:
  - name: batch
    methods: [POST]
    path: /api/batch
    records: { body: "$.ids" }
    limits: [ { window: 10m, distinctRecords: 1000, action: throttle } ]
`

let upstream: Upstream
let proxy: RunningProxy
beforeAll(async () => {
  upstream = await startUpstream()
  proxy = await startProxy(CONFIG, { upstream: upstream.url })
})
afterAll(async () => {
  await proxy?.close()
  await upstream?.close()
})

/** A client that announces a 60 KB body and sends only its first bytes (a slow sender). */
function slowSender(port: number): Promise<net.Socket> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(
        `POST /api/batch HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 60000\r\n\r\n{"ids":[`,
      )
      setTimeout(() => resolve(socket), 100)
    })
  })
}

describe('inspection memory budget', () => {
  it('a request that would take the held bytes past inspection.memory is answered 503 at once; room comes back when a holder ends', async () => {
    const port = Number(new URL(proxy.url).port)
    const holder = await slowSender(port)
    const post = () =>
      fetch(`${proxy.url}/api/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ids: [1, 2], pad: 'x'.repeat(59_000) }),
      })
    const refused = await post()
    expect(refused.status).toBe(503)
    expect(refused.headers.get('retry-after')).toBe('1')
    expect(proxy.logs.some((l) => l.event === 'sluice.busy')).toBe(true)
    // A small body still fits beside the holder.
    expect(
      (
        await fetch(`${proxy.url}/api/batch`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"ids":[3]}',
        })
      ).status,
    ).toBe(200)
    holder.destroy()
    await new Promise((r) => setTimeout(r, 100))
    expect((await post()).status).toBe(200)
  })
})
