// A "lax legacy" upstream: it reads requests the way servlet containers, PHP and Express do,
// all at once, so that any reading sluice misses is served here and shows up in `served`.
//   query    `&` and `;` separate pairs; keys in any case; `id[]`, `id[0]`, `[id]`, `[id][]`,
//            `%5Bid%5D` all name `id` (qs, PHP); `pageSize`/`_limit` read the same way
//   bodies   JSON whatever the Content-Type (PHP's json_decode(php://input)); forms with
//            bracket keys; numbers read from their digits (Java `long`); duplicate keys: both
//   cookies  names in any case, values percent-decoded; `;jsessionid=` in the path (Tomcat);
//            and as Tomcat's legacy parser reads them: `,` separates cookies too, a value ends
//            at its first separator (`JSESSIONID=<id>, x=1` is the session <id>)
//   logins   the user name from the query first, then the body (a servlet's getParameter),
//            compared case-insensitively after NFKC and trimming; Basic users likewise
//   logout   answers 200 and forgets nothing (a common legacy bug)
// Every record id it serves is remembered per user, so a test asks the upstream itself how
// many distinct records an attacker got.
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import { gunzipSync } from 'node:zlib'
import type { AddressInfo } from 'node:net'

export interface LaxLegacy {
  url: string
  /** user (or `anon`) → distinct record ids served to them. */
  served: Map<string, Set<string>>
  /** The largest page size a list request was served with. */
  largestPage: number
  /** Logins the app accepted: session id → user. */
  sessions: Map<string, string>
  close(): Promise<void>
}

export const USERS: Record<string, string> = {
  alice: 'alice-pw',
  mallory: 'mallory-pw',
  bob: 'bob-pw',
  carol: 'carol-pw',
  dave: 'dave-pw',
}

const fold = (name: string) => name.normalize('NFKC').trim().toUpperCase().toLowerCase()

/** Every (key path, value) of a query string or form, as the laxest parser reads it. */
export function laxPairs(text: string): { path: string[]; value: string }[] {
  const out: { path: string[]; value: string }[] = []
  for (const part of text.split(/[&;]/)) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const dec = (s: string) => {
      try {
        return decodeURIComponent(s.replace(/\+/g, ' '))
      } catch {
        return s
      }
    }
    const key = dec(eq < 0 ? part : part.slice(0, eq))
      .trim()
      .toLowerCase()
    const value = eq < 0 ? '' : dec(part.slice(eq + 1))
    const segs = [...key.matchAll(/\[([^\]]*)\]/g)].map((m) => m[1] as string)
    const open = key.indexOf('[')
    let base = open < 0 ? key : key.slice(0, open)
    if (base === '') base = segs.shift() ?? ''
    out.push({ path: [base, ...segs], value })
  }
  return out
}

/**
 * A body as a servlet container (or Spring's JSON reader) reads it in the charset its
 * Content-Type names: a form split at its bytes, percent-decoded to bytes, then decoded; JSON
 * decoded whole. Java's `UTF-16` without a byte-order mark is big-endian; it knows UTF-32.
 * Null when no charset other than UTF-8 is named.
 */
function servletReading(bytes: Buffer, contentType: string): { form: string; json: string } | null {
  let label = /charset\s*=\s*"?([^";\s]+)/i.exec(contentType)?.[1]?.toLowerCase()
  if (bytes[0] === 0xfe && bytes[1] === 0xff) label = 'utf-16be'
  if (bytes[0] === 0xff && bytes[1] === 0xfe) label = 'utf-16le'
  if (label === undefined || label === 'utf-8') return null
  const decode = (b: Buffer): string => {
    if (label === 'utf-32' || label === 'utf-32be' || label === 'utf-32le') {
      let out = ''
      for (let i = 0; i + 3 < b.length; i += 4)
        out += String.fromCodePoint(label === 'utf-32le' ? b.readUInt32LE(i) : b.readUInt32BE(i))
      return out
    }
    return new TextDecoder(label === 'utf-16' ? 'utf-16be' : label).decode(b)
  }
  const percent = (t: string) =>
    Buffer.from(
      t.replace(/\+/g, ' ').replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16))),
      'latin1',
    )
  const form = bytes
    .toString('latin1')
    .split(/[&;]/)
    .filter((part) => part !== '')
    .map((part) => {
      const eq = part.indexOf('=')
      const key = decode(percent(eq < 0 ? part : part.slice(0, eq)))
      const value = decode(percent(eq < 0 ? '' : part.slice(eq + 1)))
      return `${encodeURIComponent(key)}=${encodeURIComponent(value)}`
    })
    .join('&')
  return { form, json: decode(bytes) }
}

function gunzipped(bytes: Buffer): Buffer {
  try {
    return gunzipSync(bytes)
  } catch {
    return bytes
  }
}

