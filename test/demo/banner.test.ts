// `sluice demo` as a newcomer follows it: the banner's commands, copied in order, show what the
// banner promises (each loop with an account no earlier loop disabled); a busy port is a message.
import { spawn, spawnSync } from 'node:child_process'
import { createServer } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const BIN = join(import.meta.dirname, '../../bin/sluice.js')
const hasCurl = spawnSync('curl', ['--version']).status === 0

describe('sluice demo', () => {
  it.runIf(hasCurl)(
    'runs the printed commands in order with the promised answers',
    async () => {
      const child = spawn(process.execPath, [BIN, 'demo', '--port', '0', '--app-port', '0'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      })
      const dir = mkdtempSync(join(tmpdir(), 'sluice-demo-'))
      try {
        let banner = ''
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`demo did not start: ${banner}`)), 15_000)
          child.stderr.on('data', (chunk) => {
            banner += String(chunk)
            if (banner.includes('Ctrl-C stops both')) {
              clearTimeout(timer)
              resolve()
            }
          })
        })
        const commands = banner
          .split('\n')
          .filter((l) => /^\s+(for |curl )/.test(l))
          .join('\n')
        const out = spawnSync('bash', ['-c', commands], { cwd: dir, encoding: 'utf8', timeout: 60_000 }).stdout
        const codes = (what: string) => [...out.matchAll(new RegExp(`${what} \\d+ → (\\d+)`, 'g'))].map((m) => m[1])
        const contacts = codes('contact')
        expect(contacts.slice(0, 20)).toEqual(Array(20).fill('200'))
        expect(contacts.slice(20, 40)).toEqual(Array(20).fill('429'))
        expect(contacts.slice(40)).toEqual(Array(20).fill('403'))
        // The page loop (a fresh account): 200, 200, then withheld; bob's session then his second one.
        expect(codes('page').slice(0, 5)).toEqual(['200', '200', '429', '429', '429'])
        expect(codes('page').slice(5, 7)).toEqual(['200', '200'])
        expect(codes('page').at(-1)).toBe('429')
        expect(out).toContain('"id":7')
        expect(out).toContain('"id":9')
        expect(out).toContain('"status":400')
      } finally {
        child.kill('SIGTERM')
        await new Promise((resolve) => child.once('exit', resolve))
        rmSync(dir, { recursive: true, force: true })
      }
    },
    90_000,
  )

  it("says the demo app's port is taken, without a stack trace, and exits 1", async () => {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    try {
      const res = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [BIN, 'demo', '--port', '0', '--app-port', String(port)], {
          stdio: ['ignore', 'ignore', 'pipe'],
        })
        let stderr = ''
        child.stderr.on('data', (c) => (stderr += String(c)))
        child.once('exit', (code) => resolve({ code, stderr }))
      })
      expect(res.code).toBe(1)
      expect(res.stderr).toContain(`the demo app cannot listen on 127.0.0.1:${port}: the address is already in use`)
      expect(res.stderr).toContain('--app-port')
      expect(res.stderr).not.toMatch(/\n\s+at /)
    } finally {
      server.close()
    }
  })
})
