// The parser differentials of issue 13, against an upstream that reads requests the way
// servlets, PHP and Express do (test/helpers/lax-legacy.ts). The differential is the bug, so
// every test asks the upstream itself what it served.
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLaxLegacy, servedTo, USERS, type LaxLegacy } from '../helpers/lax-legacy.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'

const CONFIG = `
version: 1
upstream: { url: UPSTREAM, timeout: 5s }
store: { type: memory, maxAccounts: 40 }
identity:
  - { type: cookie, name: JSESSIONID }
  - { type: basic, secret: test-identity-secret-0123456789 }
sessions:
  login: { path: /login, usernameField: username, cookie: JSESSIONID }
  logout: { path: /logout }
routes:
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 10m, distinctRecords: 5, action: throttle }
      - { window: 10m, distinctRecords: 8, action: disable }
  - name: lookup
    methods: [GET]
    path: /api/contacts
    records: { query: id, split: "," }
    clampQuery: { pageSize: 10, _limit: 10 }
    limits:
      - { window: 10m, distinctRecords: 5, action: throttle }
      - { window: 10m, distinctRecords: 8, action: disable }
  - name: find
    path: /api/find
    records: { query: id, split: "," }
    limits: [ { window: 10m, distinctRecords: 5, action: throttle } ]
  - name: batch
    methods: [POST]
    path: /api/contacts/batch
    records: { body: "$.ids" }
    limits: [ { window: 10m, distinctRecords: 5, action: throttle } ]
  - name: export
    methods: [GET]
    path: /api/export
    records: { response: "$.items[*].id" }
    limits: [ { window: 10m, distinctRecords: 10, action: throttle } ]
`

const BIG = (i: number) => `12345678901234567${800 + i}` // 20 digits: JSON.parse rounds them together
let app: LaxLegacy
let proxy: RunningProxy
const pages: string[] = []

beforeAll(async () => {
  app = await startLaxLegacy({ pageItems: (page) => pages[page] ?? '{"items":[]}' })
  proxy = await startProxy(CONFIG, { upstream: app.url })
})
afterAll(async () => {
  await proxy?.close()
  await app?.close()
})

const basic = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
})
async function get(path: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await fetch(`${proxy.url}${path}`, { headers })
  await res.arrayBuffer()
  return res.status
}
async function post(
  path: string,
  body: string | Buffer,
  type: string,
  headers: Record<string, string> = {},
): Promise<number> {
  const res = await fetch(`${proxy.url}${path}`, {
    method: 'POST',
    body: typeof body === 'string' ? body : new Uint8Array(body),
    headers: { 'content-type': type, ...headers },
    redirect: 'manual',
  })
  await res.arrayBuffer()
  return res.status
}
async function login(query: string, body: string): Promise<string | undefined> {
  const res = await fetch(`${proxy.url}/login${query}`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  })
  await res.arrayBuffer()
  return /JSESSIONID=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1]
}

describe('query keys as qs, PHP and servlets read them', () => {
  it('every spelling of the record key counts: the upstream serves at most the limit', async () => {
    const who = basic('bob', USERS.bob as string)
    const spellings = [
      'id=1',
      'id=2',
      'ID=3',
      '[id]=4',
      '%5Bid%5D=5',
      '[id][]=6',
      'id[0]=7',
      'Id[]=8',
      'x=1;id=9',
      '%20id=10',
      'id%00x=11',
    ]
    const statuses = []
    for (const s of spellings) statuses.push(await get(`/api/contacts?${s}`, who))
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200])
    expect(statuses.slice(5).every((s) => s === 429)).toBe(true)
    expect(servedTo(app, 'bob')).toBe(5)
  })

  it('clampQuery holds for every spelling of the key', async () => {
    for (const q of [
      '[_limit]=1000',
      '_LIMIT=1000',
      '_limit[]=1000',
      'x=1;pageSize=1000',
      '%5BpageSize%5D=1000',
      'pageSize=1e3',
      'pagesize=+1000',
      '[pageSize][]=1000',
    ]) {
      expect(await get(`/api/contacts?${q}`)).toBe(200)
      expect(app.largestPage).toBeLessThanOrEqual(10)
    }
  })
})

