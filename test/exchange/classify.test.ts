// One request path (issue 14): the Fastify hook and `sluice replay` classify a request with the
// same function. A table of requests — path tricks, method overrides, clamps, every record form
// — gives the same classification through the live hook, through replay (where an access log
// can carry the request: no headers), and from classify() itself.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { compileConfigText } from '../../src/config/index.js'
import { canonicalOptions, classify, type RequestLine } from '../../src/exchange/classify.js'
import { sluice } from '../../src/plugin.js'
import { replayLogs } from '../../src/replay/replay.js'
import { send } from '../helpers/http.js'

const CONFIG = compileConfigText(
  `
version: 1
upstream: { url: http://127.0.0.1:1 }
sessions:
  login: { path: /login, usernameField: username, cookie: JSESSIONID }
identity: [ { type: cookie, name: JSESSIONID } ]
routes:
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits: [ { window: 10m, distinctRecords: 1000, action: log } ]
  - name: lookup
    methods: [GET]
    path: /api/lookup
    records: { query: id, split: "," }
    clampQuery: { pageSize: 50 }
    limits: [ { window: 10m, distinctRecords: 1000, action: log } ]
  - name: nested
    methods: [GET]
    path: /api/search
    records: { query: "filter[id]" }
    limits: [ { window: 10m, distinctRecords: 1000, action: log } ]
  - name: delete
    methods: [DELETE]
    path: /api/contacts/:id
    records: { param: id }
    limits: [ { window: 1m, requests: 1000, action: log } ]
  - name: batch
    methods: [POST]
    path: /api/batch
    records: { body: "$.ids" }
    limits: [ { window: 10m, distinctRecords: 1000, action: log } ]
  - name: list
    methods: [GET]
    path: /api/list
    records: { response: "$.items[*].id" }
    clampQuery: { _limit: 20 }
    limits: [ { window: 10m, distinctRecords: 1000, action: log } ]
  - name: files
    path: /files/*
    limits: [ { window: 1m, requests: 1000, action: log } ]
`,
  'classify.yaml',
)

