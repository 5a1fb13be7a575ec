// An inspected route's answer that is sent on as a stream (past maxInspectBytes, let through
// counted as a worst case): every byte reaches a slow client intact while the upstream is held
// back, and a client that leaves mid-answer ends the upstream request. A real upstream on
// loopback, sluice in front, a raw HTTP client that reads at its own pace.
import { createHash } from 'node:crypto'
import http from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { basic } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

/** A 4 MB JSON list, written in 64 KB pieces as fast as the connection takes them. */
const BIG = Buffer.from(
  JSON.stringify({
    items: Array.from({ length: 40_000 }, (_, i) => ({ id: i, name: `Contact ${i}`.padEnd(80, '.') })),
  }),
)
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

let upstream: Upstream
let proxy: RunningProxy
/** How each answer of /big ended at the upstream: 'finished' or 'aborted' (its client went away). */
const endings: string[] = []
let pausedWrites = 0

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    req.resume()
    res.on('close', () => endings.push(res.writableFinished ? 'finished' : 'aborted'))
    if (req.url?.startsWith('/long')) {
      // 256 MB, a 64 KB piece every 2 ms: far more than the sockets between hold, still
      // being written when a client leaves.
      const piece = BIG.subarray(0, 65_536)
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(4096 * piece.length) })
      const timer = setInterval(() => res.write(piece), 2)
      return void res.once('close', () => clearInterval(timer))
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(BIG.length) })
    let at = 0
    const more = () => {
      while (at < BIG.length) {
        const ok = res.write(BIG.subarray(at, at + 65_536))
        at += 65_536
        if (!ok) {
          pausedWrites++
          return void res.once('drain', more)
        }
      }
      res.end()
    }
    more()
  })
  proxy = await startProxy(
    `
version: 1
upstream: { url: UPSTREAM, timeout: 10s }
identity: [{ type: basic }]
routes:
  - name: list
    methods: [GET]
    path: /:page
    records: { response: "$.items[*].id", maxInspectBytes: 8kb, uninspectable: 10 }
    limits:
      - { window: 10m, distinctRecords: 1000, action: throttle }
`,
    { upstream: upstream.url },
  )
})
afterAll(async () => {
  await proxy?.close()
  await upstream?.close()
})

/** GET /big, reading `pace` bytes every few milliseconds (or `leaveAfter` bytes, then closing). */
function slowGet(
  pace: number,
  leaveAfter = Infinity,
  path = '/big',
): Promise<{ status: number; body: Buffer; left: boolean }> {
  const url = new URL(`${proxy.url}${path}`)
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: basic('clerk'), agent: false }, (res) => {
      const chunks: Buffer[] = []
      let got = 0
      res.pause()
      const tick = setInterval(() => {
        let chunk: Buffer | null
        let read = 0
        while (read < pace && (chunk = res.read() as Buffer | null) !== null) {
          chunks.push(chunk)
          read += chunk.length
          got += chunk.length
        }
        if (got >= leaveAfter) {
          clearInterval(tick)
          req.destroy()
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), left: true })
        }
      }, 2)
      res.on('end', () => {
        clearInterval(tick)
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), left: false })
      })
      res.on('error', () => undefined)
    })
    req.on('error', (err) => (leaveAfter === Infinity ? reject(err) : undefined))
  })
}

describe('an inspected answer sent on as a stream', () => {
  it('reaches a slow client whole and intact, the upstream held back meanwhile', async () => {
    const r = await slowGet(256 * 1024)
    expect(r.status).toBe(200)
    expect(r.body.length).toBe(BIG.length)
    expect(sha(r.body)).toBe(sha(BIG))
    // The upstream met a full socket: sluice did not read 4 MB ahead of its client.
    expect(pausedWrites).toBeGreaterThan(0)
    expect(endings).toEqual(['finished'])
  }, 30_000)

  it('a client that leaves mid-answer ends the upstream request, and the next one is served', async () => {
    endings.length = 0
    const left = await slowGet(64 * 1024, 512 * 1024, '/long')
    expect(left.left).toBe(true)
    for (let i = 0; i < 100 && endings.length === 0; i++) await new Promise((r) => setTimeout(r, 50))
    expect(endings).toEqual(['aborted'])
    const next = await slowGet(4 * 1024 * 1024)
    expect(sha(next.body)).toBe(sha(BIG))
  }, 30_000)
})
