// A request refused before its body was read to the end (413: past maxInspectBytes) leaves the
// rest of that body on the connection: the refusal closes it, so that the client's next request
// (fetch reuses keep-alive connections) is not stuck behind the unread bytes — it was, forever.
import { expect, it } from 'vitest'
import { startProxy } from '../helpers/proxy.js'
import { startUpstream } from '../helpers/upstream.js'

it('a body refused as too large closes its connection; the next request is served', async () => {
  const upstream = await startUpstream()
  const proxy = await startProxy(
    `
version: 1
upstream: { url: UPSTREAM, timeout: 5s }
routes:
  - name: batch
    methods: [POST]
    path: /batch
    records: { body: "$.ids" }
    limits: [ { window: 10m, distinctRecords: 5, action: throttle } ]
`,
    { upstream: upstream.url },
  )
  try {
    const post = async (body: string) => {
      const res = await fetch(`${proxy.url}/batch`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
        signal: AbortSignal.timeout(5000),
      })
      await res.arrayBuffer()
      return { status: res.status, connection: res.headers.get('connection') }
    }
    expect(await post(`{"ids":[1],"pad":"${'x'.repeat(5 * 1024 * 1024)}"}`)).toEqual({
      status: 413,
      connection: 'close',
    })
    expect((await post('{"ids":[2]}')).status).toBe(200)
  } finally {
    await proxy.close()
    await upstream.close()
  }
}, 20_000)