type Row = RequestLine & { note: string; headers: Record<string, string> }
const get = (url: string, note: string, headers: Record<string, string> = {}): Row => ({
  method: 'GET',
  url,
  headers,
  note,
})
const TABLE: Row[] = [
  get('/api/contacts/7', 'a path parameter'),
  get('/api/contacts/7/', 'trailing slash'),
  get('/API/Contacts/7', 'case'),
  get('/api//contacts/./7', 'empty and dot segments'),
  get('/api/x/../contacts/7', 'dot-dot'),
  get('/api/contacts/7;jsessionid=abc', 'matrix parameter'),
  get('/api;x=1/contacts/8', 'matrix parameter on another segment'),
  get('/api/contacts/%37', 'percent-encoded unreserved'),
  get('/api/%63ontacts/9', 'percent-encoded letter in a literal segment'),
  get('/api/contacts/%2e%2e/contacts/10', 'encoded dot segment'),
  get('/api/contacts/a%20b', 'space in an id'),
  get('/api/contacts/%C3%A9', 'UTF-8 id'),
  get('/api/contacts/7?x=1', 'a query beside a path record'),
  get('/api/contacts/7#frag', 'a fragment'),
  get('http://example.test/api/contacts/11', 'absolute-form'),
  get('/api%2Fcontacts/7', 'encoded slash: rejected'),
  get('/api/contacts/%5C7', 'encoded backslash: rejected'),
  get('/api/contacts/%00', 'encoded NUL: rejected'),
  get('/api/contacts/%zz', 'bad escape: rejected'),
  get('/../etc/passwd', 'above the root: rejected'),
  get('/api/contacts/%252e', 'double encoding: rejected'),
  get('/api/lookup?id=1', 'query record'),
  get('/api/lookup?id=1,2,3', 'split query record'),
  get('/api/lookup?id=1&id=2', 'repeated query record'),
  get('/api/lookup?ID=4', 'query key case'),
  get('/api/lookup?[id]=5', 'leading-bracket key'),
  get('/api/lookup?%5Bid%5D=6', 'encoded brackets'),
  get('/api/lookup?id[]=7&id[0]=8', 'PHP array keys'),
  get('/api/lookup?x=1;id=9', 'semicolon separator'),
  get('/api/lookup?id=10&pageSize=100000', 'clamp with records'),
  get('/api/lookup?pageSize=0', 'clamp zero'),
  get('/api/lookup?[pageSize]=500', 'clamp of a bracket key'),
  get('/api/lookup?pageSize=50', 'within the clamp'),
  get('/api/lookup', 'no query'),
  get('/api/search?filter[id]=11', 'nested key'),
  get('/api/search?filter%5Bid%5D=12&filter[id][]=13', 'nested key spellings'),
  get('/api/search?id=14', 'the un-nested key is another key'),
  get('/api/list?page=2', 'response records'),
  get('/api/list?_limit=1000', 'clamp on a response route'),
  get('/files/a/b/c.pdf', 'wildcard route'),
  get('/api/list.json?page=3', 'a format suffix (Rails, older Spring MVC)'),
  get('/API/Lookup.XML?id=21', 'a format suffix with a query record'),
  get('/api/contacts/22.json', 'a suffix on a path record: the record as written'),
  get('/api/list.json.bak', 'one suffix only'),
  { method: 'POST', url: '/login.json?username=y', headers: {}, note: 'a login with a format suffix' },
  { method: 'POST', url: '/api/contacts/23?_method=DELETE', headers: {}, note: "a POST's _method query key" },
  { method: 'POST', url: '/api/contacts/24?%5Fmethod=get', headers: {}, note: 'an encoded _method key' },
  { method: 'GET', url: '/api/contacts/25?_method=DELETE', headers: {}, note: '_method on a GET: no override' },
  { method: 'HEAD', url: '/api/contacts/12', headers: {}, note: 'HEAD counts as GET' },
  { method: 'DELETE', url: '/api/contacts/13', headers: {}, note: 'another method, another route' },
  { method: 'POST', url: '/api/contacts/14', headers: {}, note: 'a POST with a JSON body: a method no route covers' },
  {
    method: 'POST',
    url: '/api/contacts/26',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    note: 'a form POST on a GET route: read as the GET',
  },
  {
    method: 'POST',
    url: '/api/contacts/15',
    headers: { 'x-http-method-override': 'DELETE' },
    note: 'method override header',
  },
  { method: 'POST', url: '/api/contacts/16', headers: { 'x-http-method': 'get' }, note: 'override in lower case' },
  {
    method: 'POST',
    url: '/api/contacts/17',
    headers: { 'x-method-override': 'BOGUS' },
    note: 'an override that is no method',
  },
  { method: 'POST', url: '/api/batch', headers: {}, note: 'body records: read later' },
  { method: 'POST', url: '/login?username=x', headers: {}, note: 'a login on no route' },
  get('/other/path', 'no route'),
  get('/', 'the root'),
]

/** What is compared: the route, the forwarded target, the records, the clamp; or rejected / unrouted. */
function shape(c: ReturnType<typeof classify>): unknown {
  if (c.kind === 'rejected') return { kind: 'rejected' }
  if (c.kind === 'unrouted') return { kind: 'unrouted', session: c.session }
  return {
    kind: 'routed',
    route: c.route.name,
    target: c.target,
    records: c.records,
    clamped: c.clamped,
    session: c.session,
  }
}

let app: FastifyInstance
let base: string
let dir: string
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-classify-'))
  app = Fastify()
  // (A form body taken as text: what the app does with it is not under test.)
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) =>
    done(null, body),
  )
  await app.register(sluice, { config: CONFIG, forwarding: true })
  // What the hook made of each request: its exchange, and the URL it would forward.
  // (In a header, so that HEAD answers it too.)
  app.all('/*', async (request, reply) => {
    const ex = request.sluiceExchange
    const c = ex?.kind === 'routed' ? ex.classified : null
    const seen = c
      ? {
          kind: 'routed',
          route: c.route.name,
          target: c.target,
          records: c.records,
          clamped: c.clamped,
          session: c.session,
          forwarded: request.raw.url,
        }
      : { kind: 'unrouted', session: ex?.kind === 'session' ? ex.session.kind : null }
    reply.header('x-classified', encodeURIComponent(JSON.stringify(seen)))
    return ''
  })
  base = await app.listen({ host: '127.0.0.1', port: 0 })
})
afterAll(async () => {
  await app?.close()
  rmSync(dir, { recursive: true, force: true })
})

