import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { request } from 'node:http'
import { startLegacyApp, contactById, type LegacyApp, type Contact } from '../../src/demo/legacy-app.js'

let app: LegacyApp
let cookie: string // alice's session

const basic = (user: string, password: string) => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64')
const get = (path: string, headers: Record<string, string> = {}) =>
  fetch(app.url + path, { headers: { cookie, ...headers } })
const postJson = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(app.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie, ...headers },
    body: JSON.stringify(body),
  })
const sessionCookie = (res: Response) => /^(JSESSIONID=[0-9a-f]{32});/.exec(res.headers.get('set-cookie') ?? '')?.[1]

/** fetch normalizes `..` and some escapes; this sends the path exactly as written. */
function rawGet(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(app.url + '/', { path, headers: { cookie, ...headers } }, (res) => {
      let body = ''
      res
        .setEncoding('utf8')
        .on('data', (c: string) => (body += c))
        .on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject).end()
  })
}

beforeAll(async () => {
  app = await startLegacyApp({ port: 0 })
  const res = await fetch(app.url + '/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'alice', password: 'alice-pw' }),
  })
  cookie = sessionCookie(res) ?? ''
})
afterAll(() => app.close())

describe('login and authentication', () => {
  it('logs in with a form, redirecting to / with a fresh HttpOnly session cookie', async () => {
    const form = () =>
      fetch(app.url + '/login', {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'username=bob&password=bob-pw',
      })
    const first = await form()
    expect(first.status).toBe(303)
    expect(first.headers.get('location')).toBe('/')
    expect(first.headers.get('set-cookie')).toMatch(/^JSESSIONID=[0-9a-f]{32}; Path=\/; HttpOnly$/)
    const second = await form()
    expect(sessionCookie(second)).not.toBe(sessionCookie(first))
  })

  it('logs in with JSON', async () => {
    const res = await postJson('/login', { username: 'alice', password: 'alice-pw' }, { cookie: '' })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ ok: true, user: 'alice' })
    expect(sessionCookie(res)).toBeDefined()
  })

  it('rejects a wrong password with 401 and no cookie', async () => {
    const res = await postJson('/login', { username: 'alice', password: 'nope' }, { cookie: '' })
    expect(res.status).toBe(401)
    expect(await res.json()).toEqual({ error: 'invalid credentials' })
    expect(res.headers.get('set-cookie')).toBeNull()
  })

  it('accepts a session cookie or HTTP Basic, and nothing else', async () => {
    expect(cookie).toMatch(/^JSESSIONID=[0-9a-f]{32}$/)
    expect((await get('/api/contacts/1')).status).toBe(200)
    expect((await get('/api/contacts/1', { cookie: '', authorization: basic('mallory', 'mallory-pw') })).status).toBe(
      200,
    )
    expect((await get('/api/contacts/1', { cookie: '', authorization: basic('mallory', 'wrong') })).status).toBe(401)
    expect((await get('/api/contacts/1', { cookie: 'JSESSIONID=' + '0'.repeat(32) })).status).toBe(401)
    const none = await get('/api/contacts/1', { cookie: '', 'x-account-id': 'alice' })
    expect(none.status).toBe(401)
    expect(await none.json()).toEqual({ error: 'authentication required' })
  })

  it('forgets a session on logout', async () => {
    const login = await postJson('/login', { username: 'bob', password: 'bob-pw' }, { cookie: '' })
    const bob = sessionCookie(login) ?? ''
    expect((await get('/api/contacts/2', { cookie: bob })).status).toBe(200)
    expect((await fetch(app.url + '/logout', { method: 'POST', headers: { cookie: bob } })).status).toBe(204)
    expect((await get('/api/contacts/2', { cookie: bob })).status).toBe(401)
  })
})

