// What the README's demo promises, checked: examples/demo.yaml in front of the bundled app.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLegacyApp, type LegacyApp } from '../../src/demo/legacy-app.js'
import { basic } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'

const DEMO = readFileSync(join(import.meta.dirname, '../../examples/demo.yaml'), 'utf8').replace(
  'http://127.0.0.1:3000',
  'UPSTREAM',
)

describe('the demo', () => {
  let app: LegacyApp
  let proxy: RunningProxy
  beforeAll(async () => {
    app = await startLegacyApp()
    proxy = await startProxy(DEMO, { upstream: app.url })
  })
  afterAll(async () => {
    await proxy.close()
    await app.close()
  })

  it('paging with pageSize=100000: the app sees 50, two pages are served, the third is withheld with a challenge', async () => {
    const statuses: number[] = []
    const ids = new Set<number>()
    for (let page = 1; page <= 5; page++) {
      const res = await fetch(`${proxy.url}/api/contacts?page=${page}&pageSize=100000`, {
        headers: { ...basic('mallory'), accept: 'application/json' },
      })
      statuses.push(res.status)
      const body = (await res.json()) as { items?: { id: number }[]; type?: string }
      for (const c of body.items ?? []) ids.add(c.id)
      if (res.status === 429) expect(body.type).toMatch(/\/challenge$/)
    }
    expect(statuses).toEqual([200, 200, 429, 429, 429])
    expect(ids.size).toBe(100)
    expect(
      app.received.filter((r) => r.url.startsWith('/api/contacts?')).every((r) => r.url.endsWith('pageSize=50')),
    ).toBe(true)
  })

  it('a second login of the same user keeps the budget of the first', async () => {
    const login = async () => {
      const res = await fetch(`${proxy.url}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'username=bob&password=bob-pw',
      })
      return res.headers.getSetCookie()[0]!.split(';')[0]!
    }
    const s1 = await login()
    const page = (p: number, cookie: string) =>
      fetch(`${proxy.url}/api/contacts?page=${p}&pageSize=50`, { headers: { cookie } }).then(
        async (r) => (await r.arrayBuffer(), r.status),
      )
    expect([await page(1, s1), await page(2, s1), await page(3, s1)]).toEqual([200, 200, 429])
    const s2 = await login()
    expect(s2).not.toBe(s1)
    expect(await page(3, s2)).toBe(429)
  })
})
