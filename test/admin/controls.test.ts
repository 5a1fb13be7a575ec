// Manual controls: POST /accounts/:account/disable and /enable, and `sluice accounts
// disable|enable` (the built bin) against a real admin listener in front of a proxy.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { AdminAction } from '../../src/admin/server.js'
import { buildAdmin } from '../../src/admin/server.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'
import { accountPath, adminConfig, call, policiesOf, readAs, TOKEN } from './helpers.js'

const BIN = join(import.meta.dirname, '../../bin/sluice.js')
const run = promisify(execFile)
const CONFIG = adminConfig({ disable: '1h' })

let upstream: Upstream
let proxy: RunningProxy
let admin: Awaited<ReturnType<typeof buildAdmin>>
let url: string
let now: number
let actions: AdminAction[]

beforeEach(async () => {
  now = Date.parse('2026-01-01T00:00:00Z')
  actions = []
  upstream = await startUpstream()
  proxy = await startProxy(CONFIG, { upstream: upstream.url, clock: () => now })
  admin = await buildAdmin({
    token: TOKEN,
    metrics: proxy.app.sluice.metrics,
    store: proxy.app.sluice.store,
    policies: policiesOf(CONFIG),
    clock: () => now,
    onAdminAction: (a) => actions.push(a),
  })
  url = await admin.listen({ host: '127.0.0.1', port: 0 })
})
afterEach(async () => {
  await admin.close()
  await proxy.close()
  await upstream.close()
})

