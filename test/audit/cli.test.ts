// `sluice audit verify`, through a Command built the way main.ts builds it.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { AuditTrail } from '../../src/audit/index.js'
import { registerAudit } from '../../src/cli/audit.js'
import { removeTempDirs, tempDir } from './helpers.js'
import { runCommand, type CliRun } from '../helpers/cli.js'

afterAll(removeTempDirs)
afterEach(() => {
  vi.restoreAllMocks()
  delete process.env.SLUICE_TEST_AUDIT_KEY
})

let dir: string
let file: string
let rotated: string[]

beforeAll(async () => {
  dir = tempDir()
  file = join(dir, 'audit.jsonl')
  const trail = await AuditTrail.open({ file, key: 'secret-audit-key', maxBytes: 500, batchSize: 2, fsync: 'never' })
  for (let i = 0; i < 12; i++) trail.append('decision', { account: 'mallory', i })
  await trail.close()
  const { readdirSync } = await import('node:fs')
  rotated = readdirSync(dir)
    .filter((n) => n !== 'audit.jsonl')
    .map((n) => join(dir, n))
})

const run = (...args: string[]): Promise<CliRun> => runCommand(registerAudit, args)

describe('sluice audit verify', () => {
  it('prints OK with the entry count, last seq and last hash, and exits 0 (files in any order)', async () => {
    expect(rotated.length).toBeGreaterThan(1)
    process.env.SLUICE_TEST_AUDIT_KEY = 'secret-audit-key'
    const res = await run('audit', 'verify', file, ...rotated, '--key-env', 'SLUICE_TEST_AUDIT_KEY')
    const lastHash = (JSON.parse(readFileSync(file, 'utf8').trim().split('\n').pop() ?? '') as { hash: string }).hash
    expect(res.code).toBe(0)
    expect(res.stdout).toMatch(
      new RegExp(
        `^OK: \\d+ entries in ${rotated.length + 1} files, chain intact up to seq \\d+\\n  last hash ${lastHash} \\(${file.replace(/[.]/g, '\\.')}\\)`,
      ),
    )
  })

  it('prints the first broken entry and exits 1', async () => {
    process.env.SLUICE_TEST_AUDIT_KEY = 'secret-audit-key'
    const copy = join(dir, 'tampered.jsonl')
    writeFileSync(copy, readFileSync(file, 'utf8').replace('"i":11', '"i":12'))
    const res = await run('audit', 'verify', copy, '--key-env', 'SLUICE_TEST_AUDIT_KEY')
    expect(res.code).toBe(1)
    expect(res.stdout).toMatch(
      /^BROKEN: .*tampered\.jsonl:\d+ \(seq \d+\): hash mismatch: the entry was changed, or the key is wrong\n {2}\d+ entries before it verified, up to seq \d+/,
    )
    expect(res.stdout).toContain('note: the chain starts at seq')
  })

  it('names the missing rotated file and exits 1', async () => {
    process.env.SLUICE_TEST_AUDIT_KEY = 'secret-audit-key'
    const res = await run(
      'audit',
      'verify',
      ...rotated.slice(0, 1),
      ...rotated.slice(2),
      file,
      '--key-env',
      'SLUICE_TEST_AUDIT_KEY',
    )
    expect(res.code).toBe(1)
    expect(res.stdout).toMatch(
      /^BROKEN: .*:1 \(seq \d+\): gap: expected seq \d+ after .*, found \d+: a file is missing \(this file continues from audit\.jsonl\./,
    )
  })

  it('says a keyed trail needs its key (and how to pass it), not BROKEN; and a key variable that is not set', async () => {
    const noKey = await run('audit', 'verify', ...rotated, file)
    expect(noKey.code).toBe(2)
    expect(noKey.stdout).toMatch(/^KEYED: .* is an HMAC-keyed trail/)
    expect(noKey.stdout).toContain('--key-env SLUICE_AUDIT_KEY')
    expect(noKey.stdout).not.toContain('BROKEN')
    const unset = await run('audit', 'verify', file, '--key-env', 'SLUICE_TEST_AUDIT_KEY')
    expect(unset.code).toBe(2)
    expect(unset.stderr).toContain('SLUICE_TEST_AUDIT_KEY (--key-env) is not set')
  })

  it('exits 1 on a file it cannot read, and prints JSON with --json', async () => {
    const missing = await run('audit', 'verify', join(dir, 'nope.jsonl'))
    expect(missing.code).toBe(1)
    expect(missing.stdout).toContain('cannot read the file: ENOENT')
    process.env.SLUICE_TEST_AUDIT_KEY = 'secret-audit-key'
    const json = await run('audit', 'verify', ...rotated, file, '--key-env', 'SLUICE_TEST_AUDIT_KEY', '--json')
    expect(json.code).toBe(0)
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, files: [...rotated.sort(), file], last: { file } })
  })
})
