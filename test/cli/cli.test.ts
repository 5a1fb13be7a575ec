// The sluice command as a user runs it (the built bin; `npm test` builds first).
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { basic, send } from '../helpers/http.js'

const BIN = join(import.meta.dirname, '../../bin/sluice.js')
const run = (...args: string[]) =>
  spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, JWT_SECRET: 'x'.repeat(40) } })

const dirs: string[] = []
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

function tempConfig(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-'))
  dirs.push(dir)
  const file = join(dir, 'sluice.yaml')
  writeFileSync(file, text)
  return file
}

describe('sluice check', () => {
  it('prints the effective routes and limits and exits 0', () => {
    const res = run('check', '-c', 'examples/demo.yaml')
    expect(res.status).toBe(0)
    expect(res.stdout).toContain('examples/demo.yaml: OK')
    expect(res.stdout).toMatch(/contact\s+GET \/api\/contacts\/:id\s+records: path :id/)
    expect(res.stdout).toMatch(/1m\s+distinctRecords\s+20\s+per account\s+→ throttle/)
  })

  it('prints every error with file:line:col and exits 2', () => {
    const file = tempConfig(`version: 1
upstream: { url: http://127.0.0.1:3000 }
mode: enforcing
routes:
  - name: c
    path: /c/:id
    limts: []
`)
    const res = run('check', '--config', file)
    expect(res.status).toBe(2)
    expect(res.stderr).toContain(`${file}:3:7: SLUICE_ERR_CONFIG_SCHEMA`)
    expect(res.stderr).toMatch(/:7:5: SLUICE_ERR_CONFIG_UNKNOWN_KEY.*limts/)
    expect(res.stderr).toContain('did you mean "limits"')
  })

  it('refuses an upstream URL with a path, which would be silently dropped', () => {
    const res = run(
      'check',
      '-c',
      tempConfig('version: 1\nupstream: { url: http://127.0.0.1:3000/portal }\nroutes: []\n'),
    )
    expect(res.status).toBe(2)
    expect(res.stderr).toContain('must not have a path')
  })

  it('says so when the port is taken, and exits 1', async () => {
    const net = await import('node:net')
    const blocker = net.createServer()
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r))
    const port = (blocker.address() as { port: number }).port
    const res = run(
      'start',
      '-c',
      tempConfig(`version: 1\nlisten: { port: ${port} }\nupstream: { url: http://127.0.0.1:3000 }\nroutes: []\n`),
    )
    blocker.close()
    expect(res.status).toBe(1)
    expect(res.stderr).toContain(`cannot listen on 127.0.0.1:${port}: the address is already in use`)
  })

  it('prints its version', () => {
    expect(run('--version').stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/)
  })

  it('fails cleanly on a missing file and on no file at all', () => {
    expect(run('check', '-c', '/nonexistent/sluice.yaml').status).toBe(2)
    expect(run('check').status).toBe(2)
    expect(run('start').status).toBe(2)
  })
})

describe('sluice start', () => {
  it('proxies to the upstream of the config and exits 0 on SIGTERM', async () => {
    const { startUpstream } = await import('../helpers/upstream.js')
    const upstream = await startUpstream()
    const file = tempConfig(`version: 1
listen: { host: 127.0.0.1, port: 0 }
upstream: { url: ${upstream.url} }
routes:
  - name: c
    path: /api/contacts/:id
    limits: [ { window: 1m, requests: 1, action: throttle } ]
`)
    const child = spawn(process.execPath, [BIN, 'start', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] })
    try {
      let out = ''
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not started: ${out}`)), 15_000)
        child.stdout.on('data', (chunk) => {
          out += String(chunk)
          const m = /sluice listening on (http:\/\/[^"\s]+)/.exec(out)
          if (m) {
            clearTimeout(timer)
            resolve(m[1] as string)
          }
        })
      })
      expect((await send(url, '/api/contacts/1')).status).toBe(200)
      expect((await send(url, '/api/contacts/2')).status).toBe(429)
      expect(upstream.received.map((r) => r.url)).toEqual(['/api/contacts/1'])
      // The log line travels through a pipe: it may land a moment after the response.
      for (let i = 0; i < 100 && !out.includes('"event":"sluice.decision"'); i++)
        await new Promise((r) => setTimeout(r, 20))
      expect(out).toContain('"event":"sluice.decision"')
    } finally {
      child.kill('SIGTERM')
      await new Promise((resolve) => child.once('exit', resolve))
      await upstream.close()
    }
    expect(child.exitCode).toBe(0)
  })
})

describe('sluice schema', () => {
  it('prints the JSON Schema', () => {
    const res = run('schema')
    expect(res.status).toBe(0)
    const schema = JSON.parse(res.stdout)
    expect(schema.title).toBe('sluice configuration')
    expect(schema.properties.routes.items.properties.limits).toBeDefined()
  })
})

describe('sluice demo', () => {
  it('runs the legacy app behind sluice and shows the ladder the banner promises', async () => {
    const child = spawn(process.execPath, [BIN, 'demo', '--port', '0', '--app-port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    try {
      let banner = ''
      const proxyUrl = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`demo did not start: ${banner}`)), 15_000)
        child.stderr.on('data', (chunk) => {
          banner += String(chunk)
          const m = /sluice in front of it\s+(http:\/\/\S+)/.exec(banner)
          if (m) {
            clearTimeout(timer)
            resolve(m[1] as string)
          }
        })
      })
      const statuses: number[] = []
      for (let i = 1; i <= 45; i++)
        statuses.push((await send(proxyUrl, `/api/contacts/${i}`, { headers: basic('mallory') })).status)
      expect(statuses.slice(0, 20)).toEqual(Array(20).fill(200))
      expect(statuses.slice(20, 40)).toEqual(Array(20).fill(429))
      expect(statuses.slice(40)).toEqual(Array(5).fill(403))
      expect((await send(proxyUrl, '/api/contacts/7', { headers: basic('alice') })).status).toBe(200)
      expect((await send(proxyUrl, '/api/contacts/7')).status).toBe(401)
    } finally {
      child.kill('SIGTERM')
      await new Promise((resolve) => child.once('exit', resolve))
    }
    expect(child.exitCode ?? 0).toBe(0)
  })
})
