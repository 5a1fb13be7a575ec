// The proxy as an operator runs it (the built bin): SIGHUP reloads under load without dropping
// a request or resetting unchanged routes; a bad config is refused and the old one keeps
// running; SIGTERM under load lets in-flight requests finish, flushes the audit, exits 0.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { verifyAudit } from '../../src/audit/index.js'
import { basic } from '../helpers/http.js'
import { freePort } from '../helpers/redis.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const BIN = join(import.meta.dirname, '../../bin/sluice.js')
let dir: string
let upstream: Upstream
let child: ChildProcess | undefined
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-life-'))
  // Slow enough that a shutdown catches requests in flight.
  upstream = await startUpstream((req, res) => {
    req.resume()
    setTimeout(
      () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'),
      req.url?.startsWith('/slow') ? 400 : 0,
    )
  })
})
afterAll(async () => {
  await upstream.close()
  rmSync(dir, { recursive: true, force: true })
})
afterEach(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGKILL')
    await new Promise((r) => child?.once('exit', r))
  }
  child = undefined
})

const config = (contactLimit: number, extra = '') => `version: 1
listen: { host: 127.0.0.1, port: 0 }
upstream: { url: ${upstream.url} }
identity: [{ type: basic }]
audit: { file: ${join(dir, 'audit.jsonl')}, key: lifecycle-audit-key-0123456789, fsync: always }
routes:
  - name: contact
    path: /api/contacts/:id
    records: { param: id }
    limits: [ { window: 1h, distinctRecords: ${contactLimit}, action: throttle } ]
  - name: invoice
    path: /api/invoices/:id
    records: { param: id }
    limits: [ { window: 1h, distinctRecords: 3, action: throttle } ]
${extra}`

