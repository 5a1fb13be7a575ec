// A webhook receiver on 127.0.0.1 for the notifier and reporter tests.
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Received {
  headers: IncomingHttpHeaders
  body: string
  json: Record<string, unknown>
  at: number
}

export interface Receiver {
  url: string
  received: Received[]
  close(): Promise<void>
}

/** `answer` decides each response (default 204 at once). */
export async function receiver(
  answer: (n: number, res: ServerResponse) => void = (_n, res) => res.writeHead(204).end(),
): Promise<Receiver> {
  const received: Received[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      received.push({ headers: req.headers, body, json: JSON.parse(body) as Record<string, unknown>, at: Date.now() })
      answer(received.length, res)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/hooks/sluice`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** Polls every 10 ms, at most `ms`. */
export async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  for (let i = 0; i < ms / 10; i++) {
    if (check()) return
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`timed out waiting for ${what}`)
}

export function logger() {
  const lines: { level: string; obj: Record<string, unknown>; msg?: string | undefined }[] = []
  const at = (level: string) => (obj: object, msg?: string) =>
    void lines.push({ level, obj: obj as Record<string, unknown>, msg })
  return { lines, info: at('info'), warn: at('warn'), error: at('error') }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
