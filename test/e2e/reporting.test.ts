// Where decisions go: the log (record ids pseudonymised), the audit trail (hash-chained,
// verifiable) and signed webhooks — none of them on the request path.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { verifyAudit } from '../../src/audit/index.js'
import { SIGNATURE_HEADER, verifyWebhookSignature } from '../../src/notify/index.js'
import { basic } from '../helpers/http.js'
import { startProxy } from '../helpers/proxy.js'
import { freePort } from '../helpers/redis.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const SECRET = 'webhook-secret-0123456789abcdef'
let dir: string
let upstream: Upstream
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-report-'))
  upstream = await startUpstream()
})
afterAll(async () => {
  await upstream.close()
  rmSync(dir, { recursive: true, force: true })
})

const config = (auditFile: string, webhook: string, extra = '') => `
version: 1
upstream: { url: UPSTREAM }
identity: [{ type: basic }]
audit: { file: ${auditFile}, key: audit-key-0123456789abcdef }
notify:
  webhooks:
    - { url: "${webhook}", secret: ${SECRET}, events: [disable, throttle], timeout: 1s }
routes:
  - name: contact
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 1h, distinctRecords: 3, action: throttle }
      - { window: 1h, requests: 6, action: disable }
${extra}`

describe('reporting decisions', () => {
  it('logs and audits with pseudonymised record ids, and sends each incident once, signed', async () => {
    const received: { body: string; signature: string | undefined; event: string | undefined }[] = []
    const receiver = http.createServer((req, res) => {
      let body = ''
      req.on('data', (c) => (body += c))
      req.on('end', () => {
        received.push({
          body,
          signature: req.headers[SIGNATURE_HEADER] as string | undefined,
          event: req.headers['sluice-event'] as string | undefined,
        })
        res.writeHead(204).end()
      })
    })
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r))
    const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/incidents`
    const auditFile = join(dir, 'audit.jsonl')
    const proxy = await startProxy(config(auditFile, hook), { upstream: upstream.url })
    const statuses: number[] = []
    for (let id = 1; id <= 8; id++)
      statuses.push((await fetch(`${proxy.url}/api/contacts/${100 + id}`, { headers: basic('mallory') })).status)
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429, 403, 403])

    // Log lines: the route and a pseudonym, never the record id.
    const decisions = proxy.decisions()
    expect(decisions.length).toBe(5)
    for (const d of decisions) {
      // As a whole number: the pid, the time or a pseudonym's hex may contain the digits.
      expect(JSON.stringify(d)).not.toMatch(/\b10[4-8]\b/)
      expect(d.path).toMatch(/^\/api\/contacts\/~[0-9a-f]{32}$/)
    }
    expect(decisions[0]!.recordIds).toEqual([expect.stringMatching(/^~[0-9a-f]{32}$/)])
    // The same record gets the same pseudonym every time.
    await fetch(`${proxy.url}/api/contacts/104`, { headers: basic('mallory') })
    expect(proxy.decisions().at(-1)!.path).toBe(decisions[0]!.path)

    // Webhooks: one throttle and one disable, not one per blocked request; each verifies.
    for (let i = 0; i < 100 && received.length < 2; i++) await new Promise((r) => setTimeout(r, 20))
    await new Promise((r) => setTimeout(r, 200))
    expect(received.map((r) => r.event).sort()).toEqual(['disable', 'throttle'])
    for (const r of received) {
      expect(verifyWebhookSignature(SECRET, r.body, r.signature)).toBe(true)
      expect(verifyWebhookSignature('another-secret-0123456789', r.body, r.signature)).toBe(false)
      const incident = JSON.parse(r.body) as Record<string, unknown>
      expect(incident.account).toMatch(/^basic:mallory#/)
      expect(incident.route).toBe('contact')
    }

    await proxy.close()
    await new Promise((r) => receiver.close(r))
    const verified = await verifyAudit([auditFile], 'audit-key-0123456789abcdef')
    expect(verified.ok).toBe(true)
    const entries = readFileSync(auditFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(entries.filter((e) => e.type === 'decision').length).toBe(5)
    expect(entries.filter((e) => e.type === 'disable')).toEqual([
      expect.objectContaining({
        account: expect.stringMatching(/^basic:mallory#/),
        route: 'contact',
        limit: '1h requests 6 → disable',
      }),
    ])
    expect(entries.map((e) => e.type)).toEqual(expect.arrayContaining(['started', 'decision', 'disable', 'stopped']))
    expect(readFileSync(auditFile, 'utf8')).not.toMatch(/\/api\/contacts\/10[4-8]/)
  })

  it('a webhook receiver that is down costs the request path nothing', async () => {
    const dead = `http://127.0.0.1:${await freePort()}/incidents`
    const proxy = await startProxy(config(join(dir, 'audit-dead.jsonl'), dead), { upstream: upstream.url })
    const statuses: number[] = []
    for (let id = 1; id <= 8; id++)
      statuses.push((await fetch(`${proxy.url}/api/contacts/${id}`, { headers: basic('eve') })).status)
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429, 403, 403])
    await proxy.close()
  })

  it('privacy: { pseudonymise: false } writes record ids as they are', async () => {
    const proxy = await startProxy(
      config(join(dir, 'audit-plain.jsonl'), 'http://127.0.0.1:9/x', 'privacy: { pseudonymise: false }'),
      { upstream: upstream.url },
    )
    for (let id = 1; id <= 4; id++) await fetch(`${proxy.url}/api/contacts/${id}`, { headers: basic('carol') })
    expect(proxy.decisions()[0]).toMatchObject({ path: '/api/contacts/4', recordIds: ['4'] })
    await proxy.close()
  })
})