describe('contacts API', () => {
  it('returns a contact by id, the same one contactById gives', async () => {
    const res = await get('/api/contacts/5')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await res.json()).toEqual(contactById(5))
  })

  it('answers 404 for a missing contact and 400 for an id that is not an integer', async () => {
    expect((await get('/api/contacts/1001')).status).toBe(404)
    expect((await get('/api/contacts/0')).status).toBe(404)
    expect((await get('/api/contacts/abc')).status).toBe(400)
    expect((await get('/api/contacts/5.5')).status).toBe(400)
  })

  it('reads ids as laxly as old parsers do', async () => {
    for (const id of ['05', '5.0', '5e0'])
      expect(await (await get('/api/contacts/' + id)).json()).toEqual(contactById(5))
  })

  it('pages through the list', async () => {
    const body = (await (await get('/api/contacts?page=2&pageSize=50')).json()) as {
      items: Contact[]
      page: number
      pageSize: number
      total: number
    }
    expect(body.items.map((c) => c.id)).toEqual(Array.from({ length: 50 }, (_, i) => 51 + i))
    expect(body).toMatchObject({ page: 2, pageSize: 50, total: 1000 })
    const first = (await (await get('/api/contacts')).json()) as { items: Contact[]; pageSize: number }
    expect(first.pageSize).toBe(20)
    expect(first.items[0]).toEqual(contactById(1))
    expect((await get('/api/contacts?page=0')).status).toBe(400)
  })

  it('does not cap pageSize', async () => {
    const body = (await (await get('/api/contacts?pageSize=1000')).json()) as { items: Contact[] }
    expect(body.items).toHaveLength(1000)
    expect(body.items[999]?.id).toBe(1000)
    const huge = (await (await get('/api/contacts?PAGESIZE=100000')).json()) as { items: Contact[] }
    expect(huge.items).toHaveLength(1000)
  })

  it('looks up a batch of ids', async () => {
    const body = (await (await get('/api/contacts?ids=3,1,2,5000')).json()) as { items: Contact[] }
    expect(body.items).toEqual([contactById(3), contactById(1), contactById(2)])
  })

  it('searches by ids or by name', async () => {
    const byIds = (await (await postJson('/api/contacts/search', { ids: [7, 8] })).json()) as { items: Contact[] }
    expect(byIds.items).toEqual([contactById(7), contactById(8)])
    const name = contactById(9)?.name.split(' ')[1] ?? ''
    const byName = (await (await postJson('/api/contacts/search', { name: name.toUpperCase() })).json()) as {
      items: Contact[]
    }
    expect(byName.items.length).toBeGreaterThan(0)
    expect(byName.items.every((c) => c.name.includes(name))).toBe(true)
    expect(byName.items.map((c) => c.id)).toContain(9)
    expect((await postJson('/api/contacts/search', { colour: 'red' })).status).toBe(400)
    expect((await postJson('/api/contacts/search', { ids: [1] }, { cookie: '' })).status).toBe(401)
  })

  it('answers HEAD without a body', async () => {
    const res = await fetch(app.url + '/api/contacts/5', { method: 'HEAD', headers: { cookie } })
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('')
  })
})

