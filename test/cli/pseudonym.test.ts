// `sluice pseudonym ID`: the ~hex the logs and the audit trail write for a record id (the built bin).
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { derivePseudonymKey, pseudonymise } from '../../src/audit/pseudonym.js'
import { loadConfig } from '../../src/config/index.js'

const BIN = join(import.meta.dirname, '../../bin/sluice.js')
const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env } })
const dir = mkdtempSync(join(tmpdir(), 'sluice-pseudonym-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const config = (name: string, extra: string) => {
  const file = join(dir, name)
  writeFileSync(file, `version: 1\nupstream: { url: http://127.0.0.1:3000 }\n${extra}routes: []\n`)
  return file
}

describe('sluice pseudonym', () => {
  it("prints the pseudonym under the config's privacy.key, as the runtime computes it", async () => {
    const file = config('privacy.yaml', 'privacy: { key: "${SLUICE_TEST_PSEUDONYM_KEY}" }\n')
    const env = { SLUICE_TEST_PSEUDONYM_KEY: 'pseudonym-key-0123456789' }
    const res = run(['pseudonym', '4711', 'abc', '-c', file], env)
    expect(res.stderr).toBe('')
    expect(res.status).toBe(0)
    process.env.SLUICE_TEST_PSEUDONYM_KEY = env.SLUICE_TEST_PSEUDONYM_KEY
    const key = (await loadConfig(file)).privacy.key as string
    delete process.env.SLUICE_TEST_PSEUDONYM_KEY
    expect(res.stdout).toBe(`4711\t~${pseudonymise(key, '4711')}\nabc\t~${pseudonymise(key, 'abc')}\n`)
    expect(res.stdout).toMatch(/^4711\t~[0-9a-f]{32}$/m)
  })

  it('derives it from audit.key when privacy.key is not set, and takes keys from the environment', () => {
    const auditKey = 'audit-key-0123456789abcdef'
    const file = config('audit.yaml', `audit: { file: ${join(dir, 'audit.jsonl')}, key: ${auditKey} }\n`)
    const expected = `~${pseudonymise(derivePseudonymKey(auditKey), '17')}`
    expect(run(['pseudonym', '17', '-c', file]).stdout).toBe(`17\t${expected}\n`)
    expect(run(['pseudonym', '17', '--audit-key-env', 'K'], { K: auditKey }).stdout).toBe(`17\t${expected}\n`)
    expect(run(['pseudonym', '17', '--key-env', 'K'], { K: 'k'.repeat(20) }).stdout).toBe(
      `17\t~${pseudonymise('k'.repeat(20), '17')}\n`,
    )
  })

  it('says why it cannot: no key named, a config without one, a variable not set', () => {
    const none = run(['pseudonym', '17'])
    expect(none.status).toBe(2)
    expect(none.stderr).toContain('name the key')
    const random = run(['pseudonym', '17', '-c', config('none.yaml', '')])
    expect(random.status).toBe(2)
    expect(random.stderr).toContain('random per process')
    const unset = run(['pseudonym', '17', '--key-env', 'SLUICE_TEST_UNSET_KEY'])
    expect(unset.status).toBe(2)
    expect(unset.stderr).toContain('SLUICE_TEST_UNSET_KEY (--key-env) is not set')
  })
})
