// "Why was this account blocked?": every block answer carries a reference (body, page,
// Sluice-Reference header) that GET /decisions/REF and `sluice incidents show REF` explain;
// incidents are grouped per episode; `accounts find` and `accounts show` name what acted; the
// block page says when to come back and never which limit or how close.
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { registerAccounts } from '../../src/cli/accounts.js'
import { call, TOKEN } from '../admin/helpers.js'
import { runCommand } from '../helpers/cli.js'
import { basic, send } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const CONFIG = `
version: 1
upstream: { url: UPSTREAM, timeout: 5s }
identity: [ { type: header, name: x-user, trusted: true }, { type: basic } ]
admin: { listen: { port: 0 }, token: ${TOKEN}, decisionsKept: 1h }
actions:
  disable: { duration: 2h }
  page:
    title: "Post <Portal> & Co"
    message: "Automated access is not allowed."
    contact: "Questions? support@post.example, +41 58 000 00 00"
    language: de-CH
routes:
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 1m, distinctRecords: 3, action: throttle }
  - name: invoice
    methods: [GET]
    path: /api/invoices/:id
    records: { param: id }
    limits:
      - { window: 10m, distinctRecords: 2, action: disable }
`

let upstream: Upstream
let proxy: RunningProxy
let admin: FastifyInstance
let adminUrl: string

const as = (user: string, path: string, accept = 'application/json') =>
  send(proxy.url, path, { headers: { 'x-user': user, accept } })
const cli = (args: string[]) => runCommand(registerAccounts, [...args, '--url', adminUrl, '--token', TOKEN])

beforeAll(async () => {
  upstream = await startUpstream()
  proxy = await startProxy(CONFIG, { upstream: upstream.url })
  admin = (await proxy.app.sluice.runtime.startAdmin(async () => ({ ok: true }))) as FastifyInstance
  const address = admin.server.address() as { port: number }
  adminUrl = `http://127.0.0.1:${address.port}`
})
afterAll(async () => {
  await admin.close()
  await proxy.close()
  await upstream.close()
})

