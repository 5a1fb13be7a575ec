// A recording upstream on loopback: answers every request with JSON naming what it received.
import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Received {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
}

export interface Upstream {
  url: string
  received: Received[]
  close(): Promise<void>
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void

export async function startUpstream(handler?: Handler): Promise<Upstream> {
  const received: Received[] = []
  const server = http.createServer((req, res) => {
    received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers })
    if (handler) return handler(req, res)
    req.resume()
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ ok: true, method: req.method, url: req.url }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
