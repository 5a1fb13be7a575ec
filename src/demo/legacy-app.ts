// A bundled sample "legacy" app: Acme Post's address book. It is what sluice guards in the demo and in
// end-to-end tests, so it parses requests the way an old servlet container or IIS app would: paths
// case-insensitive, `;matrix` params dropped from segments, percent-escapes (except %2F) decoded, dot
// and empty segments resolved, a trailing slash ignored, query names case-insensitive, numbers read
// laxly (`5.0`, `05` and `5e0` are all contact 5), X-HTTP-Method-Override honoured, and no cap on
// pageSize. That laxity is the point: a trick that reaches this app reaches record data.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { portal, type PortalContext } from './portal.js'

export interface LegacyAppOptions {
  host?: string
  port?: number
  /** How many contacts (ids 1..N); default 1000. */
  contacts?: number
  /** username → password; default alice, bob, mallory, trudy and carol, each with the password `<name>-pw`. */
  users?: Record<string, string>
}
export interface ReceivedRequest {
  method: string
  url: string
  headers: Record<string, string | string[] | undefined>
}
export interface LegacyApp {
  url: string
  port: number
  /** Every request the app saw, in arrival order, recorded before handling; the last 100000. */
  received: ReceivedRequest[]
  clear(): void
  close(): Promise<void>
}
export interface Contact {
  id: number
  name: string
  email: string
  phone: string
  street: string
  city: string
  postcode: string
}

const MAX_RECEIVED = 100_000
const MAX_BODY = 1024 * 1024
// One user per loop of the demo's banner: each loop starts with an account no earlier loop disabled.
const DEFAULT_USERS: Record<string, string> = {
  alice: 'alice-pw',
  bob: 'bob-pw',
  mallory: 'mallory-pw',
  trudy: 'trudy-pw',
  carol: 'carol-pw',
}

// ---- deterministic data -------------------------------------------------------------------------

const FIRST = [
  'Olivia',
  'Noah',
  'Amelia',
  'George',
  'Isla',
  'Arthur',
  'Ava',
  'Oliver',
  'Mia',
  'Leo',
  'Ivy',
  'Harry',
  'Freya',
  'Jack',
  'Lily',
  'Oscar',
  'Grace',
  'Theo',
  'Sophia',
  'Henry',
  'Ella',
  'Alfie',
  'Rosie',
  'Jacob',
  'Evie',
  'Thomas',
  'Poppy',
  'Samuel',
  'Ruby',
  'Joshua',
]
const LAST = [
  'Smith',
  'Jones',
  'Taylor',
  'Brown',
  'Williams',
  'Wilson',
  'Johnson',
  'Davies',
  'Patel',
  'Robinson',
  'Wright',
  'Thompson',
  'Evans',
  'Walker',
  'White',
  'Roberts',
  'Green',
  'Hall',
  'Thomas',
  'Clarke',
  'Jackson',
  'Wood',
  'Harris',
  'Edwards',
  'Turner',
  'Martin',
  'Cooper',
  'Hill',
  'Ward',
  'Hughes',
]
const STREETS = [
  'High Street',
  'Station Road',
  'Church Lane',
  'Mill Lane',
  'Victoria Road',
  'Park Avenue',
  'Green Lane',
  'Manor Road',
  'Kings Road',
  'Queens Road',
  'New Road',
  'School Lane',
  'The Crescent',
  'Albert Street',
  'Chapel Street',
  'Orchard Close',
]
const CITIES: [city: string, area: string][] = [
  ['London', 'SW'],
  ['Leeds', 'LS'],
  ['Bristol', 'BS'],
  ['Manchester', 'M'],
  ['Glasgow', 'G'],
  ['Cardiff', 'CF'],
  ['York', 'YO'],
  ['Norwich', 'NR'],
  ['Oxford', 'OX'],
  ['Bath', 'BA'],
  ['Exeter', 'EX'],
  ['Leicester', 'LE'],
]
const DOMAINS = ['example.com', 'example.org', 'example.net']
const LETTERS = [...'ABDEFGHJLNPQRSTUWXYZ'] // the letters a UK inward code ends with

/** mulberry32, seeded per id so a contact never depends on how many others exist. */
function rng(seed: number): () => number {
  let a = (seed * 0x9e3779b1) >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The contact with this id in any app that has at least `id` contacts; undefined unless id is a positive integer. */
export function contactById(id: number): Contact | undefined {
  if (!Number.isSafeInteger(id) || id < 1) return undefined
  const r = rng(id)
  const pick = <T>(list: readonly T[]): T => list[Math.floor(r() * list.length)] as T
  const num = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1))
  const first = pick(FIRST)
  const last = pick(LAST)
  const [city, area] = pick(CITIES)
  return {
    id,
    name: `${first} ${last}`,
    email: `${first}.${last}${id}@${pick(DOMAINS)}`.toLowerCase(),
    phone: `+44 7700 900${String(num(0, 999)).padStart(3, '0')}`, // Ofcom's range reserved for fiction
    street: `${num(1, 240)} ${pick(STREETS)}`,
    city,
    postcode: `${area}${num(1, 28)} ${num(1, 9)}${pick(LETTERS)}${pick(LETTERS)}`,
  }
}

