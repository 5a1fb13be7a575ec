// sluice registered inside an existing Fastify app (docs/plugin.md shows the same code).
import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { compileConfigText, sluice } from '../../src/index.js'

describe('Fastify plugin', () => {
  it("guards the app's own routes", async () => {
    const config = compileConfigText(`
version: 1
upstream: { url: http://127.0.0.1:1 }   # unused when sluice runs as a plugin
identity:
  - { type: header, name: x-user, trusted: true }
routes:
  - name: customer
    methods: [GET]
    path: /customers/:id
    records: { param: id }
    limits:
      - { window: 10m, distinctRecords: 2, action: throttle }
`)
    const app = Fastify()
    await app.register(sluice, { config })
    app.get('/customers/:id', async (req) => ({ id: (req.params as { id: string }).id }))
    app.get('/health', async () => 'ok')

    const get = (url: string, user = 'u1') => app.inject({ method: 'GET', url, headers: { 'x-user': user } })
    expect((await get('/customers/1')).statusCode).toBe(200)
    expect((await get('/customers/2')).statusCode).toBe(200)
    const third = await get('/customers/3')
    expect(third.statusCode).toBe(429)
    expect(third.headers['content-type']).toContain('application/problem+json')
    expect((await get('/customers/3', 'u2')).statusCode).toBe(200)
    expect((await get('/health')).statusCode).toBe(200)
    expect((await get('/customers/%2F3')).statusCode).toBe(400)
    await app.close()
  })

  it("counts ids in the app's own answers and JSON bodies, and clamps the parsed query", async () => {
    const config = compileConfigText(`
version: 1
upstream: { url: http://127.0.0.1:1 }
identity:
  - { type: header, name: x-user, trusted: true }
routes:
  - name: list
    methods: [GET]
    path: /customers
    records: { response: "$.items[*].id" }
    clampQuery: { size: 10 }
    limits:
      - { window: 10m, distinctRecords: 25, action: throttle }
  - name: batch
    methods: [POST]
    path: /customers/batch
    records: { body: "$.ids" }
    limits:
      - { window: 10m, distinctRecords: 3, action: throttle }
`)
    const app = Fastify()
    await app.register(sluice, { config })
    const sizes: number[] = []
    app.get('/customers', async (req) => {
      const q = req.query as { page?: string; size?: string }
      const page = Number(q.page ?? 1)
      const size = Number(q.size ?? 10)
      sizes.push(size)
      return { items: Array.from({ length: size }, (_, i) => ({ id: (page - 1) * size + i + 1 })) }
    })
    app.post('/customers/batch', async (req) => ({ got: (req.body as { ids: number[] }).ids.length }))

    const page = (n: number) =>
      app.inject({ method: 'GET', url: `/customers?page=${n}&size=1000`, headers: { 'x-user': 'u1' } })
    expect((await page(1)).statusCode).toBe(200)
    expect((await page(2)).statusCode).toBe(200)
    const third = await page(3)
    expect(third.statusCode).toBe(429) // 30 > 25: withheld
    expect(third.body).not.toContain('"id"')
    expect(sizes).toEqual([10, 10, 10]) // the handler saw the clamped size

    const batch = (ids: number[]) =>
      app.inject({
        method: 'POST',
        url: '/customers/batch',
        headers: { 'x-user': 'u1', 'content-type': 'application/json' },
        payload: { ids },
      })
    expect((await batch([1, 2, 3])).json()).toEqual({ got: 3 })
    expect((await batch([4])).statusCode).toBe(429)
    await app.close()
  })
})