async function start(file: string): Promise<{ url: string; out: () => string }> {
  child = spawn(process.execPath, [BIN, 'start', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout?.on('data', (c) => (out += String(c)))
  child.stderr?.on('data', (c) => (out += String(c)))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not started: ${out}`)), 15_000)
    const look = () => {
      const m = /sluice listening on (http:\/\/[^"\s]+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(m[1] as string)
      } else setTimeout(look, 20)
    }
    look()
  })
  return { url, out: () => out }
}

const status = (url: string, path: string, user = 'mallory') =>
  fetch(url + path, { headers: basic(user) }).then(async (r) => (await r.arrayBuffer(), r.status))
/** Up to 15 s: a process starting on a loaded machine may take several. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (check()) return
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error(`timed out waiting for ${what}`)
}

describe('reload and shutdown', () => {
  it('SIGHUP under load: no request dropped; the new limits apply on top of the counts so far, unchanged routes keep theirs', async () => {
    const file = join(dir, 'reload.yaml')
    writeFileSync(file, config(5))
    const { url, out } = await start(file)
    for (let id = 1; id <= 3; id++) expect(await status(url, `/api/invoices/${id}`)).toBe(200)
    for (let id = 1; id <= 5; id++) expect(await status(url, `/api/contacts/${id}`)).toBe(200)
    expect(await status(url, '/api/contacts/6')).toBe(429)

    // Load from many accounts while the file changes and SIGHUP arrives twice.
    let n = 0
    const load = autocannon({
      url,
      connections: 20,
      duration: 3,
      requests: [
        {
          method: 'GET',
          setupRequest: (req) => ({
            ...req,
            path: `/api/contacts/${n % 3}`,
            headers: { ...req.headers, ...basic(`load-${n++ % 50}`) },
          }),
        },
      ],
    })
    await new Promise((r) => setTimeout(r, 700))
    writeFileSync(file, config(8))
    child!.kill('SIGHUP')
    await new Promise((r) => setTimeout(r, 700))
    child!.kill('SIGHUP')
    const result = await load
    expect(result.errors).toBe(0)
    expect(result.non2xx).toBe(0)
    expect(result.requests.total).toBeGreaterThan(100)
    await until(() => (out().match(/"outcome":"applied"/g) ?? []).length === 2, 'two reloads')

    // The contact limit is now 8: mallory's 5 records still count (3 more, then blocked) …
    for (let id = 6; id <= 8; id++) expect(await status(url, `/api/contacts/${id}`)).toBe(200)
    expect(await status(url, '/api/contacts/9')).toBe(429)
    // … and the unchanged invoice route kept its count.
    expect(await status(url, '/api/invoices/4')).toBe(429)
  }, 30_000)

  it('an invalid config is refused with its errors and the running one stays', async () => {
    const file = join(dir, 'invalid.yaml')
    writeFileSync(file, config(2))
    const { url, out } = await start(file)
    writeFileSync(file, config(2).replace('action: throttle', 'action: obliterate'))
    child!.kill('SIGHUP')
    await until(() => out().includes('the running configuration stays'), 'the refusal')
    expect(out()).toMatch(/obliterate/)
    writeFileSync(
      file,
      config(2).replace(`upstream: { url: ${upstream.url} }`, 'upstream: { url: http://127.0.0.1:1 }'),
    )
    child!.kill('SIGHUP')
    await until(() => out().includes('changing the upstream needs a restart'), 'the restart-only refusal')
    expect(await status(url, '/api/contacts/1', 'bob')).toBe(200)
    expect(await status(url, '/api/contacts/2', 'bob')).toBe(200)
    expect(await status(url, '/api/contacts/3', 'bob')).toBe(429)
  }, 30_000)

  it('SIGTERM under load: in-flight requests complete, the audit is flushed and verifies, exit 0', async () => {
    const file = join(dir, 'stop.yaml')
    const auditFile = join(dir, 'stop-audit.jsonl')
    writeFileSync(file, config(1).replace(join(dir, 'audit.jsonl'), auditFile))
    const { url } = await start(file)
    expect(await status(url, '/api/contacts/1', 'eve')).toBe(200)
    expect(await status(url, '/api/contacts/2', 'eve')).toBe(429)
    const inFlight = Array.from({ length: 20 }, (_, i) => fetch(`${url}/slow/${i}`).then((r) => r.status))
    await until(() => upstream.received.filter((r) => r.url.startsWith('/slow')).length === 20, 'requests in flight')
    child!.kill('SIGTERM')
    expect(await Promise.all(inFlight)).toEqual(Array(20).fill(200))
    const code = await new Promise((r) => child!.once('exit', r))
    expect(code).toBe(0)

    const result = await verifyAudit([auditFile], 'lifecycle-audit-key-0123456789')
    expect(result.ok).toBe(true)
    const types = readFileSync(auditFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { type: string }).type)
    expect(types[0]).not.toBe('stopped')
    expect(types).toContain('decision')
    expect(types.at(-1)).toBe('stopped')
    const decision = readFileSync(auditFile, 'utf8')
      .split('\n')
      .find((l) => l.includes('"type":"decision"'))!
    expect(decision).toContain('"account":"basic:eve#')
    expect(decision).not.toContain('/api/contacts/2') // the record id is a pseudonym
    expect(decision).toMatch(/\/api\/contacts\/~[0-9a-f]{32}/)
  }, 30_000)

  it('an operator finds the disabled account, resets it with the CLI, and the trail records who did', async () => {
    const file = join(dir, 'ops.yaml')
    const auditFile = join(dir, 'ops-audit.jsonl')
    const port = await freePort()
    const token = 'ops-admin-token-0123456789'
    writeFileSync(
      file,
      config(2, `admin: { listen: { host: 127.0.0.1, port: ${port} }, token: "\${SLUICE_ADMIN_TOKEN}" }\n`)
        .replace(join(dir, 'audit.jsonl'), auditFile)
        .replace(
          'action: throttle } ]\n  - name: invoice',
          'action: throttle }, { window: 1h, requests: 4, action: disable } ]\n  - name: invoice',
        ),
    )
    child = spawn(process.execPath, [BIN, 'start', '-c', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SLUICE_ADMIN_TOKEN: token },
    })
    let out = ''
    child.stdout?.on('data', (c) => (out += String(c)))
    child.stderr?.on('data', (c) => (out += String(c)))
    await until(() => /admin listening/.test(out), `the admin listener (${out})`)
    const url = /sluice listening on (http:\/\/[^"\s]+)/.exec(out)![1]!
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [BIN, ...args], {
        encoding: 'utf8',
        env: { ...process.env, SLUICE_ADMIN_URL: `http://127.0.0.1:${port}`, SLUICE_ADMIN_TOKEN: token },
      })

    const statuses: number[] = []
    for (let id = 1; id <= 6; id++) statuses.push(await status(url, `/api/contacts/${id}`, 'mallory'))
    expect(statuses).toEqual([200, 200, 429, 429, 403, 403])

    const list = cli('accounts', 'list', '--json')
    expect(list.status).toBe(0)
    const account = (JSON.parse(list.stdout) as { accounts: { account: string; disabled: unknown[] }[] }).accounts[0]!
    expect(account.account).toMatch(/^basic:mallory#/)
    expect(account.disabled.length).toBe(1)
    expect(cli('incidents').stdout).toMatch(/disable/)
    const reset = cli('accounts', 'reset', account.account)
    expect(reset.status).toBe(0)
    expect(await status(url, '/api/contacts/7', 'mallory')).toBe(200)

    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`, {
      headers: { authorization: `Bearer ${token}` },
    }).then((r) => r.text())
    expect(metrics).toMatch(/^sluice_audit_healthy 1$/m)
    expect(metrics).toMatch(/^sluice_audit_backlog \d+$/m)
    expect(metrics).toMatch(/sluice_blocks_total\{action="disable"\} 1/)

    child.kill('SIGTERM')
    expect(await new Promise((r) => child!.once('exit', r))).toBe(0)
    const verify = spawnSync(process.execPath, [BIN, 'audit', 'verify', auditFile, '--key-env', 'AUDIT_KEY'], {
      encoding: 'utf8',
      env: { ...process.env, AUDIT_KEY: 'lifecycle-audit-key-0123456789' },
    })
    expect(verify.status).toBe(0)
    const entries = readFileSync(auditFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    const resetEntry = entries.find((e) => e.type === 'reset')
    expect(resetEntry).toMatchObject({ account: account.account, remoteAddress: '127.0.0.1' })
  }, 30_000)
})
