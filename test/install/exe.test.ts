// The single executable (`npm run build:exe` → release/sluice), copied alone into an empty
// directory — no node_modules, no package.json, no Node on purpose — runs the demo, check, start,
// the admin CLI, audit verify and replay; its Redis store runs its bundled Lua; and the systemd
// unit's ExecStart starts it under the unit's restrictions.
//
// Building it takes a Node with the SEA fuse and ~130 MB, so `npm test` does not: this file runs
// when SLUICE_EXE names the executable (.ci/run builds it with Node 24 and sets it):
//   npm run build:exe && SLUICE_EXE=release/sluice npx vitest run test/install/exe.test.ts
import { copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { basic, send } from '../helpers/http.js'
import { hasRedis, startRedis, type RedisServer } from '../helpers/redis.js'
import {
  ROOT,
  VERSION,
  cleanEnv,
  launch,
  removeTempDirs,
  run,
  sandboxAvailable,
  startUnit,
  tempDir,
  type Running,
} from './helpers.js'

const EXE = process.env.SLUICE_EXE ? resolve(ROOT, process.env.SLUICE_EXE) : undefined
if (!EXE)
  console.warn(
    'test/install/exe.test.ts skipped: the single executable is not built here. ' +
      'Run `npm run build:exe && SLUICE_EXE=release/sluice npx vitest run test/install/exe.test.ts` (CI does).',
  )

const SECRETS = {
  SLUICE_ADMIN_TOKEN: 'exe-test-admin-token-0123456789',
  SLUICE_AUDIT_KEY: 'exe-test-audit-key-0123456789',
}

describe.skipIf(!EXE)('the single executable, alone in an empty directory', () => {
  let dir: string
  let sluice: string
  let demo: Running
  let app: string
  const env = () => cleanEnv(SECRETS)
  const exe = (...args: string[]) => run(sluice, args, { cwd: dir, env: env() })

  beforeAll(async () => {
    expect(existsSync(EXE as string), `SLUICE_EXE=${EXE} does not exist: npm run build:exe`).toBe(true)
    dir = tempDir('exe')
    sluice = join(dir, 'sluice')
    copyFileSync(EXE as string, sluice)
    copyFileSync(join(ROOT, 'examples/access.log'), join(dir, 'access.log')) // the operator's logs
    demo = launch(sluice, ['demo', '--port', '0', '--app-port', '0'], { cwd: dir, env: env() })
    app = (await demo.waitFor(/legacy address book \(unprotected\)\s+(http:\/\/\S+)/))[1] as string
  }, 60_000)

  afterAll(async () => {
    await demo?.stop()
    removeTempDirs()
  })

  it('is one file that prints its version and the configuration schema', () => {
    expect(statSync(sluice).size).toBeGreaterThan(10_000_000)
    expect(exe('--version').stdout.trim()).toBe(VERSION)
    const schema = exe('schema')
    expect(schema.status).toBe(0)
    expect(JSON.parse(schema.stdout).title).toBe('sluice configuration')
  })

  it('runs the demo from its bundled config (examples/demo.yaml)', async () => {
    const proxy = (await demo.waitFor(/sluice in front of it\s+(http:\/\/\S+)/))[1] as string
    const statuses: number[] = []
    for (let i = 1; i <= 25; i++)
      statuses.push((await send(proxy, `/api/contacts/${i}`, { headers: basic('mallory') })).status)
    expect(statuses).toEqual([...Array(20).fill(200), ...Array(5).fill(429)])
  })

  it('checks a config', () => {
    writeFileSync(join(dir, 'sluice.yaml'), config(app, 'store: { type: memory }'))
    const res = exe('check', '-c', 'sluice.yaml')
    expect(res.stderr).toBe('')
    expect(res.status).toBe(0)
    expect(res.stdout).toContain('sluice.yaml: OK')
  })

  it('starts in front of the demo app; the admin CLI lists, shows and resets; the audit trail verifies', async () => {
    writeFileSync(join(dir, 'sluice.yaml'), config(app, 'store: { type: memory }'))
    const proxy = launch(sluice, ['start', '-c', 'sluice.yaml'], { cwd: dir, env: env() })
    let code: number | null
    try {
      const url = (await proxy.waitFor(/sluice listening on (http:\/\/[^"\s]+)/))[1] as string
      const admin = (await proxy.waitFor(/admin listening on (http:\/\/[^"\s]+)/))[1] as string
      const statuses: number[] = []
      for (let i = 1; i <= 45; i++)
        statuses.push((await send(url, `/api/contacts/${i}`, { headers: basic('mallory') })).status)
      expect(statuses).toEqual([...Array(20).fill(200), ...Array(20).fill(429), ...Array(5).fill(403)])

      const cli = (...args: string[]) =>
        run(sluice, args, { cwd: dir, env: cleanEnv({ ...SECRETS, SLUICE_ADMIN_URL: admin }) })
      const list = cli('accounts', 'list', '--json')
      expect(list.status, list.stderr).toBe(0)
      const account = /"(basic:mallory#[0-9a-f]+)"/.exec(list.stdout)?.[1] as string
      expect(account, list.stdout).toBeDefined()
      const show = cli('accounts', 'show', account)
      expect(show.status, show.stderr).toBe(0)
      expect(show.stdout).toMatch(/disabled/i)
      const incidents = cli('incidents', '--limit', '5')
      expect(incidents.status, incidents.stderr).toBe(0)
      expect(incidents.stdout).toContain('disable')
      expect(cli('accounts', 'reset', account).status).toBe(0)
      expect((await send(url, '/api/contacts/1', { headers: basic('mallory') })).status).toBe(200)
    } finally {
      code = await proxy.stop()
    }
    expect(code, proxy.output()).toBe(0)
    const verify = exe('audit', 'verify', 'audit.jsonl', '--key-env', 'SLUICE_AUDIT_KEY')
    expect(verify.status, verify.stdout + verify.stderr).toBe(0)
    expect(readFileSync(join(dir, 'audit.jsonl'), 'utf8')).toContain('"type":"reset"')
  }, 60_000)

  it('replays access logs and suggests limits', () => {
    writeFileSync(join(dir, 'sluice.yaml'), config(app, 'store: { type: memory }'))
    const replay = exe('replay', '-c', 'sluice.yaml', 'access.log')
    expect(replay.status, replay.stderr).toBe(0)
    expect(replay.stdout).toContain('3,156 lines')
    expect(replay.stdout).toMatch(/mallory/)
    const suggest = exe('suggest', '-c', 'sluice.yaml', 'access.log')
    expect(suggest.status, suggest.stderr).toBe(0)
  })

  describe.skipIf(!hasRedis)('with the Redis store', () => {
    let redis: RedisServer
    beforeAll(async () => {
      redis = await startRedis()
    })
    afterAll(() => redis?.stop())

    it('counts with its bundled Lua scripts', async () => {
      // commandTimeout: a loaded CI machine may answer slower than the 50 ms default.
      writeFileSync(
        join(dir, 'redis.yaml'),
        config(app, `store: { type: redis, url: "${redis.url}", onError: fail-closed, commandTimeout: 2s }`),
      )
      const proxy = launch(sluice, ['start', '-c', 'redis.yaml'], { cwd: dir, env: env() })
      let code: number | null
      try {
        const url = (await proxy.waitFor(/sluice listening on (http:\/\/[^"\s]+)/))[1] as string
        const statuses: number[] = []
        for (let i = 1; i <= 22; i++)
          statuses.push((await send(url, `/api/contacts/${i}`, { headers: basic('bob') })).status)
        expect(statuses).toEqual([...Array(20).fill(200), 429, 429])
      } finally {
        code = await proxy.stop()
      }
      expect(code, proxy.output()).toBe(0)
    }, 60_000)
  })

  it.skipIf(!sandboxAvailable && !process.env.CI)(
    "starts as the systemd unit's ExecStart, under its restrictions",
    async () => {
      expect(sandboxAvailable, 'sandbox.sh needs root, unshare --mount and overlayfs').toBe(true)
      const { running, state } = startUnit({
        install: { kind: 'exe', file: sluice },
        config: config(app, 'store: { type: memory, state: { path: /var/lib/sluice/state } }').replace(
          './audit.jsonl',
          '/var/lib/sluice/audit.jsonl',
        ),
        env: SECRETS,
      })
      let code: number | null
      try {
        const url = (await running.waitFor(/sluice listening on (http:\/\/[^"\s]+)/))[1] as string
        expect((await send(url, '/api/contacts/1', { headers: basic('alice') })).status).toBe(200)
      } finally {
        code = await running.stop()
      }
      expect(code, running.output()).toBe(0)
      expect(readFileSync(join(state, 'audit.jsonl'), 'utf8')).toContain('"type":"genesis"')
      expect(existsSync(join(state, 'state')), 'the memory store state file').toBe(true)
    },
    60_000,
  )
})

/** The demo's contact route in front of `upstream`, with the admin API and a keyed audit trail. */
function config(upstream: string, store: string): string {
  return `version: 1
listen: { host: 127.0.0.1, port: 0 }
upstream: { url: ${upstream} }
mode: enforce
${store}
identity:
  - { type: basic }
routes:
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 1m, distinctRecords: 20, action: throttle }
      - { window: 1m, requests: 40, action: disable }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  token: "\${SLUICE_ADMIN_TOKEN}"
audit:
  file: ./audit.jsonl
  key: "\${SLUICE_AUDIT_KEY}"
`
}