// ---- lax request parsing ------------------------------------------------------------------------

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

/**
 * Servlet-container style path: segments lower-cased, `;params` dropped, escapes decoded but %2F
 * kept, dots resolved.
 */
export function normalizePath(rawPath: string): string {
  const out: string[] = []
  for (const rawSegment of rawPath.split('/')) {
    const segment = decode(rawSegment.split(';')[0] ?? '', false).toLowerCase()
    if (segment === '' || segment === '.') continue
    if (segment === '..') out.pop()
    else out.push(segment)
  }
  return '/' + out.join('/')
}

function decode(text: string, plusIsSpace: boolean): string {
  const parts = text.split(/%2F/i) // an encoded slash stays encoded, so it never splits a segment
  try {
    return parts.map((p) => decodeURIComponent(plusIsSpace ? p.replace(/\+/g, ' ') : p)).join('%2F')
  } catch {
    throw new HttpError(400, 'invalid percent-encoding')
  }
}

/** Query names lower-cased; every value kept, in order. */
function parseQuery(query: string): Map<string, string[]> {
  const params = new Map<string, string[]>()
  for (const pair of query.split('&')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    const name = decode(eq < 0 ? pair : pair.slice(0, eq), true).toLowerCase()
    const value = eq < 0 ? '' : decode(pair.slice(eq + 1), true)
    params.set(name, [...(params.get(name) ?? []), value])
  }
  return params
}

/** An integer the way a lax legacy parser reads one: `5`, ` 5`, `05`, `5.0`, `5e0`, `0x5`. */
function laxInt(text: string | number | undefined, what: string): number {
  const n = typeof text === 'number' ? text : text === undefined || text.trim() === '' ? NaN : Number(text)
  if (!Number.isSafeInteger(n)) throw new HttpError(400, `${what} must be an integer`)
  return n
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length']) > MAX_BODY) {
      req.resume() // drain so the client still reads our answer
      return reject(new HttpError(413, 'request body too large'))
    }
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY) reject(new HttpError(413, 'request body too large'))
      else chunks.push(chunk)
    })
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body)
  } catch {
    throw new HttpError(400, 'invalid JSON body')
  }
}

function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>()
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0) cookies.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim())
  }
  return cookies
}

// ---- the app ------------------------------------------------------------------------------------

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Acme Post — Address book</title></head>
<body>
<h1>Acme Post — Address book</h1>
<form method="post" action="/login">
  <label>Username <input name="username" autocomplete="username"></label>
  <label>Password <input name="password" type="password" autocomplete="current-password"></label>
  <button type="submit">Log in</button>