async function throughHook(row: Row): Promise<unknown> {
  // Byte for byte on the wire (fetch and inject would normalise the very paths under test).
  const headers = hookHeaders(row)
  const post =
    row.method === 'POST'
      ? { body: headers['content-type'] === 'application/json' ? '{"ids":[1]}' : 'x=1', headers }
      : { headers }
  const res = await send(base, row.url, { method: row.method, ...post })
  // (A malformed escape is refused by Fastify's router before any hook: a 400 all the same.)
  if (res.status === 400) return { kind: 'rejected' }
  const body = JSON.parse(decodeURIComponent(res.headers['x-classified'] ?? '')) as Record<string, unknown>
  if (body.kind === 'routed') {
    expect(body.forwarded).toBe(body.target) // the upstream receives what was matched
    delete body.forwarded
  }
  if (body.kind === 'unrouted') delete body.forwarded
  return body
}

async function throughReplay(rows: Row[]): Promise<unknown[]> {
  const file = join(dir, 'access.log')
  const line = (r: Row, i: number) =>
    `127.0.0.1 - u${i} [10/Oct/2026:13:55:36 +0000] "${r.method} ${r.url} HTTP/1.1" 200 10 "-" "test"`
  writeFileSync(file, `${rows.map(line).join('\n')}\n`)
  const out: unknown[] = rows.map(() => ({ kind: 'unrouted', session: null }))
  const result = await replayLogs(CONFIG, [file], {
    onDecision: (e) => void (out[e.at.line - 1] = { route: e.route.name, records: e.records }),
  })
  expect(result.rejected.count).toBe(rows.filter((r) => classifyRow(r).kind === 'rejected').length)
  return out
}

const ctx = {
  routes: CONFIG.routes,
  sessions: CONFIG.sessions,
  canonical: canonicalOptions(CONFIG.paths.stripMatrixParams),
}
const classifyRow = (r: Row, headers: Record<string, string> = r.headers) => classify({ ...r, headers }, ctx)
/** What the hook is sent: a POST's body is JSON unless the row says otherwise. */
const hookHeaders = (r: Row): Record<string, string> =>
  r.method === 'POST' && r.headers['content-type'] === undefined
    ? { ...r.headers, 'content-type': 'application/json' }
    : r.headers

