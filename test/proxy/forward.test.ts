// The standalone proxy's forwarding core (src/proxy/): what reaches the upstream, what reaches
// the client, streaming both ways, and what happens when either side misbehaves.
import http from 'node:http'
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { send } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const CONFIG = `
version: 1
upstream: { url: UPSTREAM, timeout: 2s }
identity:
  - { type: header, name: x-account-id, trusted: true }
routes:
  - name: contact
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 10m, distinctRecords: 3, action: throttle }
`

let proxy: RunningProxy | undefined
let upstream: Upstream | undefined
afterEach(async () => {
  await proxy?.close()
  await upstream?.close()
  proxy = upstream = undefined
})

/** Send raw bytes, resolve with everything read until the server closes or `ms` pass. */
function raw(url: string, bytes: string, ms = 2_000): Promise<string> {
  const { port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1', () => socket.write(bytes))
    let out = ''
    const timer = setTimeout(() => {
      socket.destroy()
      resolve(out)
    }, ms)
    socket.on('data', (c) => (out += c.toString('latin1')))
    socket.on('error', reject)
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(out)
    })
  })
}

describe('request headers', () => {
  it('drops hop-by-hop headers and those Connection names, sets Host to the upstream, keeps the rest', async () => {
    upstream = await startUpstream()
    proxy = await startProxy(CONFIG, { upstream: upstream.url })
    const res = await send(proxy.url, '/page?q=1', {
      headers: {
        host: 'portal.example',
        connection: 'close, x-secret-hop',
        'x-secret-hop': 'must not pass',
        'keep-alive': 'timeout=5',
        'proxy-connection': 'keep-alive',
        te: 'trailers',
        'x-kept': 'yes',
        cookie: 'JSESSIONID=abc',
      },
    })
    expect(res.status).toBe(200)
    const got = upstream.received[0]!.headers
    expect(got.host).toBe(new URL(upstream.url).host)
    expect(got['x-forwarded-host']).toBe('portal.example')
    expect(got['x-kept']).toBe('yes')
    expect(got.cookie).toBe('JSESSIONID=abc')
    for (const name of ['x-secret-hop', 'keep-alive', 'proxy-connection', 'te']) expect(got[name]).toBeUndefined()
    expect(upstream.received[0]!.url).toBe('/page?q=1')
  })

  it('answers Expect: 100-continue itself and forwards the body without the Expect header', async () => {
    upstream = await startUpstream((req, res) => {
      let body = ''
      req.on('data', (c) => (body += c))
      req.on('end', () => res.end(`${req.headers.expect ?? 'none'}:${body}`))
    })
    proxy = await startProxy(CONFIG, { upstream: upstream.url })
    const answer = await raw(
      proxy.url,
      'POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nhello',
    )
    expect(answer).toContain('HTTP/1.1 100 Continue')
    expect(answer).toContain('none:hello')
  })
})

// Ordered by events, not by a clock: the second part is sent only once the other side has the
// first (or after 5 s, when a proxy that buffers would have been waited for).
function signal(): { promise: Promise<void>; fire: () => void; at: () => number } {
  let fire = () => {}
  let at = 0
  const promise = new Promise<void>((resolve) => (fire = resolve)).then(() => void (at = Date.now()))
  return { promise, fire: () => fire(), at: () => at }
}
const within5s = (p: Promise<void>) => Promise.race([p, new Promise((r) => setTimeout(r, 5000))])

