// Tampering with the file in every way we can think of, and the line verify names for it.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AuditTrail, pseudonymise, pseudonymiseAll, derivePseudonymKey, verifyAudit } from '../../src/audit/index.js'
import { removeTempDirs, tempDir } from './helpers.js'

afterAll(removeTempDirs)

const KEY = 'audit-key-'.repeat(4)
let original: Buffer
let lines: string[]
let dir: string

beforeAll(async () => {
  dir = tempDir()
  const file = join(dir, 'audit.jsonl')
  const trail = await AuditTrail.open({ file, key: KEY, fsync: 'never' })
  trail.append('decision', {
    account: 'mallory',
    route: 'contact',
    action: 'throttle',
    counts: { requests: 41, distinctRecords: 21 },
    records: pseudonymiseAll(KEY, ['7', '8']),
  })
  trail.append('disable', { account: 'mallory', until: '2025-01-01T00:15:00.000Z', note: 'ünïcödé ✓' })
  trail.append('unlock', { account: 'mallory', by: 'admin' })
  trail.append('reload', { ok: true, changed: ['contact'] })
  await trail.close()
  original = readFileSync(file)
  lines = original.toString('utf8').split('\n').slice(0, -1)
})

function variant(name: string, bytes: Buffer | string): string {
  const file = join(dir, name)
  writeFileSync(file, bytes)
  return file
}

/** 1-based line holding byte `i` (its "\n" belongs to it). */
function lineOf(i: number): number {
  let line = 1
  for (let j = 0; j < i; j++) if (original[j] === 0x0a) line++
  return line
}

describe('verifyAudit', () => {
  it('accepts the untouched trail', async () => {
    expect(await verifyAudit([variant('ok.jsonl', original)], KEY)).toMatchObject({
      ok: true,
      entries: 5,
      last: { seq: 5 },
    })
  })

  it('detects a change to any single byte, and names its line', async () => {
    expect(original.length).toBeGreaterThan(1000)
    const file = join(dir, 'flip.jsonl')
    const missed: number[] = []
    const wrongLine: number[] = []
    for (let i = 0; i < original.length; i++) {
      // Two kinds of change per byte: a low bit flip (keeps most characters printable and
      // hex digits hex) and a replacement by a space (JSON-neutral whitespace).
      for (const change of [(b: number) => b ^ 0x01, (b: number) => (b === 0x20 ? 0x09 : 0x20)]) {
        const copy = Buffer.from(original)
        copy[i] = change(copy[i] as number)
        writeFileSync(file, copy)
        const result = await verifyAudit([file], KEY)
        if (result.ok) missed.push(i)
        else if (result.firstProblem?.line !== lineOf(i)) wrongLine.push(i)
      }
    }
    expect(missed).toEqual([])
    expect(wrongLine).toEqual([])
  })

  it('detects a deleted line', async () => {
    const file = variant('deleted.jsonl', [...lines.slice(0, 2), ...lines.slice(3), ''].join('\n'))
    expect((await verifyAudit([file], KEY)).firstProblem).toMatchObject({
      line: 3,
      seq: 4,
      reason: 'expected seq 3, found 4: 1 entry missing',
    })
  })

  it('detects deleted first lines', async () => {
    const file = variant('headless.jsonl', [...lines.slice(2), ''].join('\n'))
    expect((await verifyAudit([file], KEY)).firstProblem).toMatchObject({
      line: 1,
      seq: 3,
      reason: expect.stringContaining('starts neither with a genesis'),
    })
  })

  it('detects two reordered lines', async () => {
    const swapped = [lines[0], lines[1], lines[3], lines[2], lines[4], '']
    expect((await verifyAudit([variant('swapped.jsonl', swapped.join('\n'))], KEY)).firstProblem).toMatchObject({
      line: 3,
      seq: 4,
      reason: expect.stringContaining('expected seq 3, found 4'),
    })
  })

  it('detects a repeated line', async () => {
    const repeated = [...lines.slice(0, 3), lines[2], ...lines.slice(3), '']
    expect((await verifyAudit([variant('repeated.jsonl', repeated.join('\n'))], KEY)).firstProblem).toMatchObject({
      line: 4,
      reason: expect.stringContaining('reordered or repeated'),
    })
  })

  it('detects a truncated tail and a garbage line', async () => {
    const cut = await verifyAudit([variant('cut.jsonl', original.subarray(0, original.length - 10))], KEY)
    expect(cut.firstProblem).toMatchObject({ line: 5, seq: 5, reason: expect.stringContaining('no newline') })
    const garbage = await verifyAudit(
      [variant('garbage.jsonl', [lines[0], 'hello', ...lines.slice(1), ''].join('\n'))],
      KEY,
    )
    expect(garbage.firstProblem).toMatchObject({ line: 2, reason: 'not valid JSON' })
    const trailing = await verifyAudit(
      [variant('trailing.jsonl', Buffer.concat([original, Buffer.from('{"a":1}\n')]))],
      KEY,
    )
    expect(trailing.firstProblem).toMatchObject({
      line: 6,
      seq: 6,
      reason: expect.stringContaining('no entry after it'),
    })
  })

  it('detects a re-serialised but equal entry (spaces, escapes)', async () => {
    const spaced = lines.map((l, i) => (i === 1 ? JSON.stringify(JSON.parse(l), null, 1).replace(/\n/g, '') : l))
    expect((await verifyAudit([variant('spaced.jsonl', [...spaced, ''].join('\n'))], KEY)).firstProblem).toMatchObject({
      line: 2,
      reason: expect.stringContaining('bytes of the line differ'),
    })
  })

  it('detects a recomputed chain when the trail is keyed', async () => {
    // Editing a value and recomputing plain SHA-256 hashes is what an attacker without the key can do.
    const { entryHash } = await import('../../src/audit/entry.js')
    let prev = '0'.repeat(64)
    const forged = lines.map((l) => {
      const e = JSON.parse(l) as Record<string, unknown>
      if (e.type === 'unlock') e.by = 'nobody'
      e.prev = prev
      delete e.hash
      e.hash = entryHash(e, undefined)
      prev = e.hash as string
      return JSON.stringify(e)
    })
    expect((await verifyAudit([variant('forged.jsonl', [...forged, ''].join('\n'))], KEY)).firstProblem).toMatchObject({
      line: 1,
    })
  })

  it('reports a missing or empty file', async () => {
    expect((await verifyAudit([join(dir, 'nope.jsonl')], KEY)).firstProblem).toMatchObject({
      line: 0,
      reason: expect.stringContaining('ENOENT'),
    })
    expect((await verifyAudit([variant('empty.jsonl', '')], KEY)).firstProblem).toMatchObject({
      reason: 'the file has no entries',
    })
  })
})

describe('pseudonymise', () => {
  it('is a keyed HMAC-SHA256, hex, truncated to 128 bits', async () => {
    const { createHmac } = await import('node:crypto')
    const p = pseudonymise('k', 'contact-7')
    expect(p).toBe(createHmac('sha256', 'k').update('contact-7').digest('hex').slice(0, 32))
    expect(pseudonymise('k', 'contact-7')).toBe(p)
    expect(pseudonymise('other', 'contact-7')).not.toBe(p)
    expect(pseudonymise('k', 7)).toBe(pseudonymise('k', '7'))
    expect(pseudonymiseAll('k', ['a', 'b'])).toEqual([pseudonymise('k', 'a'), pseudonymise('k', 'b')])
    expect(derivePseudonymKey('k')).toHaveLength(32)
    expect(derivePseudonymKey('k').equals(derivePseudonymKey('j'))).toBe(false)
  })
})
