// `sluice replay` and `sluice suggest` as an operator runs them: the built bin (`npm test`
// builds first), output piped (so no progress bar), bad input reported, never a stack trace.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { CLI_CONFIG } from './fixtures.js'
import { combined, FAST, population, SLOW } from './population.js'

const BIN = join(import.meta.dirname, '../../bin/sluice.js')
const dir = mkdtempSync(join(tmpdir(), 'sluice-replay-cli-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const sluice = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 })

let config: string
let log: string
beforeAll(() => {
  if (!existsSync(join(import.meta.dirname, '../../dist/cli/main.js')))
    throw new Error('run `npm run build` first: these tests run the built bin')
  config = join(dir, 'sluice.yaml')
  writeFileSync(config, CLI_CONFIG)
  const lines = [...population({ clerks: 30, days: 1 })].map((h) => combined(h))
  // Two bad lines, as real logs have them: a TLS handshake sent to the HTTP port, a cut line.
  lines.splice(
    99,
    0,
    '198.51.100.7 - - [11/Mar/2024:09:31:02 +0100] "\\x16\\x03\\x01\\x00\\xF1\\x01\\x00\\x00\\xED\\x03\\x03" 400 157 "-" "-"',
  )
  lines.splice(199, 0, '10.0.0.3 - clerk003 [11/Mar/2024:10:02:11 +0100] "GET /api/contacts/12')
  log = join(dir, 'access.log')
  writeFileSync(log, lines.join('\n') + '\n')
})

describe('sluice replay', () => {
  it('prints per-route crossings, top accounts, blocked requests and the bad lines with their numbers', () => {
    const res = sluice('replay', '--config', config, log)
    expect(res.stderr).toBe('')
    expect(res.status).toBe(0)
    const out = res.stdout
    expect(out).toMatch(/^sluice replay: [\d,]+ lines, 2024-03-11T/)
    expect(out).toContain(`bad lines  2 (skipped):`)
    expect(out).toContain(
      `${log}:100: request line "\\x16\\x03\\x01\\x00\\xF1\\x01\\x00\\x00\\xED\\x03\\x03" is not "METHOD target"`,
    )
    expect(out).toContain(`${log}:200: unbalanced quotes or brackets`)
    expect(out).toMatch(/1m distinctRecords 20 → throttle\s+1\s+2024-03-11T14:20:\d\dZ mallory counts \[21, 21, 21\]/)
    // Only the slow one: the fast one was disabled (1m requests 40) before its 150th record.
    expect(out).toMatch(
      /1h distinctRecords 150 → challenge\s+1\s+2024-03-11T19:30:00Z svc-reporting counts \[5, 5, 151\]/,
    )
    // Ranked by the longest distinct window (1h): the fast one got furthest in an hour.
    expect(out).toMatch(
      new RegExp(
        `top accounts[^\\n]*\\n[^\\n]*\\n\\s+${FAST}\\s+721\\s+701\\s+240\\s+240\\s+721\\n\\s+${SLOW}\\s+2401\\s+`,
      ),
    )
    expect(out).toMatch(/blocked requests: [\d,]+ \(the first 20\)/)
    expect(out).toMatch(new RegExp(`${log.replace(/[.]/g, '\\.')}:\\d+  ${FAST}  GET /api/contacts/\\d+  → throttle`))
  })

  it('--json is one JSON document with the same facts', () => {
    const res = sluice('replay', '--config', config, '--json', log)
    expect(res.status).toBe(0)
    const doc = JSON.parse(res.stdout)
    expect(doc.bad.count).toBe(2)
    expect(doc.bad.first.map((b: { line: number }) => b.line)).toEqual([100, 200])
    const contact = doc.routes[0]
    expect(contact.name).toBe('contact')
    expect(contact.limits[0]).toMatchObject({
      label: '1m distinctRecords 20 → throttle',
      accountsCrossed: 1,
      suggested: expect.any(Number),
    })
    expect(contact.limits[0].crossings[0]).toMatchObject({ account: FAST, counts: [21, 21, 21] })
    expect(contact.top.slice(0, 2).map((a: { account: string }) => a.account)).toEqual([FAST, SLOW])
    expect(doc.blocked.count).toBeGreaterThan(0)
    expect(doc.blocked.first[0]).toMatchObject({
      account: FAST,
      kind: 'throttle',
      limit: '1m distinctRecords 20 → throttle',
    })
  })

  it('draws no progress bar when stderr is not a terminal', () => {
    const res = sluice('replay', '--config', config, log, '--report', join(dir, 'report.html'))
    expect(res.status).toBe(0)
    expect(res.stderr).toBe(`report written to ${join(dir, 'report.html')}\n`)
    expect(res.stderr).not.toContain('\r')
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toMatch(/^<!doctype html>/)
  })

  it('reads gzip and several files in one run', () => {
    const gz = join(dir, 'access.log.2.gz')
    writeFileSync(gz, gzipSync(readFileSync(log)))
    const res = sluice('replay', '--config', config, '--json', gz, log)
    expect(res.status).toBe(0)
    const doc = JSON.parse(res.stdout)
    expect(doc.files.map((f: { gzip: boolean }) => f.gzip)).toEqual([true, false])
    expect(doc.bad.first[2]).toMatchObject({ file: log, line: 100 })
  })
})

describe('sluice suggest', () => {
  it('prints a YAML snippet that parses, with the enumerators named in comments', () => {
    const res = sluice('suggest', '--config', config, log)
    expect(res.status).toBe(0)
    const doc = parse(res.stdout) as { routes: { name: string; limits: { window: string; action: string }[] }[] }
    expect(doc.routes.map((r) => r.name)).toEqual(['contact', 'contact-list'])
    expect(doc.routes[0]!.limits.map((l) => `${l.window} ${l.action}`)).toEqual([
      '1m throttle',
      '1m disable',
      '1h challenge',
    ])
    expect(res.stdout).toContain(`# likely scraper: ${SLOW}`)
    expect(res.stdout).toContain(`# likely scraper: ${FAST}`)
  })

  it('takes --percentile and --margin', () => {
    const a = parse(sluice('suggest', '--config', config, log).stdout) as {
      routes: { limits: { requests?: number; distinctRecords?: number }[] }[]
    }
    const b = parse(sluice('suggest', '--config', config, '--margin', '4', log).stdout) as typeof a
    expect(b.routes[0]!.limits[2]!.distinctRecords!).toBeGreaterThan(a.routes[0]!.limits[2]!.distinctRecords!)
    expect(sluice('suggest', '--config', config, '--percentile', '101', log).status).toBe(2)
  }, 60_000) // three runs of the CLI: seconds each on a busy machine
})

describe('bad input', () => {
  const noStack = (s: string) => expect(s).not.toMatch(/\n\s+at /)

  it('a missing log: a clear message, exit 1, before any replay', () => {
    const res = sluice('replay', '--config', config, log, join(dir, 'nope.log'))
    expect(res.status).toBe(1)
    expect(res.stdout).toBe('')
    expect(res.stderr).toBe(
      `sluice: cannot read ${join(dir, 'nope.log')}: no such file or directory (SLUICE_ERR_REPLAY_INPUT)\n`,
    )
  })

  it('a directory: a clear message, exit 1', () => {
    const res = sluice('replay', '--config', config, dir)
    expect(res.status).toBe(1)
    expect(res.stderr).toContain('is a directory')
    noStack(res.stderr)
  })

  it('a corrupt or cut gzip: what was read is reported, the file is named, exit 1', () => {
    const bad = join(dir, 'bad.gz')
    writeFileSync(bad, Buffer.from([0x1f, 0x8b, 0x63, 0x00, 1, 2, 3, 4, 5, 6]))
    const whole = gzipSync(readFileSync(log))
    const cut = join(dir, 'cut.gz')
    writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2)))
    const res = sluice('replay', '--config', config, bad, cut)
    expect(res.status).toBe(1)
    expect(res.stdout).toContain(`${bad} (combined, gzip, 0 lines, stopped: not a valid gzip file`)
    expect(res.stderr).toContain(`sluice: ${bad}: not a valid gzip file`)
    expect(res.stderr).toMatch(
      new RegExp(
        `sluice: ${cut.replace(/[.]/g, '\\.')}: unexpected end of file: the gzip data is cut short .*\\(after line \\d+; the lines before it are counted above\\)`,
      ),
    )
    noStack(res.stderr)
  })

  it('a missing config: exit 2; an unwritable report: exit 1', () => {
    const res = sluice('replay', '--config', join(dir, 'nope.yaml'), log)
    expect(res.status).toBe(2)
    expect(res.stderr).toContain('SLUICE_ERR_CONFIG_READ')
    const rep = sluice('replay', '--config', config, log, '--report', join(dir, 'no', 'such', 'dir.html'))
    expect(rep.status).toBe(1)
    expect(rep.stderr).toContain('cannot write the report')
    noStack(rep.stderr)
  })
})