</form>
<p>The API is at <code>/api/contacts</code> (<code>?page=1&amp;pageSize=20</code>, <code>/api/contacts/{id}</code>, <code>POST /api/contacts/search</code>).</p>
</body></html>
`

export async function startLegacyApp(options: LegacyAppOptions = {}): Promise<LegacyApp> {
  const users = options.users ?? DEFAULT_USERS
  const count = options.contacts ?? 1000
  const contacts = Array.from({ length: count }, (_, i) => contactById(i + 1) as Contact)
  const lookup = (id: number): Contact | undefined => (id >= 1 && id <= count ? contacts[id - 1] : undefined)
  const sessions = new Map<string, string>() // JSESSIONID → username
  // The server-rendered portal (src/demo/portal.ts) over the same contacts and logins.
  const portalContext: PortalContext = { contacts, lookup, user: (req) => authenticatedUser(req), laxInt }
  const received: ReceivedRequest[] = []

  const checkPassword = (user: unknown, password: unknown): user is string =>
    typeof user === 'string' && typeof password === 'string' && Object.hasOwn(users, user) && users[user] === password

  function authenticatedUser(req: IncomingMessage): string | undefined {
    const sid = parseCookies(req.headers.cookie).get('JSESSIONID')
    const fromSession = sid === undefined ? undefined : sessions.get(sid)
    if (fromSession !== undefined) return fromSession
    const basic = /^basic\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')
    if (!basic) return undefined
    const decoded = Buffer.from(basic[1] as string, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    const user = decoded.slice(0, colon)
    return colon >= 0 && checkPassword(user, decoded.slice(colon + 1)) ? user : undefined
  }

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = typeof body === 'string' ? body : JSON.stringify(body)
    const type =
      typeof body !== 'string'
        ? 'application/json; charset=utf-8'
        : text.startsWith('<!doctype')
          ? 'text/html; charset=utf-8'
          : 'text/plain; charset=utf-8'
    res.writeHead(status, { 'content-type': type, 'content-length': String(Buffer.byteLength(text)), ...headers })
    res.end(text)
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/'
    const q = rawUrl.indexOf('?')
    const path = normalizePath(q < 0 ? rawUrl : rawUrl.slice(0, q))
    const query = parseQuery(q < 0 ? '' : rawUrl.slice(q + 1))
    const body = await readBody(req)
    const override = req.headers['x-http-method-override']
    let method = (req.method ?? 'GET').toUpperCase()
    if (method === 'POST' && typeof override === 'string' && override.trim() !== '')
      method = override.trim().toUpperCase()
    const isGet = method === 'GET' || method === 'HEAD'
    const allow = (methods: string) => {
      if (!methods.split(', ').includes(method)) throw new HttpError(405, `method ${method} not allowed`)
    }
    const requireUser = (): string => {
      const user = authenticatedUser(req)
      if (user === undefined) throw new HttpError(401, 'authentication required')
      return user
    }

    if (path === '/' || path === '/health') {
      allow('GET, HEAD')
      return send(res, 200, path === '/' ? PAGE : 'ok')
    }
    if (path === '/login') {
      allow('POST')
      const json = /json/i.test(req.headers['content-type'] ?? '')
      const fields = json ? parseJson(body) : Object.fromEntries([...parseQuery(body)].map(([k, v]) => [k, v[0]]))
      const { username, password } = (typeof fields === 'object' && fields !== null ? fields : {}) as Record<
        string,
        unknown
      >
      if (!checkPassword(username, password)) return send(res, 401, { error: 'invalid credentials' })
      const sid = randomBytes(16).toString('hex')
      sessions.set(sid, username)
      const cookie = { 'set-cookie': `JSESSIONID=${sid}; Path=/; HttpOnly` }
      return json
        ? send(res, 200, { ok: true, user: username }, cookie)
        : send(res, 303, '', { ...cookie, location: '/' })
    }
    if (path === '/logout') {
      allow('POST')
      const sid = parseCookies(req.headers.cookie).get('JSESSIONID')
      if (sid !== undefined) sessions.delete(sid)
      res.writeHead(204).end()
      return
    }
    if (path === '/api/contacts') {
      allow('GET, HEAD')
      requireUser()
      const ids = query.get('ids')
      if (ids !== undefined) {
        const wanted = ids
          .flatMap((v) => v.split(','))
          .filter((s) => s.trim() !== '')
          .map((s) => laxInt(s, 'ids'))
        return send(res, 200, { items: wanted.map(lookup).filter((c) => c !== undefined) })
      }
      const page = laxInt(query.get('page')?.[0] ?? '1', 'page')
      const pageSize = laxInt(query.get('pagesize')?.[0] ?? '20', 'pageSize')
      if (page < 1 || pageSize < 1) throw new HttpError(400, 'page and pageSize must be at least 1')
      const start = Math.min((page - 1) * pageSize, count)
      return send(res, 200, { items: contacts.slice(start, start + pageSize), page, pageSize, total: count })
    }
    if (path === '/api/contacts/search') {
      allow('POST')
      requireUser()
      const criteria = parseJson(body) as { ids?: unknown; name?: unknown } | null
      if (Array.isArray(criteria?.ids)) {
        const ids = criteria.ids.map((v: unknown) =>
          laxInt(typeof v === 'number' || typeof v === 'string' ? v : undefined, 'ids'),
        )
        return send(res, 200, { items: ids.map(lookup).filter((c) => c !== undefined) })
      }
      if (typeof criteria?.name === 'string') {
        const needle = criteria.name.toLowerCase() // an empty name matches everyone, as such apps do
        return send(res, 200, { items: contacts.filter((c) => c.name.toLowerCase().includes(needle)) })
      }
      throw new HttpError(400, 'search needs "ids" (an array) or "name" (a string)')
    }
    if (portal(portalContext, path, method, query, body, req, res)) return
    const one = /^\/api\/contacts\/([^/]+)$/.exec(path)
    if (one && isGet) {
      requireUser()
      const contact = lookup(laxInt(one[1], 'id'))
      return contact ? send(res, 200, contact) : send(res, 404, { error: 'contact not found' })
    }
    if (one) throw new HttpError(405, `method ${method} not allowed`)
    throw new HttpError(404, 'not found')
  }

  const server = createServer((req, res) => {
    received.push({ method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers } })
    if (received.length > MAX_RECEIVED) received.splice(0, received.length - MAX_RECEIVED)
    handle(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500
      const message = err instanceof HttpError ? err.message : 'internal error'
      const extra: Record<string, string> = status === 401 ? { 'www-authenticate': 'Basic realm="Acme Post"' } : {}
      if (!res.headersSent) send(res, status, { error: message }, extra)
      else res.destroy()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve())
  })
  const { port, address } = server.address() as AddressInfo
  const host = address.includes(':') ? `[${address}]` : address
  return {
    url: `http://${host}:${port}`,
    port,
    received,
    clear: () => {
      received.length = 0
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()))
        server.closeAllConnections()
      }),
  }
}
