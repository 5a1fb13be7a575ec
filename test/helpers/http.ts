// A raw HTTP/1.1 client: sends the request target byte for byte (fetch and http.request
// normalise or refuse exactly the paths a bypass test needs to send).
import net from 'node:net'

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
}

export function send(
  base: string,
  target: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {},
): Promise<RawResponse> {
  const { hostname, port } = new URL(base)
  const method = options.method ?? 'GET'
  const headers: Record<string, string> = { host: `${hostname}:${port}`, connection: 'close', ...options.headers }
  if (options.body !== undefined) headers['content-length'] = String(Buffer.byteLength(options.body))
  const head = `${method} ${target} HTTP/1.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\r\n')}\r\n\r\n`
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname)
    const chunks: Buffer[] = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no response to ${method} ${target} within ${options.timeoutMs ?? 10_000}ms`))
    }, options.timeoutMs ?? 10_000)
    socket.on('connect', () =>
      socket.write(Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(options.body ?? '')])),
    )
    socket.on('data', (c) => chunks.push(c))
    socket.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    socket.on('close', () => {
      clearTimeout(timer)
      const text = Buffer.concat(chunks).toString('utf8')
      const split = text.indexOf('\r\n\r\n')
      const [statusLine = '', ...lines] = text.slice(0, split).split('\r\n')
      const status = Number(statusLine.split(' ')[1])
      const h: Record<string, string> = {}
      for (const line of lines) {
        const i = line.indexOf(':')
        h[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
      }
      let body = text.slice(split + 4)
      if (h['transfer-encoding'] === 'chunked') body = dechunk(body)
      resolve({ status, headers: h, body })
    })
  })
}

function dechunk(s: string): string {
  let out = ''
  let i = 0
  while (i < s.length) {
    const eol = s.indexOf('\r\n', i)
    const size = parseInt(s.slice(i, eol), 16)
    if (!size) break
    out += s.slice(eol + 2, eol + 2 + size)
    i = eol + 2 + size + 2
  }
  return out
}

export function basic(user: string, password = `${user}-pw`): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` }
}