describe('one classification for the proxy and replay', () => {
  it(`the hook classifies every request of a ${TABLE.length}-row table exactly as classify() does`, async () => {
    for (const row of TABLE)
      expect({ note: row.note, got: await throughHook(row) }).toEqual({
        note: row.note,
        got: shape(classifyRow(row, hookHeaders(row))),
      })
  })

  it('replay classifies every request an access log can carry exactly as classify() does', async () => {
    const rows = TABLE.filter(
      (r) => Object.keys(r.headers).length === 0 && !r.url.includes('#') && !r.url.includes(' '),
    )
    expect(rows.length).toBeGreaterThanOrEqual(40)
    const replayed = await throughReplay(rows)
    rows.forEach((row, i) => {
      const c = classifyRow(row)
      const want =
        c.kind === 'routed' ? { route: c.route.name, records: c.records ?? [] } : { kind: 'unrouted', session: null }
      expect({ note: row.note, got: replayed[i] }).toEqual({ note: row.note, got: want })
    })
  })

  it('a path no route matches is matched again up to its script segment (PATH_INFO), logins too', () => {
    const scripts = compileConfigText(
      `
version: 1
upstream: { url: http://127.0.0.1:1 }
sessions:
  login: { path: /login.php, usernameField: username, cookie: PHPSESSID }
identity: [ { type: cookie, name: PHPSESSID } ]
routes:
  - name: php
    methods: [GET]
    path: /contact.php
    records: { query: id }
    limits: [ { window: 10m, distinctRecords: 10, action: log } ]
  - name: webforms
    path: /book/Contact.aspx
    records: { query: id }
    limits: [ { window: 10m, distinctRecords: 10, action: log } ]
  - name: more
    path: /contact.php/more
    limits: [ { window: 10m, requests: 10, action: log } ]
`,
      'scripts.yaml',
    )
    const at = { routes: scripts.routes, sessions: scripts.sessions, canonical: canonicalOptions(true) }
    const routeOf = (url: string, method = 'GET') => {
      const c = classify({ method, url, headers: {} }, at)
      return c.kind === 'routed' ? [c.route.name, c.records] : [c.kind, c.kind === 'unrouted' ? c.session : null]
    }
    // Apache runs contact.php for /contact.php/x (the rest is PATH_INFO); IIS Contact.aspx likewise.
    expect(routeOf('/contact.php/x?id=5')).toEqual(['php', ['5']])
    expect(routeOf('/contact.php/x/y.php/z?id=6')).toEqual(['php', ['6']])
    expect(routeOf('/CONTACT.PHP/%78?id=7')).toEqual(['php', ['7']])
    expect(routeOf('/book/contact.aspx/anything/else?id=8')).toEqual(['webforms', ['8']])
    // A route of its own comes first; other paths are left alone.
    expect(routeOf('/contact.php/more')).toEqual(['more', []])
    expect(routeOf('/contact.phpx/y?id=9')).toEqual(['unrouted', null])
    expect(routeOf('/other.php/contact.php?id=9')).toEqual(['unrouted', null])
    expect(routeOf('/login.php/x', 'POST')).toEqual(['unrouted', 'login'])
  })

  it('a path no route matches is matched again without its format suffix', () => {
    const routeOf = (url: string, method = 'GET') => {
      const c = classify({ method, url, headers: {} }, ctx)
      return c.kind === 'routed'
        ? [c.route.name, c.records, c.target]
        : [c.kind, c.kind === 'unrouted' ? c.session : null]
    }
    expect(routeOf('/api/list.json?page=3')).toEqual(['list', [], '/api/list.json?page=3']) // forwarded as sent
    expect(routeOf('/API/Lookup.XML?id=21')).toEqual(['lookup', ['21'], '/API/Lookup.XML?id=21'])
    expect(routeOf('/api/contacts/22.json')).toEqual(['contact', ['22.json'], '/api/contacts/22.json'])
    expect(routeOf('/api/list.json.bak')).toEqual(['unrouted', null])
    expect(routeOf('/.json')).toEqual(['unrouted', null])
    expect(routeOf('/login.json', 'POST')).toEqual(['unrouted', 'login'])
  })

  it("a POST's `_method` query key is an override, in every spelling, each value tried", () => {
    // (A JSON body on /api/list, a route that reads its answer: read as the GET only when overridden; next test.)
    const routeOf = (url: string, method = 'POST', headers: Record<string, string> = {}) => {
      const c = classify({ method, url, headers: { 'content-type': 'application/json', ...headers } }, ctx)
      return c.kind === 'routed' ? c.route.name : c.kind
    }
    // list is GET; contact is GET and delete is DELETE on the same path.
    expect(routeOf('/api/list')).toBe('unrouted')
    expect(routeOf('/api/list?_method=GET')).toBe('list')
    expect(routeOf('/api/list?_method=get')).toBe('list')
    expect(routeOf('/api/list?%5Fmethod=GET')).toBe('list')
    expect(routeOf('/api/list?_method[]=GET')).toBe('list')
    expect(routeOf('/api/list?_METHOD=GET')).toBe('list') // ASP.NET folds key case
    expect(routeOf('/api/contacts/5?x=1&_method=DELETE')).toBe('delete')
    // Two values (PHP takes the last, qs-based method-override the first): both are tried.
    expect(routeOf('/api/list?_method=PATCH&_method=GET')).toBe('list')
    // A header's and the query's: whichever the upstream honours.
    expect(routeOf('/api/list?_method=GET', 'POST', { 'x-http-method-override': 'PATCH' })).toBe('list')
    expect(routeOf('/api/list?_method=BOGUS')).toBe('unrouted')
    expect(routeOf('/api/list?method=GET')).toBe('unrouted')
    // Frameworks override POST only.
    expect(routeOf('/api/contacts/5?_method=DELETE', 'GET')).toBe('contact')
    expect(routeOf('/api/list?_method=GET', 'PUT')).toBe('unrouted')
  })

  it('a request of any other method on a path only a GET route covers is that route (with a form or no body where it reads the answer)', () => {
    const routeOf = (type: string | undefined, method = 'POST', url = '/api/contacts/5?x=1') => {
      const c = classify({ method, url, headers: type === undefined ? {} : { 'content-type': type } }, ctx)
      return c.kind === 'routed' ? [c.route.name, c.records] : [c.kind]
    }
    // Servlets' doPost → doGet, PHP, WebForms, Rails' and Laravel's `_method=get` serve it as the GET.
    expect(routeOf('application/x-www-form-urlencoded')).toEqual(['contact', ['5']])
    expect(routeOf('Application/X-WWW-Form-Urlencoded; charset=UTF-8')).toEqual(['contact', ['5']])
    expect(routeOf('multipart/form-data; boundary=x')).toEqual(['contact', ['5']])
    expect(routeOf('text/plain')).toEqual(['contact', ['5']])
    expect(routeOf(undefined)).toEqual(['contact', ['5']])
    // Whatever the body where the records are in the URL: PHP reads `$_GET['id']` under a JSON POST too.
    expect(routeOf('application/json')).toEqual(['contact', ['5']])
    expect(routeOf('application/xml')).toEqual(['contact', ['5']])
    // Where the GET route reads its answer, an API call's (a REST create) is not the page.
    expect(routeOf('application/json', 'POST', '/api/list')).toEqual(['unrouted'])
    expect(routeOf('application/xml', 'PUT', '/api/list')).toEqual(['unrouted'])
    expect(routeOf('application/x-www-form-urlencoded', 'POST', '/api/list')).toEqual(['list', []])
    expect(routeOf(undefined, 'DELETE', '/api/list')).toEqual(['list', []])
    // PHP scripts run whatever the method, as do Spring's @RequestMapping without a method,
    // old JSPs and Express's app.all: `DELETE /contact.php?id=5` prints contact 5.
    for (const method of ['PUT', 'PATCH', 'OPTIONS', 'PROPFIND', 'TRACE']) {
      expect(routeOf(undefined, method), method).toEqual(['contact', ['5']])
      expect(routeOf('application/x-www-form-urlencoded', method), method).toEqual(['contact', ['5']])
      expect(routeOf('application/json', method), method).toEqual(['contact', ['5']])
    }
    // A route that takes the method itself comes first (this config has one for DELETE).
    expect(routeOf(undefined, 'DELETE')).toEqual(['delete', ['5']])
    expect(routeOf('application/x-www-form-urlencoded', 'POST', '/api/batch')).toEqual(['batch', null])
    expect(routeOf('application/x-www-form-urlencoded', 'POST', '/api/lookup?id=3')).toEqual(['lookup', ['3']])
  })

  it('the table covers every kind of classification', () => {
    const kinds = new Set(TABLE.map((r) => classifyRow(r).kind))
    expect([...kinds].sort()).toEqual(['rejected', 'routed', 'unrouted'])
    const routes = new Set(TABLE.map((r) => classifyRow(r)).flatMap((c) => (c.kind === 'routed' ? [c.route.name] : [])))
    expect([...routes].sort()).toEqual(['batch', 'contact', 'delete', 'files', 'list', 'lookup', 'nested'])
    expect(
      TABLE.some((r) => {
        const c = classifyRow(r)
        return c.kind === 'routed' && c.clamped !== null
      }),
    ).toBe(true)
  })
})
