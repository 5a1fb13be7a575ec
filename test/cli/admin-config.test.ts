// The admin CLI finds the admin API and its token in the config (-c), names what set an
// unreachable URL, and says who acted and why; the admin API records it (the built bin).
import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Metrics } from '../../src/admin/metrics.js'
import { buildAdmin, type AdminAction } from '../../src/admin/server.js'
import { loadConfig } from '../../src/config/index.js'
import { MemoryStore } from '../../src/store/memory.js'
import { freePort } from '../helpers/redis.js'

const BIN = join(import.meta.dirname, '../../bin/sluice.js')
const SHARED = 'shared-admin-token-0123456789'
const ALICE = 'alice-admin-token-0123456789'
const BOB = 'bob-admin-token-0123456789ab'

const env: Record<string, string | undefined> = { ...process.env }
delete env.SLUICE_ADMIN_TOKEN
delete env.SLUICE_ADMIN_URL
delete env.SLUICE_OPERATOR

async function run(args: string[], extra: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], {
      env: { ...env, ...extra },
      timeout: 20_000,
    })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: number; stdout: string; stderr: string }
    return { code: e.code ?? -1, stdout: e.stdout, stderr: e.stderr }
  }
}

const dir = mkdtempSync(join(tmpdir(), 'sluice-admin-config-'))
const actions: AdminAction[] = []
let admin: Awaited<ReturnType<typeof buildAdmin>>
let port: number

function config(name: string, adminYaml: string): string {
  const file = join(dir, name)
  writeFileSync(file, `version: 1\nupstream: { url: http://127.0.0.1:3000 }\nadmin:\n${adminYaml}\nroutes: []\n`)
  return file
}