describe('bodies as the upstream may read them', () => {
  it('JSON sent as a form, bracket-keyed forms and long ids all count', async () => {
    const ids = (n: number) => Array.from({ length: n }, (_, i) => 100 + i)
    // JSON labelled as a form (PHP reads php://input as JSON whatever the type).
    expect(
      await post(
        '/api/contacts/batch',
        JSON.stringify({ ids: ids(6) }),
        'application/x-www-form-urlencoded',
        basic('alice', USERS.alice as string),
      ),
    ).toBe(429)
    // Extended form keys: [ids][]=…
    expect(
      await post(
        '/api/contacts/batch',
        ids(6)
          .map((i) => `[ids][]=${i}`)
          .join('&'),
        'application/x-www-form-urlencoded',
        basic('alice', USERS.alice as string),
      ),
    ).toBe(429)
    // Six distinct 20-digit ids that JSON.parse rounds to one or two.
    expect(
      await post(
        '/api/contacts/batch',
        `{"ids":[${[1, 2, 3, 4, 5, 6].map(BIG).join(',')}]}`,
        'application/json',
        basic('alice', USERS.alice as string),
      ),
    ).toBe(429)
    // Duplicate keys: the upstream may read either member.
    expect(
      await post(
        '/api/contacts/batch',
        '{"ids":[1,2,3],"ids":[4,5,6]}',
        'application/json',
        basic('alice', USERS.alice as string),
      ),
    ).toBe(429)
    expect(servedTo(app, 'alice')).toBe(0)
  })

  it('lenient JSON (Gson, Json.NET) counts whatever the type: a form-typed {ids:[…]} is not zero ids', async () => {
    const who = basic('carol', USERS.carol as string)
    let next = 400
    const six = () => Array.from({ length: 6 }, () => next++)
    const FORM = 'application/x-www-form-urlencoded'
    for (const body of [
      `{ids:[${six().join(',')}]}`,
      `{'ids':[${six().join(';')}]}`,
      `{ids=>[${six().join(',')}]} // sent by a jQuery page`,
    ])
      expect(await post('/api/contacts/batch', body, FORM, who), body).toBe(429)
    expect(servedTo(app, 'carol')).toBe(0)
  })

  it("a query record's key in a body counts, as servlets, PHP and ASP.NET take it from there too", async () => {
    const who = basic('dave', USERS.dave as string)
    const FORM = 'application/x-www-form-urlencoded'
    // Three in the query, three more in a form body: six ids, over the limit of five.
    expect(await post('/api/find?id=601,602,603', 'id=604&ID=605,606', FORM, who)).toBe(429)
    expect(await post('/api/find', '{"id":[611,612,613,614,615,616]}', 'application/json', who)).toBe(429)
    expect(await post('/api/find', 'id[]=621&id[]=622&[id]=623,624,625,626', FORM, who)).toBe(429)
    // Within the limit: served, and exactly those counted.
    expect(await post('/api/find?id=631', 'id=632,633', FORM, who)).toBe(200)
    expect(await post('/api/find', 'id=634&id=635&id=636', FORM, who)).toBe(429) // 6 > 5
    // A body that is no form or JSON names no ids; the query's still count.
    expect(await post('/api/find?id=634', '\u0000\u0001binary', 'application/octet-stream', who)).toBe(200)
    expect(servedTo(app, 'dave')).toBe(4)
    // Large bodies: an upload of another type is not read; a multipart form past 4 MB keeps its
    // upload (the query's ids count); a form past 4 MB cannot be counted: 413.
    const big = 'x'.repeat(5 * 1024 * 1024)
    expect(await post('/api/find?id=631', big, 'image/png', who)).toBe(200)
    const boundary = 'b0undary'
    const multipart = `--${boundary}\r\nContent-Disposition: form-data; name="photo"; filename="a.png"\r\n\r\n${big}\r\n--${boundary}--\r\n`
    expect(await post('/api/find?id=631', multipart, `multipart/form-data; boundary=${boundary}`, who)).toBe(200)
    expect(await post('/api/find?id=631', `id=632&pad=${big}`, FORM, who)).toBe(413)
  })

  it('a multipart body counts as commons-fileupload (any multipart/*) and Struts 2 (a type containing multipart/form-data) read it', async () => {
    const who = basic('bob', USERS.bob as string)
    const before = servedTo(app, 'bob')
    const parts = (b: string, ids: number[]) =>
      `${ids.map((id) => `--${b}\r\nContent-Disposition: form-data; name=id\r\n\r\n${id}\r\n`).join('')}--${b}--\r\n`
    expect(await post('/api/find', parts('m1', [641, 642, 643]), 'multipart/mixed; boundary=m1', who)).toBe(200)
    expect(await post('/api/find', parts('m2', [644, 645, 646]), 'multipart/related; boundary=m2', who)).toBe(429)
    const struts = 'text/plain; boundary=m3; x=multipart/form-data'
    expect(await post('/api/find', parts('m3', [647, 648, 649]), struts, who)).toBe(429)
    expect(
      await post('/api/find', parts('m4', [650, 651, 652]), 'multipart/form-data; boundary=zz; boundary=m4', who),
    ).toBe(429)
    expect(servedTo(app, 'bob') - before).toBe(3)
  })

  it('a compressed body counts as the servers that inflate it read it; a coding no reader here knows is refused', async () => {
    const who = basic('carol', USERS.carol as string)
    let next = 500
    const form = () => Array.from({ length: 6 }, () => `ids=${next++}`).join('&')
    const FORM = 'application/x-www-form-urlencoded'
    expect(await post('/api/contacts/batch', gzipSync(form()), FORM, { ...who, 'content-encoding': 'gzip' })).toBe(429)
    expect(
      await post('/api/contacts/batch', gzipSync(JSON.stringify({ ids: [1, 2, 3, 4, 5, 6] })), 'application/json', {
        ...who,
        'content-encoding': 'GZIP',
      }),
    ).toBe(429)
    expect(await post('/api/contacts/batch', form(), FORM, { ...who, 'content-encoding': 'zstd' })).toBe(415)
    // Past maxInspectBytes once inflated: too large to count.
    const bomb = gzipSync(Buffer.from(`ids=1&x=${'0'.repeat(6 * 1024 * 1024)}`))
    expect(await post('/api/contacts/batch', bomb, FORM, { ...who, 'content-encoding': 'gzip' })).toBe(413)
    // Not what it says: read as sent (no server can inflate it either).
    expect(await post('/api/contacts/batch', 'ids=1', FORM, { ...who, 'content-encoding': 'gzip' })).toBe(200)
    expect(servedTo(app, 'carol')).toBe(1)
  })

  it('a body in another charset counts as the servers that honour it read it; one no reader here knows is refused', async () => {
    const who = basic('carol', USERS.carol as string)
    let next = 300
    const form = (key = 'ids') => Array.from({ length: 6 }, () => `${key}=${next++}`).join('&') // 6 new ids: over the limit of 5
    const utf16be = (text: string) => Buffer.from(text, 'utf16le').swap16()
    const FORM = 'application/x-www-form-urlencoded'
    const attempts: [string, string | Buffer, string][] = [
      [
        'UTF-16LE with its byte-order mark, no charset',
        Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(form(), 'utf16le')]),
        FORM,
      ],
      ['UTF-16 big-endian, no mark (Java reads `UTF-16` so)', utf16be(form()), `${FORM}; charset=UTF-16`],
      ['UTF-16LE', Buffer.from(form(), 'utf16le'), `${FORM}; charset="utf-16le"`],
      ['ISO-2022-JP, an escape sequence inside the name', form('i%1B%28Bds'), `${FORM}; charset=ISO-2022-JP`],
      ['ISO-2022-JP, a raw escape sequence', Buffer.from(form('i\x1b(Bds'), 'latin1'), `${FORM}; charset=iso-2022-jp`],
      [
        'JSON in ISO-2022-JP',
        Buffer.from(`{"i\x1b(Bds":[${form().replace(/ids=/g, '').replace(/&/g, ',')}]}`, 'latin1'),
        'application/json; charset=ISO-2022-JP',
      ],
      ["Java's name of Latin-1", form(), `${FORM}; charset=ISO8859_1`],
    ]
    for (const [what, body, type] of attempts)
      expect(await post('/api/contacts/batch', body, type, who), what).toBe(429)
    // UTF-32: Java reads it, no reader here does: refused as uninspectable, never passed uncounted.
    const utf32 = Buffer.alloc(form().length * 4)
    ;[...form()].forEach((c, i) => utf32.writeUInt32BE(c.charCodeAt(0), i * 4))
    expect(await post('/api/contacts/batch', utf32, `${FORM}; charset=UTF-32`, who)).toBe(415)
    // The same where a query record's key is read in the body (an unreadable body there is
    // otherwise no ids): PHP ignores a charset it does not know and reads `id=` all the same.
    expect(await post('/api/find', utf32, `${FORM}; charset=UTF-32`, who)).toBe(415)
    expect(await post('/api/find', 'id=701,702,703,704,705,706', `${FORM}; charset=bogus`, who)).toBe(415)
    expect(servedTo(app, 'carol')).toBe(1)
  })

  it('long ids and duplicate keys in an answer are counted from the text', async () => {
    pages[0] = `{"items":[${[0, 1, 2, 3, 4, 5, 6, 7].map((i) => `{"id":${BIG(i)}}`).join(',')}],"items":[]}`
    pages[1] = `{"items":[],"items":[${[8, 9, 10, 11].map((i) => `{"id":${BIG(i)}}`).join(',')}]}`
    const who = { cookie: 'JSESSIONID=exporter-1' }
    expect(await get('/api/export?page=0', who)).toBe(200) // 8 records
    expect(await get('/api/export?page=1', who)).toBe(429) // 12 > 10: withheld whole
  })
})

