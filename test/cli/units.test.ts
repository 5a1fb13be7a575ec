// Durations, sizes and counts as people read them, in `check` and `replay` output.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { humanBytes, humanMs, plural } from '../../src/units.js'

const BIN = join(import.meta.dirname, '../../bin/sluice.js')
const dir = mkdtempSync(join(tmpdir(), 'sluice-units-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('units', () => {
  it('durations', () => {
    expect(humanMs(10_500)).toBe('10.5s')
    expect(humanMs(600_000)).toBe('10m')
    expect(humanMs(90_000)).toBe('90s')
    expect(humanMs(1250)).toBe('1.25s')
    expect(humanMs(500)).toBe('500ms')
    expect(humanMs(Infinity)).toBe('forever')
  })

  it('sizes', () => {
    expect(humanBytes(4_194_304)).toBe('4 MiB')
    expect(humanBytes(1536)).toBe('1.5 KiB')
    expect(humanBytes(100)).toBe('100 bytes')
    expect(humanBytes(1)).toBe('1 byte')
  })

  it('plurals', () => {
    expect(plural(1, 'request')).toBe('1 request')
    expect(plural(0, 'account')).toBe('0 accounts')
    expect(plural(12_000, 'account')).toBe('12,000 accounts')
  })
})

describe('sluice check and replay print them', () => {
  const config = join(dir, 'sluice.yaml')
  writeFileSync(
    config,
    `version: 1
upstream: { url: http://127.0.0.1:3000, timeout: 10.5s }
routes:
  - name: list
    path: /api/contacts
    records: { response: "$.items[*].id", maxInspectBytes: 4mb }
    limits:
      - { window: 10m, distinctRecords: 100, action: throttle }
  - name: contact
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 1m, distinctRecords: 20, action: throttle }
`,
  )

  it('check: 10.5s and 4 MiB, not 10500ms and 4194304 bytes', () => {
    const res = spawnSync(process.execPath, [BIN, 'check', '-c', config], { encoding: 'utf8' })
    expect(res.stderr).toBe('')
    expect(res.stdout).toContain('timeout 10.5s')
    expect(res.stdout).toContain('reads ≤ 4 MiB')
    expect(res.stdout).not.toMatch(/10500ms|4194304/)
  })

  it('replay: "1 request from 1 account"', () => {
    const log = join(dir, 'access.log')
    writeFileSync(
      log,
      '10.0.0.1 - alice [01/May/2024:12:00:00 +0000] "GET /api/contacts/1 HTTP/1.1" 200 12 "-" "curl"\n',
    )
    const res = spawnSync(process.execPath, [BIN, 'replay', '-c', config, log], { encoding: 'utf8' })
    expect(res.stdout).toContain('1 request from 1 account ')
    expect(res.stdout).not.toMatch(/\b1 requests|\b1 accounts/)
  })
})