beforeAll(async () => {
  admin = await buildAdmin({
    token: SHARED,
    tokens: [
      { name: 'alice', token: ALICE },
      { name: 'bob', token: BOB },
    ],
    metrics: new Metrics(),
    store: new MemoryStore({ maxAccounts: 10 }),
    reload: async () => ({ ok: true }),
    onAdminAction: (a) => void actions.push(a),
  })
  await admin.listen({ host: '127.0.0.1', port: 0 })
  port = (admin.server.address() as { port: number }).port
})
afterAll(async () => {
  await admin.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('the admin CLI reads admin.listen and the token from the config', () => {
  it('reaches the API with -c alone (token through ${VAR}), and records --operator and --reason', async () => {
    const file = config('shared.yaml', `  listen: { port: ${port} }\n  token: \${SLUICE_TEST_ADMIN_TOKEN}`)
    const res = await run(['reload', '-c', file, '--operator', 'carol', '--reason', 'ticket 42: new limits'], {
      SLUICE_TEST_ADMIN_TOKEN: SHARED,
    })
    expect(res.stderr).toBe('')
    expect(res.code).toBe(0)
    expect(res.stdout).toContain('reloaded')
    expect(actions.at(-1)).toMatchObject({
      action: 'reload',
      result: 'reloaded',
      operator: 'carol',
      reason: 'ticket 42: new limits',
    })
    expect(actions.at(-1)?.tokenName).toBeUndefined()
  })

  it("records the named token's name; with several, --operator picks the operator's own", async () => {
    const file = config(
      'named.yaml',
      `  listen: { host: 0.0.0.0, port: ${port} }\n  tokens:\n    - { name: alice, token: ${ALICE} }\n    - { name: bob, token: ${BOB} }`,
    )
    const res = await run(['reload', '-c', file, '--operator', 'bob'])
    expect(res.code).toBe(0)
    expect(actions.at(-1)).toMatchObject({ action: 'reload', operator: 'bob', tokenName: 'bob' })
    const which = await run(['reload', '-c', file])
    expect(which.code).toBe(2)
    expect(which.stderr).toContain('several admin.tokens')
    expect(which.stdout + which.stderr).not.toContain(ALICE)
  })

  it('flags and the environment win over the config', async () => {
    const file = config('other.yaml', `  listen: { port: 1 }\n  token: not-the-right-token-at-all`)
    const res = await run(['reload', '-c', file, '--url', `http://127.0.0.1:${port}`], {
      SLUICE_ADMIN_TOKEN: ALICE,
    })
    expect(res.code).toBe(0)
    expect(actions.at(-1)).toMatchObject({ action: 'reload', tokenName: 'alice' })
  })

  it('names what set an unreachable URL', async () => {
    const closed = await freePort()
    const file = config('closed.yaml', `  listen: { port: ${closed} }\n  token: ${SHARED}`)
    const fromConfig = await run(['accounts', 'list', '-c', file])
    expect(fromConfig.code).toBe(1)
    expect(fromConfig.stderr).toContain(`cannot reach the admin API at http://127.0.0.1:${closed}`)
    expect(fromConfig.stderr).toContain(`the URL came from admin.listen in ${file}`)
    const fromFlag = await run(['accounts', 'list', '--url', `http://127.0.0.1:${closed}`, '--token', SHARED])
    expect(fromFlag.stderr).toContain('the URL came from --url')
    const fromEnv = await run(['accounts', 'list'], {
      SLUICE_ADMIN_URL: `http://127.0.0.1:${closed}`,
      SLUICE_ADMIN_TOKEN: SHARED,
    })
    expect(fromEnv.stderr).toContain('the URL came from SLUICE_ADMIN_URL')
  })

  it('says when the config has no admin section, or its token variable is not set', async () => {
    const none = join(dir, 'none.yaml')
    writeFileSync(none, 'version: 1\nupstream: { url: http://127.0.0.1:3000 }\nroutes: []\n')
    const res = await run(['accounts', 'list', '-c', none])
    expect(res.code).toBe(2)
    expect(res.stderr).toContain('has no admin section')
    const unset = config('unset.yaml', `  token: \${SLUICE_TEST_UNSET_TOKEN}`)
    const res2 = await run(['accounts', 'list', '-c', unset])
    expect(res2.code).toBe(2)
    expect(res2.stderr).toContain('SLUICE_TEST_UNSET_TOKEN')
  })
})

describe('admin.tokens in the schema', () => {
  it('accepts tokens without token, and a reload names the hash of the config text', async () => {
    const file = config('tokens-only.yaml', `  tokens: [{ name: alice, token: ${ALICE} }]`)
    const loaded = await loadConfig(file)
    expect(loaded.source.admin?.tokens).toEqual([{ name: 'alice', token: ALICE }])
    const { readFileSync } = await import('node:fs')
    expect(loaded.configHash).toBe(createHash('sha256').update(readFileSync(file)).digest('hex'))
  })

  it('refuses an admin section with neither token nor tokens', async () => {
    const file = join(dir, 'neither.yaml')
    writeFileSync(
      file,
      'version: 1\nupstream: { url: http://127.0.0.1:3000 }\nadmin: { listen: { port: 9 } }\nroutes: []\n',
    )
    const res = await run(['check', '-c', file])
    expect(res.code).toBe(2)
    expect(res.stderr).toMatch(/admin/)
  })
})

describe('a reload through the CLI, end to end', () => {
  it('logs who asked and why, and the sha256 of the config text it applied', async () => {
    const [port, adminPort] = [await freePort(), await freePort()]
    const file = join(dir, 'running.yaml')
    writeFileSync(
      file,
      `version: 1\nlisten: { port: ${port} }\nupstream: { url: http://127.0.0.1:3000 }\nadmin:\n  listen: { port: ${adminPort} }\n  readiness: { upstream: false }\n  tokens: [{ name: alice, token: ${ALICE} }]\nroutes: []\n`,
    )
    const child = spawn(process.execPath, [BIN, 'start', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (c) => (out += String(c)))
    child.stderr.on('data', (c) => (out += String(c)))
    try {
      for (let i = 0; i < 300 && !out.includes('admin listening'); i++) await new Promise((r) => setTimeout(r, 25))
      writeFileSync(file, readFileSync(file, 'utf8').replace('routes: []', 'mode: shadow\nroutes: []'))
      const hash = createHash('sha256').update(readFileSync(file)).digest('hex')
      const res = await run(['reload', '-c', file, '--operator', 'alice', '--reason', 'raise limits (CHG-7)'])
      expect(res.stderr).toBe('')
      expect(res.code).toBe(0)
      for (let i = 0; i < 200 && !out.includes('"operator"'); i++) await new Promise((r) => setTimeout(r, 25))
      const lines = out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
      expect(lines.find((l) => l.outcome === 'applied')).toMatchObject({ configHash: hash })
      expect(lines.find((l) => l.event === 'sluice.admin.action')).toMatchObject({
        action: 'reload',
        operator: 'alice',
        reason: 'raise limits (CHG-7)',
        tokenName: 'alice',
      })
    } finally {
      child.kill('SIGTERM')
      await new Promise((r) => child.once('exit', r))
    }
  }, 30_000)
})
