// sluice registered inside an existing Fastify app (docs/plugin.md shows the same code).
import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { compileConfigText, sluice } from '../../src/index.js'

describe('Fastify plugin', () => {
  it('guards the app\'s own routes', async () => {
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
})