const post = (path: string, body?: unknown) =>
  fetch(`${url}${path}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  }).then(async (r) => ({ status: r.status, json: (await r.json()) as Record<string, unknown> }))

describe('POST /accounts/:account/disable and /enable', () => {
  it('a manual disable answers 403 on every sensitive route until enabled; audited with its reason', async () => {
    expect(await readAs(proxy.url, 'alice', 'contacts', [1])).toEqual([200])
    const res = await post(accountPath('header:alice', '/disable'), { for: '24h', reason: 'ticket 42' })
    expect(res.status).toBe(200)
    expect(res.json).toMatchObject({
      account: 'header:alice',
      disabled: true,
      until: '2026-01-02T00:00:00.000Z',
      reason: 'ticket 42',
    })
    expect(await readAs(proxy.url, 'alice', 'contacts', [1, 2])).toEqual([403, 403])
    expect(await readAs(proxy.url, 'alice', 'invoices', [1])).toEqual([403])
    expect(await readAs(proxy.url, 'bob', 'invoices', [1])).toEqual([200])
    const shown = await call(url, 'GET', accountPath('header:alice'))
    expect(shown.json.disabled).toEqual([{ mode: 'enforce', until: '2026-01-02T00:00:00.000Z' }])
    expect(actions.at(-1)).toMatchObject({
      action: 'disable',
      account: 'header:alice',
      result: 'disabled',
      until: '2026-01-02T00:00:00.000Z',
      reason: 'ticket 42',
    })
    const enabled = await post(accountPath('header:alice', '/enable'))
    expect(enabled.json).toMatchObject({ account: 'header:alice', enabled: true })
    expect(actions.at(-1)).toMatchObject({ action: 'enable', account: 'header:alice', result: 'enabled' })
    expect(await readAs(proxy.url, 'alice', 'contacts', [1])).toEqual([200])
    expect((await post(accountPath('header:alice', '/enable'))).json).toMatchObject({ enabled: false })
  })

  it('--for expires; forever does not; an account never seen can be disabled by its full id', async () => {
    await post(`${accountPath('header:carol', '/disable')}?for=30m`)
    await post(`${accountPath('header:dave', '/disable')}?forever=true&reason=fraud`)
    expect(await readAs(proxy.url, 'carol', 'contacts', [1])).toEqual([403])
    now += 31 * 60_000
    expect(await readAs(proxy.url, 'carol', 'contacts', [1])).toEqual([200])
    now += 365 * 86_400_000
    expect(await readAs(proxy.url, 'dave', 'contacts', [1])).toEqual([403])
    const shown = await call(url, 'GET', accountPath('header:dave'))
    expect(shown.json.disabled).toEqual([{ mode: 'enforce', until: 'forever' }])
  })

  it('a bare name is the account the store knows (header: then jwt:); one it does not know is refused', async () => {
    await readAs(proxy.url, 'erin', 'contacts', [1])
    const res = await post(`${accountPath('erin', '/disable')}?for=1h`)
    expect(res.json).toMatchObject({ account: 'header:erin' })
    const unknown = await post(`${accountPath('nobody', '/disable')}?for=1h`)
    expect(unknown.status).toBe(400)
    expect(String(unknown.json.detail)).toContain('header:nobody')
    expect(actions.at(-1)).toMatchObject({ action: 'disable', account: 'nobody', result: 'not-found' })
  })

  it('refuses what it cannot use', async () => {
    const bad = async (q: string, body?: unknown) =>
      (await post(`${accountPath('header:x', '/disable')}${q}`, body)).status
    expect(await bad('')).toBe(400)
    expect(await bad('?for=soon')).toBe(400)
    expect(await bad('?for=0s')).toBe(400)
    expect(await bad('?for=1h&forever=true')).toBe(400)
    expect(await bad('?for=1h&color=red')).toBe(400)
    expect(await bad('?for=1h', { for: '2h' })).toBe(400)
    expect(await bad('', { for: '1h', what: 1 })).toBe(400)
    expect(await bad('', { for: '1h', reason: 'x'.repeat(501) })).toBe(400)
  })

  it('disables a network (net:<cidr>) on every route', async () => {
    const netConfig = CONFIG.replace(
      '{ window: 10m, distinctRecords: 10, action: throttle }',
      '{ window: 10m, distinctRecords: 10, action: throttle }, { per: network, window: 1h, requests: 1000, action: log }',
    )
    const other = await startProxy(netConfig, { upstream: upstream.url, clock: () => now })
    const otherAdmin = await buildAdmin({
      token: TOKEN,
      metrics: other.app.sluice.metrics,
      store: other.app.sluice.store,
      policies: policiesOf(netConfig),
      clock: () => now,
    })
    const at = await otherAdmin.listen({ host: '127.0.0.1', port: 0 })
    try {
      const res = await fetch(`${at}${accountPath('net:127.0.0.0/24', '/disable')}?for=1h`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}` },
      })
      expect(res.status).toBe(200)
      expect(await readAs(other.url, 'gina', 'invoices', [1])).toEqual([403])
      expect(await readAs(other.url, 'gina', 'contacts', [1])).toEqual([403])
      await fetch(`${at}${accountPath('net:127.0.0.0/24', '/enable')}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}` },
      })
      expect(await readAs(other.url, 'gina', 'contacts', [1])).toEqual([200])
    } finally {
      await otherAdmin.close()
      await other.close()
    }
  })
})

describe('sluice accounts disable|enable (the built bin)', () => {
  it('disables for a time with a reason, then enables', async () => {
    const env = { ...process.env, SLUICE_ADMIN_URL: url, SLUICE_ADMIN_TOKEN: TOKEN }
    const d = await run(
      process.execPath,
      [BIN, 'accounts', 'disable', 'header:frank', '--for', '24h', '--reason', 'bulk export'],
      { env },
    )
    expect(d.stdout).toContain('disabled header:frank until 2026-01-02T00:00:00.000Z: bulk export')
    expect(await readAs(proxy.url, 'frank', 'contacts', [1])).toEqual([403])
    const e = await run(process.execPath, [BIN, 'accounts', 'enable', 'header:frank'], { env })
    expect(e.stdout).toContain('enabled header:frank')
    expect(await readAs(proxy.url, 'frank', 'contacts', [1])).toEqual([200])
    const forever = await run(process.execPath, [BIN, 'accounts', 'disable', 'header:frank', '--forever', '--json'], {
      env,
    })
    expect(JSON.parse(forever.stdout)).toMatchObject({ account: 'header:frank', until: 'forever' })
    const usage = await run(process.execPath, [BIN, 'accounts', 'disable', 'header:frank'], { env }).catch(
      (err: { code: number; stderr: string }) => err,
    )
    expect(usage).toMatchObject({ code: 2 })
    expect((usage as { stderr: string }).stderr).toContain('--for')
  })
})