describe('logins and sessions', () => {
  it('a servlet-style login naming two users binds neither; the scraping never lands on alice', async () => {
    // Mallory's credentials, with alice in the body and mallory in the query (a servlet reads the query).
    const sid = await login('?username=mallory', `username=alice&password=${USERS.mallory}`)
    expect(sid).toBeDefined()
    expect(app.sessions.get(sid as string)).toBe('mallory')
    for (let id = 200; id < 210; id++) await get(`/api/contacts/${id}`, { cookie: `JSESSIONID=${sid}` })
    expect(servedTo(app, 'mallory')).toBe(5)
    // Alice is untouched.
    const alice = await login('', `username=alice&password=${USERS.alice}`)
    expect(await get('/api/contacts/1', { cookie: `JSESSIONID=${alice}` })).toBe(200)
    expect(proxy.logs.some((l) => l.event === 'sluice.session' && l.outcome === 'ambiguous')).toBe(true)
  })

  it('a login with the user name only in the query binds; spellings of the user share one budget', async () => {
    const first = await login(`?username=BOB&password=${USERS.bob}`, '')
    const second = await login('', `username=%20bob&password=${USERS.bob}`)
    expect(
      proxy.logs.filter((l) => l.event === 'sluice.session' && l.outcome === 'bound' && l.account === 'user:bob')
        .length,
    ).toBeGreaterThanOrEqual(2)
    // bob spent 5 in the first test (Basic): the user's session budget is separate from basic:, so count here afresh.
    const statuses = []
    for (let id = 300; id < 306; id++)
      statuses.push(await get(`/api/contacts/${id}`, { cookie: `JSESSIONID=${id % 2 ? first : second}` }))
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429])
  })

  it('cookie spellings, URL sessions and an ignored logout give no fresh budget', async () => {
    const sid = (await login('', `username=mallory&password=${USERS.mallory}`)) as string
    // mallory (user:mallory) is bound; spend the budget.
    for (let id = 400; id < 405; id++)
      expect(await get(`/api/contacts/${id}`, { cookie: `JSESSIONID=${sid}` })).toBe(200)
    const encoded = [...sid].map((c) => `%${c.charCodeAt(0).toString(16)}`).join('')
    expect(await get('/api/contacts/405', { cookie: `JSESSIONID=${encoded}` })).toBe(429)
    expect(await get('/api/contacts/406', { cookie: `jsessionid=${sid}` })).toBe(429)
    expect(await get(`/api/contacts/407;jsessionid=${sid}`)).toBe(429)
    expect(await post('/logout', '', 'text/plain', { cookie: `JSESSIONID=${sid}` })).toBe(200)
    expect(await get('/api/contacts/408', { cookie: `JSESSIONID=${sid}` })).toBe(429)
  })

  it("a session cookie as Tomcat's legacy parser reads it is that session: no fresh identity per spelling", async () => {
    // Through Tomcat 8.0 (and in GlassFish, ASP.NET Core) `,` separates cookies and a value
    // ends at its first separator, so every spelling below is carol's session to the app.
    const sid = (await login('', `username=carol&password=${USERS.carol}`)) as string
    const before = servedTo(app, 'carol')
    const spellings = [
      `JSESSIONID=${sid}, n=1`,
      `JSESSIONID=${sid},2`,
      `theme=dark, JSESSIONID=${sid}`,
      `JSESSIONID=${sid} 4`,
      `JSESSIONID=${sid}=5`,
      `JSESSIONID="${sid}"6`,
      `JSESSIONID=${sid}:7`,
      `JSESSIONID=${sid}(8)`,
    ]
    const statuses = []
    for (const [i, cookie] of spellings.entries()) statuses.push(await get(`/api/contacts/${500 + i}`, { cookie }))
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429])
    expect(servedTo(app, 'carol') - before).toBe(5)
  })

  it('Basic users are one account however the name is spelled', async () => {
    const statuses = []
    for (const [i, u] of ['carol', 'CAROL', ' carol', 'ｃａｒｏｌ', 'Carol', 'carol'].entries())
      statuses.push(await get(`/api/contacts/${500 + i}`, basic(u, 'any-password')))
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429])
  })
})

