// Every CLI error says something, every config problem is reported in one run, and no secret is
// ever printed back (the built bin, as an operator runs it).
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

const BIN = join(import.meta.dirname, '../../bin/sluice.js')
const env = { ...process.env }
delete env.SLUICE_ADMIN_TOKEN
delete env.SLUICE_ADMIN_URL
const run = (args: string[], extra: Record<string, string> = {}) =>
  spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...env, ...extra }, timeout: 20_000 })

const dir = mkdtempSync(join(tmpdir(), 'sluice-errors-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const write = (name: string, text: string) => {
  const file = join(dir, name)
  writeFileSync(file, text)
  return file
}

describe('a CLI error always prints a message', () => {
  it.each([
    [['check'], /name a config file: sluice check -c sluice\.yaml/],
    [['accounts', 'list'], /no admin token/],
    [['start', '-p', 'abc', '-c', 'examples/demo.yaml'], /"abc" is not a port/],
    [['demo', '--port', '99999'], /"99999" is not a port/],
  ])('sluice %j exits 2 and says why', (args, message) => {
    const res = run(args)
    expect(res.status).toBe(2)
    expect(res.stderr).toMatch(message)
  })
})

describe('a config with several problems', () => {
  const secrets = {
    token: 'tok-SHORT9',
    upstreamPw: 'upstream-pw-4711',
    redisPw: 'redis-pw-0815',
    webhook: 'webhook-secret-value',
  }
  const file = write(
    'bad.yaml',
    `version: 1
upstream: { url: "http://bob:${secrets.upstreamPw}@127.0.0.1:3000/x" }
store: { type: redis, url: "redis://:${secrets.redisPw}@127.0.0.1:6379", onError: fail-open }
admin:
  token: ${secrets.token}
audit:
  file: ${join(dir, 'audit.jsonl')}
  key: \${SLUICE_TEST_UNSET_AUDIT_KEY}
notify:
  webhooks:
    - { url: "ftp://x", secret: ${secrets.webhook}, events: [disable] }
routes:
  - name: c
    path: /c/:id
    records: { param: id }
    limits:
      - { window: 600, distinctRecords: 10, action: throtle }
`,
  )
  const res = run(['check', '-c', file])
  const all = res.stdout + res.stderr

  it('reports every stage at once: the unset variable does not hide the schema errors', () => {
    expect(res.status).toBe(2)
    expect(res.stderr).toContain('environment variable SLUICE_TEST_UNSET_AUDIT_KEY is not set')
    expect(res.stderr).toMatch(/admin\.token: .*must NOT have fewer than 16 characters/)
    expect(res.stderr).toMatch(/:17:\d+: SLUICE_ERR_CONFIG_DURATION at routes\[0\]\.limits\[0\]\.window: 600/)
    expect(res.stderr).toContain('fix: write a duration with a unit, e.g. 600s or 10m')
    expect(res.stderr).toContain('"throtle" must be one of')
    expect(res.stderr).toContain('fix: did you mean "throttle"?')
    // The unset key is reported once, by its variable, not again as a too-short key.
    expect(res.stderr).not.toMatch(/audit\.key/)
  })

  it('never prints a secret', () => {
    for (const s of Object.values(secrets)) expect(all).not.toContain(s)
    expect(res.stderr).toMatch(/admin\.token: the value \(10 characters, not shown: a secret\)/)
  })

  it('never prints a secret of a later stage either (compile: an upstream URL with credentials)', () => {
    const later = run([
      'check',
      '-c',
      write(
        'later.yaml',
        `version: 1\nupstream: { url: "http://bob:${secrets.upstreamPw}@127.0.0.1:3000/portal" }\nroutes: []\n`,
      ),
    ])
    expect(later.status).toBe(2)
    expect(later.stderr).toContain('must not have a path')
    expect(later.stdout + later.stderr).not.toContain(secrets.upstreamPw)
  })
})

describe('sluice check checks what start needs (like nginx -t)', () => {
  it('warns when the audit directory does not exist', () => {
    const file = write(
      'audit.yaml',
      `version: 1\nupstream: { url: http://127.0.0.1:3000 }\naudit: { file: ${join(dir, 'nope', 'audit.jsonl')} }\nroutes: []\n`,
    )
    const res = run(['check', '-c', file])
    expect(res.stdout).toContain(': OK')
    expect(res.stderr).toMatch(/warning: audit\.file .*nope.*does not exist; sluice start would refuse here/)
  })

  it('says nothing when the audit directory is there and writable', () => {
    mkdirSync(join(dir, 'logs'), { recursive: true })
    const file = write(
      'audit-ok.yaml',
      `version: 1\nupstream: { url: http://127.0.0.1:3000 }\naudit: { file: ${join(dir, 'logs', 'audit.jsonl')} }\nroutes: []\n`,
    )
    const res = run(['check', '-c', file])
    expect(res.status).toBe(0)
    expect(res.stderr).toBe('')
  })
})