const valuesOf = (text: string, name: string) =>
  laxPairs(text)
    .filter((p) => p.path[0] === name.toLowerCase())
    .map((p) => p.value)

/** Ids in a JSON text: every number token's digits and every string under a key `id`/`ids`, duplicates included. */
function jsonIds(text: string, key: string): string[] {
  const out: string[] = []
  // Strict JSON, and lenient as Gson's fromJson reads it: the name unquoted or in single
  // quotes, `=` or `=>` for `:`, `;` between elements.
  const re = new RegExp(`["']?${key}["']?\\s*(?::|=>?)\\s*(\\[[^\\]]*\\]|-?\\d+|"[^"]*")`, 'gi')
  for (const m of text.matchAll(re)) {
    const v = m[1] as string
    for (const t of v.matchAll(/-?\d+|"([^"]*)"/g)) out.push(t[1] ?? t[0])
  }
  return out
}

export async function startLaxLegacy(
  options: { pageItems?: (page: number, size: number) => string } = {},
): Promise<LaxLegacy> {
  const served = new Map<string, Set<string>>()
  const sessions = new Map<string, string>()
  const state = { largestPage: 0 }
  let nextSession = 1

  const serve = (user: string, ids: string[]) => {
    let set = served.get(user)
    if (!set) served.set(user, (set = new Set()))
    for (const id of ids) set.add(id)
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const sent = Buffer.concat(chunks)
      // Jetty's GzipHandler and ASP.NET Core's request decompression inflate a gzip body.
      const bytes = /gzip/i.test(req.headers['content-encoding'] ?? '') ? gunzipped(sent) : sent
      const body = bytes.toString('utf8')
      // Tomcat, ASP.NET and Spring honour the charset a body declares; PHP and Express do not.
      const servlet = servletReading(bytes, String(req.headers['content-type'] ?? ''))
      const rawUrl = req.url ?? '/'
      const q = rawUrl.indexOf('?')
      const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q)
      const query = q < 0 ? '' : rawUrl.slice(q + 1)
      // Tomcat: `;jsessionid=` in any segment is the session; the path is matched without it.
      let urlSession: string | undefined
      const path = rawPath
        .split('/')
        .map((seg) => {
          const [name, ...params] = seg.split(';')
          for (const p of params) {
            const [k = '', v = ''] = p.split('=')
            if (k.toLowerCase() === 'jsessionid') urlSession = decodeURIComponent(v)
          }
          return name
        })
        .join('/')
      let cookieSession: string | undefined
      for (const pair of (req.headers.cookie ?? '').split(';')) {
        const eq = pair.indexOf('=')
        if (eq < 0) continue
        if (pair.slice(0, eq).trim().toLowerCase() === 'jsessionid')
          cookieSession = decodeURIComponent(pair.slice(eq + 1).trim())
      }
      const sid = cookieSession ?? urlSession
      let user = sid !== undefined ? sessions.get(sid) : undefined
      user ??= sessions.get(tomcatLegacySession(req.headers.cookie ?? '') ?? '')
      const auth = req.headers.authorization
      if (!user && auth?.toLowerCase().startsWith('basic ')) {
        const [u = '', p = ''] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':')
        if (USERS[fold(u)] === p) user = fold(u)
      }
      const json = (status: number, doc: unknown, raw?: string) => {
        res.writeHead(status, { 'content-type': 'application/json' })
        res.end(raw ?? JSON.stringify(doc))
      }

      if (path === '/login' && req.method === 'POST') {
        // getParameter: the query first, then the body; JSON bodies too.
        const fromQuery = valuesOf(query, 'username')[0]
        const fromBody = body.trim().startsWith('{')
          ? (JSON.parse(body) as Record<string, string>).username
          : valuesOf(body, 'username')[0]
        const name = fold(fromQuery ?? fromBody ?? '')
        const password =
          valuesOf(query, 'password')[0] ??
          (body.trim().startsWith('{')
            ? (JSON.parse(body) as Record<string, string>).password
            : valuesOf(body, 'password')[0])
        if (USERS[name] === undefined || USERS[name] !== password) return json(401, { error: 'bad credentials' })
        // Tomcat's: 16 random bytes in hex (nextSession keeps them apart in a failing test's output).
        const id = `${(nextSession++).toString(16).padStart(4, '0')}${randomBytes(14).toString('hex')}`.toUpperCase()
        sessions.set(id, name)
        res.writeHead(200, { 'set-cookie': `JSESSIONID=${id}; Path=/; HttpOnly`, 'content-type': 'application/json' })
        return res.end(JSON.stringify({ user: name }))
      }
      if (path === '/logout') return json(200, { ok: true }) // forgets nothing
      const who = user ?? 'anon'
      const contact = /^\/api\/contacts\/([^/]+)$/.exec(path)
      if (contact && req.method === 'GET') {
        serve(who, [contact[1] as string])
        return json(200, { id: contact[1], name: `Contact ${contact[1]}` })
      }
      if (path === '/api/contacts' && req.method === 'GET') {
        const ids = valuesOf(query, 'id').flatMap((v) => v.split(','))
        if (ids.length > 0) {
          serve(who, ids)
          return json(200, { items: ids.map((id) => ({ id })) })
        }
        const size = Math.max(
          1,
          ...valuesOf(query, 'pagesize').map(Number).filter(Number.isFinite),
          ...valuesOf(query, '_limit').map(Number).filter(Number.isFinite),
        )
        const page = Number(valuesOf(query, 'page')[0] ?? 0)
        state.largestPage = Math.max(state.largestPage, size)
        const items = Array.from({ length: Math.min(size, 5000) }, (_, i) => String(page * size + i + 1))
        serve(who, items)
        return json(200, { items: items.map((id) => ({ id })) })
      }
      if (path === '/api/find') {
        // A servlet's getParameter (or PHP's $_REQUEST, ASP.NET's Request[…]): the query's
        // fields and a form body's, whatever the method; ASP.NET MVC binds a JSON body's too.
        const type = String(req.headers['content-type'] ?? '')
        // commons-fileupload (Spring, Struts 1) reads any multipart/*; Struts 2 a type containing multipart/form-data.
        const fromBody = /multipart\//i.test(type)
          ? multipartValues(body, type, 'id')
          : body.trim().startsWith('{')
            ? jsonIds(body, 'id')
            : valuesOf(body, 'id')
        const ids = [...valuesOf(query, 'id'), ...fromBody].flatMap((v) => v.split(','))
        serve(who, ids)
        return json(200, { items: ids.map((id) => ({ id })) })
      }
      if (path === '/api/contacts/batch' && req.method === 'POST') {
        // JSON whatever the type, else a form with bracket keys; as UTF-8 and in the body's charset.
        const idsIn = (json: string, form: string) =>
          json.trim().startsWith('{')
            ? jsonIds(json, 'ids')
            : laxPairs(form)
                .filter((p) => p.path[0] === 'ids')
                .map((p) => p.value)
        // (Servlets split a form at its bytes before decoding; ASP.NET Core decodes it whole first.)
        const ids = [
          ...idsIn(body, body),
          ...(servlet ? [...idsIn(servlet.json, servlet.form), ...idsIn(servlet.json, servlet.json)] : []),
        ]
        serve(who, ids)
        return json(200, { items: ids.map((id) => ({ id })) })
      }
      if (path === '/api/export' && req.method === 'GET') {
        // A JSON answer written by hand: the ids are what the test asks for, as raw text.
        const raw = options.pageItems?.(Number(valuesOf(query, 'page')[0] ?? 0), 0) ?? '{"items":[]}'
        serve(who, jsonIds(raw, 'id'))
        return json(200, null, raw)
      }
      json(404, { error: 'not found' })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    served,
    sessions,
    get largestPage() {
      return state.largestPage
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/** Distinct records the upstream served to `user`. */
export function servedTo(app: LaxLegacy, user: string): number {
  return app.served.get(user)?.size ?? 0
}

/**
 * JSESSIONID as Tomcat's LegacyCookieProcessor reads it (the default through Tomcat 8.0): `;`
 * and `,` separate cookies, blanks are skipped, a quoted value ends at its quote and a token at
 * the first RFC 2616 separator; the rest up to the next `;` or `,` is skipped. No decoding.
 */
function tomcatLegacySession(header: string): string | undefined {
  let found: string | undefined
  for (const part of header.split(/[;,]/)) {
    const eq = part.indexOf('=')
    if (eq < 0 || part.slice(0, eq).trim() !== 'JSESSIONID') continue
    const raw = part.slice(eq + 1).replace(/^[ \t]+/, '')
    const value = raw.startsWith('"') ? raw.slice(1).split('"')[0] : /^[^()<>@,;:\\"[\]?={} \t]*/.exec(raw)?.[0]
    if (value) found ??= value
  }
  return found
}

/** A multipart body's fields named `key` (not files), split at the last `boundary=` (a parameter map's). */
function multipartValues(body: string, type: string, key: string): string[] {
  const boundary = [...type.matchAll(/boundary=([^;\s]+)/gi)].at(-1)?.[1]
  if (boundary === undefined) return []
  const out: string[] = []
  for (const part of body.split(`--${boundary}`)) {
    const end = part.indexOf('\r\n\r\n')
    if (end < 0) continue
    const head = part.slice(0, end)
    const name = /name="?([^";\r\n]+)/i.exec(head)?.[1]
    if (name?.toLowerCase() === key && !/filename=/i.test(head)) out.push(part.slice(end + 4).replace(/\r\n$/, ''))
  }
  return out
}