describe('store churn through the proxy', () => {
  it('hundreds of fresh identities answered by sluice itself neither reset nor unlock a disabled account', async () => {
    const victim = basic('alice', USERS.alice as string)
    expect(await get(`/api/contacts?id=${[1, 2, 3, 4, 5, 6, 7, 8, 9].join(',')}`, victim)).toBe(403)
    expect(await get('/api/contacts/600', victim)).toBe(403)
    for (let i = 0; i < 300; i++)
      await get(`/api/contacts?id=${[1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => n + i * 10).join(',')}`, {
        cookie: `JSESSIONID=flood-${i}`,
      })
    expect(await get('/api/contacts/1', victim)).toBe(403)
  })
})

describe('one request must not stall everyone', () => {
  it('a body naming more ids than records.maxIds is refused (413) and others are served meanwhile', async () => {
    const huge = `{"ids":[${Array.from({ length: 200_000 }, (_, i) => i).join(',')}]}`
    // (bob is tracked: newcomers would share the disabled overflow key of the flood above.)
    const [big, other] = await Promise.all([
      post('/api/contacts/batch', huge, 'application/json'),
      get('/api/contacts/700', basic('bob', USERS.bob as string)),
    ])
    expect(big).toBe(413)
    expect(other).toBe(200)
    // Read in two charsets, or compressed and decompressed: the same answer, not a crash.
    expect(await post('/api/contacts/batch', huge, 'application/json; charset=iso-8859-1')).toBe(413)
    expect(await post('/api/contacts/batch', gzipSync(huge), 'application/json', { 'content-encoding': 'gzip' })).toBe(
      413,
    )
  })
})