describe('references', () => {
  it('a throttle carries one reference in body and header, and GET /decisions/REF explains it', async () => {
    for (const id of [1, 2, 3]) expect((await as('alice', `/api/contacts/${id}`)).status).toBe(200)
    const blocked = await as('alice', '/api/contacts/4')
    expect(blocked.status).toBe(429)
    const body = JSON.parse(blocked.body)
    const ref = blocked.headers['sluice-reference'] as string
    expect(ref).toMatch(/^[0-9A-HJKMNP-TV-Z]{10}$/)
    expect(body.reference).toBe(ref)
    // The log line and the incident carry it too.
    expect(proxy.decisions().at(-1)?.reference).toBe(ref)

    const d = await call(adminUrl, 'GET', `/decisions/${ref}`)
    expect(d.status).toBe(200)
    expect(d.json).toMatchObject({
      reference: ref,
      account: 'header:alice',
      route: 'contact',
      decision: 'throttle',
      blocked: true,
      shadow: false,
      action: 'throttle',
      limit: { id: 'contact#0', kind: 'distinctRecords', per: 'account', window: '1m', max: 3, action: 'throttle' },
      retryAfter: 30,
      method: 'GET',
      step: 'request',
    })
    expect(d.json.counts[0]).toMatchObject({ id: 'contact#0', window: '1m', max: 3 })
    expect(d.json.counts[0].count).toBeGreaterThanOrEqual(3)
    expect(d.json.instance).toContain(`:${process.pid}`)
    expect(Date.parse(d.json.time)).toBeGreaterThan(Date.now() - 60_000)
    // Typed by a person: lower case is fine.
    expect((await call(adminUrl, 'GET', `/decisions/${ref.toLowerCase()}`)).json.reference).toBe(ref)

    // `sluice incidents show REF` explains the same decision.
    const shown = await cli(['incidents', 'show', ref])
    expect(shown.code).toBe(0)
    expect(shown.stdout).toContain(ref)
    expect(shown.stdout).toContain('header:alice')
    expect(shown.stdout).toContain('1m distinctRecords 3 → throttle')
    expect(shown.stdout).toMatch(/retry after\s+30 s/)
    const json = await cli(['incidents', 'show', ref, '--json'])
    expect(JSON.parse(json.stdout)).toEqual(d.json)
  })

  it('an unknown or malformed reference is a 404 / 400 that says why', async () => {
    const unknown = await call(adminUrl, 'GET', '/decisions/0000000000')
    expect(unknown.status).toBe(404)
    expect(unknown.json.code).toBe('SLUICE_ERR_ADMIN_NOT_FOUND')
    expect(unknown.json.detail).toMatch(/decisionsKept/)
    expect((await call(adminUrl, 'GET', '/decisions/nope')).status).toBe(400)
    expect((await call(adminUrl, 'GET', '/decisions/0000000000', null)).status).toBe(401)
    const shown = await cli(['incidents', 'show', '0000000000'])
    expect(shown.code).toBe(1)
    expect(shown.stderr).toMatch(/no decision with reference 0000000000/)
  })

  it('the HTML page shows the reference, the operator text (escaped) and never the limit or counts', async () => {
    for (const id of [1, 2, 3]) await as('carol', `/api/contacts/${id}`)
    const page = await as('carol', '/api/contacts/4', 'text/html')
    expect(page.status).toBe(429)
    const ref = page.headers['sluice-reference'] as string
    expect(ref).toMatch(/^[0-9A-Z]{10}$/)
    expect(page.body).toContain(ref)
    expect(page.body).toContain('lang="de-CH"')
    expect(page.body).toContain('Post &#60;Portal&#62; &#38; Co')
    expect(page.body).not.toContain('<Portal>')
    expect(page.body).toContain('Automated access is not allowed.')
    expect(page.body).toContain('support@post.example')
    expect(page.body).toMatch(/Try again in 30 seconds/)
    for (const secret of ['distinctRecords', '1m', 'contact#0', '→', 'throttle', '>3<', ' 3 ', '4/3'])
      expect(page.body).not.toContain(secret)
    const d = await call(adminUrl, 'GET', `/decisions/${ref}`)
    expect(d.json.account).toBe('header:carol')
  })

  it('a disable: 403 with reference and the end; accounts show names the disabling limit and the decisions', async () => {
    expect((await as('dave', '/api/invoices/1')).status).toBe(200)
    expect((await as('dave', '/api/invoices/2')).status).toBe(200)
    const disabling = await as('dave', '/api/invoices/3')
    expect(disabling.status).toBe(403)
    const ref = disabling.headers['sluice-reference'] as string
    const body = JSON.parse(disabling.body)
    expect(body.reference).toBe(ref)
    expect(Date.parse(body.disabledUntil)).toBeGreaterThan(Date.now() + 3_600_000)
    const page = await as('dave', '/api/contacts/1', 'text/html')
    expect(page.status).toBe(403)
    expect(page.body).toContain(page.headers['sluice-reference'] as string)
    expect(page.body).toMatch(/try again after \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/)
    expect(page.body).not.toContain('distinctRecords')

    const d = await call(adminUrl, 'GET', `/decisions/${ref}`)
    expect(d.json).toMatchObject({ decision: 'disable', limit: { id: 'invoice#0', max: 2, window: '10m' } })
    expect(d.json.disabledUntil).toBe(body.disabledUntil)
    const later = await call(adminUrl, 'GET', `/decisions/${page.headers['sluice-reference']}`)
    expect(later.json).toMatchObject({ decision: 'disabled', route: 'contact', disabledUntil: body.disabledUntil })

    const view = await call(adminUrl, 'GET', `/accounts/${encodeURIComponent('header:dave')}`)
    expect(view.json.disabled[0]).toMatchObject({
      mode: 'enforce',
      limit: '10m distinctRecords 2 → disable',
      reference: ref,
    })
    expect(view.json.decisions.map((x: { reference: string }) => x.reference)).toEqual([
      page.headers['sluice-reference'],
      ref,
    ])
    const shown = await cli(['accounts', 'show', 'header:dave'])
    expect(shown.code).toBe(0)
    expect(shown.stdout).toContain('by 10m distinctRecords 2 → disable since')
    expect(shown.stdout).toContain(ref)
    expect(shown.stdout).toMatch(/invoice\s+10m\s+account\s+distinct records\s+2\s+2/)
  })

  it('incidents are grouped: 12 blocked requests are one row with a count of 12', async () => {
    for (const id of [1, 2, 3]) await as('erin', `/api/contacts/${id}`)
    const refs: string[] = []
    for (let i = 0; i < 12; i++) {
      const r = await as('erin', `/api/contacts/${100 + i}`)
      expect(r.status).toBe(429)
      refs.push(r.headers['sluice-reference'] as string)
    }
    expect(new Set(refs).size).toBe(12)
    const list = await call(adminUrl, 'GET', `/incidents?account=${encodeURIComponent('header:erin')}`)
    expect(list.json.incidents).toHaveLength(1)
    const row = list.json.incidents[0]
    expect(row).toMatchObject({ account: 'header:erin', route: 'contact', action: 'throttle', count: 12 })
    expect(row.firstReference).toBe(refs[0])
    expect(row.reference).toBe(refs[11])
    expect(Date.parse(row.last)).toBeGreaterThanOrEqual(Date.parse(row.first))
    const table = await cli(['incidents', '--account', 'header:erin'])
    expect(table.code).toBe(0)
    const [head, first] = table.stdout.split('\n')
    expect(head).toMatch(/^FIRST \(UTC\)\s+LAST \(UTC\)\s+REQUESTS\s+ACCOUNT/)
    expect(first).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\s+\S+ \S+\s+12\s+header:erin\s+contact\s+throttle/)
  })

  it('accounts find: a Basic user is found by part of its name, any case', async () => {
    for (const id of [1, 2]) await send(proxy.url, `/api/contacts/${id}`, { headers: basic('pager') })
    const found = await call(adminUrl, 'GET', '/accounts?find=PAGER')
    expect(found.status).toBe(200)
    expect(found.json.accounts).toHaveLength(1)
    expect(found.json.accounts[0]).toMatch(/^basic:pager#[0-9a-f]{16}$/)
    const printed = await cli(['accounts', 'find', 'pag'])
    expect(printed.code).toBe(0)
    expect(printed.stdout.trim()).toBe(found.json.accounts[0])
    expect((await call(adminUrl, 'GET', '/accounts?find=nobody-here')).json.accounts).toEqual([])
    expect((await call(adminUrl, 'GET', '/accounts?find=x&by=requests')).status).toBe(400)
  })
})