describe('streaming', () => {
  it('streams a chunked upload to the upstream as it arrives', async () => {
    const firstChunk = signal()
    let endedAt = 0
    upstream = await startUpstream((req, res) => {
      req.once('data', () => firstChunk.fire())
      let n = 0
      req.on('data', (c: Buffer) => (n += c.length))
      req.on('end', () => res.end(String(n)))
    })
    proxy = await startProxy(CONFIG, { upstream: upstream.url })
    const { port } = new URL(proxy.url)
    const reply = await new Promise<string>((resolve, reject) => {
      const req = http.request({ port, host: '127.0.0.1', method: 'POST', path: '/upload' }, (res) => {
        let text = ''
        res.on('data', (c) => (text += c))
        res.on('end', () => resolve(text))
      })
      req.on('error', reject)
      req.write('a'.repeat(1000))
      void within5s(firstChunk.promise).then(() => {
        endedAt = Date.now()
        req.end('b'.repeat(1000))
      })
    })
    expect(reply).toBe('2000')
    // The upstream had the first part before the client sent the rest.
    expect(firstChunk.at()).toBeGreaterThan(0)
    expect(firstChunk.at()).toBeLessThanOrEqual(endedAt)
  })

  it('streams a slow answer to the client as the upstream writes it', async () => {
    const firstChunk = signal()
    let endedAt = 0
    upstream = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('first ')
      void within5s(firstChunk.promise).then(() => {
        endedAt = Date.now()
        res.end('second')
      })
    })
    proxy = await startProxy(CONFIG, { upstream: upstream.url })
    const { port } = new URL(proxy.url)
    const seen: string[] = []
    await new Promise<void>((resolve, reject) => {
      http
        .get({ port, host: '127.0.0.1', path: '/report' }, (res) => {
          res.on('data', (c) => {
            seen.push(String(c))
            firstChunk.fire()
          })
          res.on('end', resolve)
        })
        .on('error', reject)
    })
    expect(seen.join('')).toBe('first second')
    // The client had the first part before the upstream wrote the rest.
    expect(seen[0]).toBe('first ')
    expect(firstChunk.at()).toBeGreaterThan(0)
    expect(firstChunk.at()).toBeLessThanOrEqual(endedAt)
  })

  it('an answer that breaks off mid-body ends the client connection, and the proxy carries on', async () => {
    upstream = await startUpstream((req, res) => {
      if (req.url === '/broken') {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' })
        res.write('partial')
        setTimeout(() => res.socket?.destroy(), 50)
        return
      }
      res.end('fine')
    })
    proxy = await startProxy(CONFIG, { upstream: upstream.url })
    const broken = await raw(proxy.url, 'GET /broken HTTP/1.1\r\nHost: x\r\n\r\n')
    expect(broken).toContain('partial')
    expect(broken).not.toContain('fine')
    expect((await send(proxy.url, '/ok')).body).toBe('fine')
  })
})

describe('answers', () => {
  it('passes every Set-Cookie on, and HEAD answers headers only', async () => {
    upstream = await startUpstream((req, res) => {
      res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/; HttpOnly'])
      res.setHeader('content-type', 'text/html')
      res.setHeader('content-length', '11')
      res.end(req.method === 'HEAD' ? undefined : '<p>hello</p>'.slice(0, 11))
    })
    proxy = await startProxy(CONFIG, { upstream: upstream.url })
    const { port } = new URL(proxy.url)
    const cookies = await new Promise<string[] | undefined>((resolve, reject) =>
      http.get({ port, host: '127.0.0.1', path: '/' }, (res) => resolve(res.headers['set-cookie'])).on('error', reject),
    )
    expect(cookies).toEqual(['a=1; Path=/', 'b=2; Path=/; HttpOnly'])
    const head = await raw(proxy.url, 'HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    expect(head).toMatch(/^HTTP\/1\.1 200/)
    expect(head.toLowerCase()).toContain('content-length: 11')
    expect(head.endsWith('\r\n\r\n')).toBe(true)
  })

  it('answers an informational 103 Early Hints with the final answer only', async () => {
    upstream = await startUpstream((_req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' })
      setTimeout(() => res.end('final'), 20)
    })
    proxy = await startProxy(CONFIG, { upstream: upstream.url })
    const res = await send(proxy.url, '/page')
    expect(res.status).toBe(200)
    expect(res.body).toBe('final')
    expect((await send(proxy.url, '/page')).status).toBe(200)
  })

  it('keeps the upstream status and content type as sent (no content type is added)', async () => {
    upstream = await startUpstream((_req, res) => {
      res.writeHead(418)
      res.end('teapot')
    })
    proxy = await startProxy(CONFIG, { upstream: upstream.url })
    const res = await send(proxy.url, '/brew')
    expect(res.status).toBe(418)
    expect(res.headers['content-type']).toBeUndefined()
    expect(res.body).toBe('teapot')
  })
})

describe('upgrades', () => {
  it('are not passed through: the upstream gets an ordinary request without Upgrade (documented)', async () => {
    upstream = await startUpstream((req, res) => res.end(`plain ${req.headers.upgrade ?? 'none'}`))
    proxy = await startProxy(CONFIG, { upstream: upstream.url })
    const answer = await raw(
      proxy.url,
      'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      500,
    )
    expect(answer).not.toContain('101')
    expect(answer).toContain('plain none')
    expect(upstream.received[0]!.headers.upgrade).toBeUndefined()
  })
})

describe('methods', () => {
  it('forwards the usual methods and answers 404 to others without reaching the upstream', async () => {
    upstream = await startUpstream()
    proxy = await startProxy(CONFIG, { upstream: upstream.url })
    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])
      expect((await send(proxy.url, '/x', method === 'GET' ? { method } : { method, body: '' })).status).toBe(200)
    expect((await send(proxy.url, '/x', { method: 'PROPFIND' })).status).toBe(404)
    expect(upstream.received.map((r) => r.method)).toEqual(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])
  })
})