describe('legacy parsing', () => {
  it('matches paths case-insensitively, ignoring ;matrix params, trailing slashes and escapes other than %2F', async () => {
    for (const path of [
      '/API/Contacts/5',
      '/api/contacts/5/',
      '/api/contacts;jsessionid=abc/5',
      '/api/contacts/5;jsessionid=abc',
      '/api/cont%61cts/5',
      '/api//contacts/./x/../5',
    ]) {
      const res = await rawGet(path)
      expect(res.status, path).toBe(200)
      expect(JSON.parse(res.body), path).toEqual(contactById(5))
    }
    expect((await rawGet('/api%2Fcontacts/5')).status).toBe(404)
    expect((await rawGet('/api/contacts%2F5')).status).toBe(404)
  })

  it('treats query parameter names case-insensitively', async () => {
    const body = (await (await get('/api/contacts?Page=3&PageSize=10')).json()) as { items: Contact[] }
    expect(body.items[0]?.id).toBe(21)
  })

  it('honours X-HTTP-Method-Override on POST', async () => {
    const res = await fetch(app.url + '/api/contacts?page=1&pageSize=2', {
      method: 'POST',
      headers: { cookie, 'x-http-method-override': 'get' },
    })
    expect(res.status).toBe(200)
    expect(((await res.json()) as { items: Contact[] }).items.map((c) => c.id)).toEqual([1, 2])
  })

  it('answers bad input with 4xx, never crashing', async () => {
    expect(await postJson('/login', undefined, { 'content-type': 'application/json' }).then((r) => r.status)).toBe(400)
    expect(
      (
        await fetch(app.url + '/api/contacts/search', {
          method: 'POST',
          headers: { cookie, 'content-type': 'application/json' },
          body: '{"ids": [1,',
        })
      ).status,
    ).toBe(400)
    expect((await fetch(app.url + '/login', { method: 'POST', body: Buffer.alloc(2 * 1024 * 1024, 'a') })).status).toBe(
      413,
    )
    expect((await rawGet('/api/contacts/%zz')).status).toBe(400)
    expect((await rawGet('/api/contacts?page=%E0%A4%A')).status).toBe(400)
    expect((await get('/nowhere')).status).toBe(404)
    expect((await fetch(app.url + '/api/contacts/1', { method: 'DELETE', headers: { cookie } })).status).toBe(405)
    expect((await get('/health')).status).toBe(200)
  })

  it('serves the home page and health check', async () => {
    const home = await fetch(app.url + '/')
    expect(home.headers.get('content-type')).toMatch(/^text\/html/)
    const html = await home.text()
    expect(html).toContain('<title>Acme Post — Address book</title>')
    expect(html).toContain('action="/login"')
    expect(html).toContain('/api/contacts')
    expect(await (await fetch(app.url + '/health')).text()).toBe('ok')
  })
})

describe('recording and data', () => {
  it('records every request as received, before handling it', async () => {
    app.clear()
    expect(app.received).toEqual([])
    await rawGet('/API/contacts;jsessionid=x/%zz?A=1', { 'x-test': 'yes' })
    await fetch(app.url + '/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{bad' })
    expect(app.received.map((r) => [r.method, r.url])).toEqual([
      ['GET', '/API/contacts;jsessionid=x/%zz?A=1'],
      ['POST', '/login'],
    ])
    expect(app.received[0]?.headers['x-test']).toBe('yes')
  })

  it('generates the same plausible contacts every time, independent of the app size', async () => {
    const c = contactById(5) as Contact
    expect(contactById(5)).toEqual(c)
    expect(c.id).toBe(5)
    expect(c.name).toMatch(/^[A-Z][a-z]+ [A-Z][a-z]+$/)
    expect(c.email).toMatch(/^[a-z]+\.[a-z]+5@example\.(com|org|net)$/)
    expect(c.phone).toMatch(/^\+44 7700 900\d{3}$/)
    expect(c.street).toMatch(/^\d+ [A-Z]/)
    expect(c.postcode).toMatch(/^[A-Z]{1,2}\d+ \d[A-Z]{2}$/)
    expect(contactById(0)).toBeUndefined()
    expect(contactById(1.5)).toBeUndefined()
    expect(new Set(Array.from({ length: 50 }, (_, i) => contactById(i + 1)?.name)).size).toBeGreaterThan(20)
    const small = await startLegacyApp({ contacts: 10, users: { zed: 'z' } })
    try {
      const res = await fetch(small.url + '/api/contacts?pageSize=100', {
        headers: { authorization: basic('zed', 'z') },
      })
      const body = (await res.json()) as { items: Contact[]; total: number }
      expect(body.total).toBe(10)
      expect(body.items[4]).toEqual(c)
      expect(
        (await fetch(small.url + '/api/contacts/1', { headers: { authorization: basic('alice', 'alice-pw') } })).status,
      ).toBe(401)
    } finally {
      await small.close()
    }
  })
})
