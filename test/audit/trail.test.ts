import { appendFileSync, existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  AuditTrail,
  GENESIS_PREV,
  orderAuditFiles,
  verifyAudit,
  type AuditTrailOptions,
} from '../../src/audit/index.js'
import { flakyFs, recordingLogger, removeTempDirs, tempDir, until } from './helpers.js'

afterAll(removeTempDirs)

const entries = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>)

async function writeTrail(options: Partial<AuditTrailOptions> & { file: string }, n: number, type = 'decision') {
  const trail = await AuditTrail.open({ fsync: 'never', ...options })
  for (let i = 0; i < n; i++)
    expect(trail.append(type, { account: `acct-${i % 3}`, route: 'contact', n: i })).toBe(true)
  await trail.close()
  return trail
}

describe('AuditTrail', () => {
  it('writes a chain that verifies, and continues it after a reopen', async () => {
    const file = join(tempDir(), 'audit.jsonl')
    await writeTrail({ file }, 10)
    const first = entries(file)
    expect(first).toHaveLength(11)
    expect(first[0]).toMatchObject({ seq: 1, type: 'genesis', prev: GENESIS_PREV, alg: 'sha256', format: 1 })
    expect(first[1]).toMatchObject({
      seq: 2,
      type: 'decision',
      account: 'acct-0',
      route: 'contact',
      n: 0,
      prev: first[0]?.hash,
    })
    expect(Object.keys(first[1] ?? {})).toEqual(['seq', 'time', 'type', 'account', 'route', 'n', 'prev', 'hash'])

    const trail = await AuditTrail.open({ file })
    expect(trail.state().head).toEqual({ seq: 11, hash: first[10]?.hash })
    trail.append('unlock', { account: 'acct-1', by: 'admin' })
    await trail.close()
    const all = entries(file)
    expect(all).toHaveLength(12)
    expect(all[11]).toMatchObject({ seq: 12, type: 'unlock', prev: first[10]?.hash })

    const result = await verifyAudit([file])
    expect(result).toMatchObject({ ok: true, entries: 12, last: { seq: 12, hash: all[11]?.hash, file } })
    expect(result.warnings).toEqual([])
  })

  it('keys the chain with HMAC when given a key; verification needs that key', async () => {
    const file = join(tempDir(), 'audit.jsonl')
    await writeTrail({ file, key: 'k'.repeat(32) }, 3)
    expect(entries(file)[0]).toMatchObject({ alg: 'hmac-sha256' })
    expect((await verifyAudit([file], 'k'.repeat(32))).ok).toBe(true)

    const noKey = await verifyAudit([file])
    expect(noKey.firstProblem).toMatchObject({
      line: 1,
      seq: 1,
      reason: expect.stringContaining('HMAC-keyed and no key was given'),
    })
    const wrongKey = await verifyAudit([file], 'x'.repeat(32))
    expect(wrongKey.firstProblem).toMatchObject({ line: 1, reason: expect.stringContaining('key is wrong') })
    const keyForUnkeyed = join(tempDir(), 'plain.jsonl')
    await writeTrail({ file: keyForUnkeyed }, 1)
    expect((await verifyAudit([keyForUnkeyed], 'k')).firstProblem?.reason).toContain('not keyed')

    await expect(AuditTrail.open({ file, key: 'x'.repeat(32) })).rejects.toMatchObject({ code: 'SLUICE_ERR_AUDIT_KEY' })
  })

  it('fsyncs on every batch with fsync: always, and by interval', async () => {
    for (const fsync of ['always', 'interval'] as const) {
      const file = join(tempDir(), 'audit.jsonl')
      const trail = await AuditTrail.open({ file, fsync, fsyncIntervalMs: 10 })
      for (let i = 0; i < 50; i++) trail.append('decision', { i })
      await trail.flush()
      expect(entries(file)).toHaveLength(51)
      expect(trail.state()).toMatchObject({ healthy: true, backlog: 0, written: 51 })
      await trail.close()
    }
  })

  it('records entries it cannot serialise as invalid instead of breaking the chain', async () => {
    const file = join(tempDir(), 'audit.jsonl')
    const log = recordingLogger()
    const trail = await AuditTrail.open({ file, logger: log })
    trail.append('decision', { big: 1n })
    trail.append('decision', { seq: 99 })
    trail.append('decision', { when: new Date(0), skip: undefined, nested: { b: 1, a: [1, 'x'] } })
    await trail.close()
    const all = entries(file)
    expect(all.map((e) => e.type)).toEqual(['genesis', 'invalid', 'invalid', 'decision'])
    expect(all[2]).toMatchObject({ originalType: 'decision', error: expect.stringContaining('reserved keys: seq') })
    expect(all[3]).toMatchObject({ when: '1970-01-01T00:00:00.000Z', nested: { b: 1, a: [1, 'x'] } })
    expect('skip' in (all[3] ?? {})).toBe(false)
    expect((await verifyAudit([file])).ok).toBe(true)
    expect(log.lines.filter((l) => l.level === 'error')).toHaveLength(2)
  })

  it('refuses to start when the file cannot be opened for appending', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'not-a-dir'), '')
    // A path under a file fails with ENOTDIR, even for root.
    await expect(AuditTrail.open({ file: join(dir, 'not-a-dir', 'audit.jsonl') })).rejects.toMatchObject({
      code: 'SLUICE_ERR_AUDIT_OPEN',
    })
  })
})

describe('torn last line (a crash during a write)', () => {
  it('is reported by verify, then acknowledged by a recovered entry when the writer restarts', async () => {
    const file = join(tempDir(), 'audit.jsonl')
    await writeTrail({ file }, 3)
    appendFileSync(file, '{"seq":5,"time":"2025-01-01T00:00:00.000Z","ty')
    const torn = await verifyAudit([file])
    expect(torn.firstProblem).toMatchObject({ line: 5, seq: 5, reason: expect.stringContaining('no newline') })

    const log = recordingLogger()
    const trail = await AuditTrail.open({ file, logger: log })
    trail.append('decision', { after: true })
    await trail.close()
    const lines = readFileSync(file, 'utf8').split('\n')
    expect(lines[4]).toBe('{"seq":5,"time":"2025-01-01T00:00:00.000Z","ty')
    expect(JSON.parse(lines[5] ?? '')).toMatchObject({
      seq: 5,
      type: 'recovered',
      discardedBytes: 46,
      discardedLines: 1,
    })
    expect(JSON.parse(lines[6] ?? '')).toMatchObject({ seq: 6, after: true })
    expect(log.lines.some((l) => l.level === 'error' && l.msg?.includes('torn line'))).toBe(true)

    const result = await verifyAudit([file])
    expect(result).toMatchObject({ ok: true, entries: 6 })
    expect(result.warnings).toEqual([{ file, line: 5, message: expect.stringContaining('acknowledged by seq 5') }])

    // The acknowledged bytes are pinned by their hash: changing them is tampering.
    writeFileSync(file, readFileSync(file, 'utf8').replace('"ty\n', '"tz\n'))
    expect((await verifyAudit([file])).firstProblem).toMatchObject({
      line: 5,
      reason: expect.stringContaining('differ from what seq 5 acknowledges'),
    })
  })

  it('handles a file holding nothing but a torn first line', async () => {
    const file = join(tempDir(), 'audit.jsonl')
    writeFileSync(file, '{"seq":1,"ti')
    await writeTrail({ file }, 1)
    const lines = readFileSync(file, 'utf8').split('\n')
    expect(JSON.parse(lines[1] ?? '')).toMatchObject({ seq: 1, type: 'genesis', discardedBytes: 12 })
    const result = await verifyAudit([file])
    expect(result).toMatchObject({ ok: true, entries: 2 })
    expect(result.warnings).toHaveLength(1)
  })
})

describe('rotation', () => {
  it('starts each file from the last hash of the previous one; a missing file is a gap', async () => {
    const dir = tempDir()
    const file = join(dir, 'audit.jsonl')
    let t = Date.parse('2025-01-01T00:00:00Z')
    await writeTrail({ file, maxBytes: 600, batchSize: 2, now: () => (t += 1000) }, 30)
    const names = readdirSync(dir).sort()
    expect(names.length).toBeGreaterThan(3)
    // The shell's order (live file first); verification orders by seq.
    const all = await orderAuditFiles(names.map((n) => join(dir, n)))
    expect(all[all.length - 1]).toBe(file)
    const result = await verifyAudit(all)
    expect(result).toMatchObject({ ok: true, last: { file } })
    expect(result.entries).toBe(31 + names.length - 1)

    const second = entries(all[1] as string)[0]
    const firstFile = entries(all[0] as string)
    expect(second).toMatchObject({
      type: 'rotated',
      previousFile: names.find((n) => all[0]?.endsWith(n)),
      previousSeq: firstFile.length,
      prev: firstFile[firstFile.length - 1]?.hash,
    })

    const withoutMiddle = all.filter((_, i) => i !== 1)
    const gap = await verifyAudit(withoutMiddle)
    expect(gap.firstProblem).toMatchObject({
      file: all[2],
      line: 1,
      reason: expect.stringMatching(/^gap: expected seq \d+ .*a file is missing/),
    })

    // The live file alone verifies, and says where it continues from.
    const alone = await verifyAudit([file])
    expect(alone.ok).toBe(true)
    expect(alone.continuesFrom?.file).toBe(names.find((n) => all[all.length - 2]?.endsWith(n)))
  })

  it('continues from the newest rotated file when the live file is missing', async () => {
    const dir = tempDir()
    const file = join(dir, 'audit.jsonl')
    await writeTrail({ file }, 5)
    // The state a crash between the rename and the first write of the new file leaves.
    renameSync(file, `${file}.2025-01-01T00-00-00-000Z`)
    await writeTrail({ file }, 1)
    const result = await verifyAudit(await orderAuditFiles(readdirSync(dir).map((n) => join(dir, n))))
    expect(result).toMatchObject({ ok: true, entries: 8 })
    expect(entries(file)[0]).toMatchObject({
      seq: 7,
      type: 'rotated',
      previousFile: 'audit.jsonl.2025-01-01T00-00-00-000Z',
      previousSeq: 6,
    })
  })
})

describe('a failing sink', () => {
  it('keeps every accepted entry through a full disk and writes them, in order, when it recovers', async () => {
    const file = join(tempDir(), 'audit.jsonl')
    const fs = flakyFs()
    const log = recordingLogger()
    const trail = await AuditTrail.open({ file, fs, logger: log, fsync: 'always', retry: { initialMs: 5, maxMs: 20 } })
    for (let i = 0; i < 5; i++) trail.append('decision', { i })
    await trail.flush()

    fs.failing = 'ENOSPC'
    for (let i = 5; i < 25; i++) expect(trail.append('decision', { i })).toBe(true)
    await until(() => fs.attempts >= 4, 'several failed attempts')
    const failing = trail.state()
    expect(failing).toMatchObject({ healthy: false, dropped: 0, lastError: { code: 'ENOSPC' } })
    expect(failing.backlog).toBeGreaterThan(0)
    expect(log.lines.some((l) => l.level === 'error' && l.msg?.startsWith('AUDIT SINK FAILING'))).toBe(true)

    fs.failing = undefined
    await trail.flush()
    expect(trail.state()).toMatchObject({ healthy: true, backlog: 0 })
    expect(log.lines.some((l) => l.level === 'warn' && l.msg?.includes('recovered'))).toBe(true)
    await trail.close()

    const all = entries(file)
    expect(all.filter((e) => e.type === 'decision').map((e) => e.i)).toEqual(Array.from({ length: 25 }, (_, i) => i))
    const result = await verifyAudit([file])
    expect(result).toMatchObject({ ok: true, entries: 26, warnings: [] })
  })

  it('retries a rotation that cannot open or rename, then continues the chain', async () => {
    const dir = tempDir()
    const file = join(dir, 'audit.jsonl')
    const fs = flakyFs()
    const trail = await AuditTrail.open({ file, fs, maxBytes: 200, retry: { initialMs: 5, maxMs: 20 } })
    trail.append('decision', { i: 0 })
    await trail.flush()
    fs.failing = 'EACCES'
    for (let i = 1; i < 10; i++) trail.append('decision', { i })
    await until(() => fs.attempts >= 3, 'failed rotations')
    expect(trail.state().healthy).toBe(false)
    fs.failing = undefined
    await trail.close()
    const files = await orderAuditFiles(readdirSync(dir).map((n) => join(dir, n)))
    expect(files.length).toBeGreaterThan(1)
    expect(await verifyAudit(files)).toMatchObject({ ok: true })
    const decisions = files.flatMap(entries).filter((e) => e.type === 'decision')
    expect(decisions.map((e) => e.i)).toEqual(Array.from({ length: 10 }, (_, i) => i))
  })

  it('refuses new entries when the queue is full, counts and logs them, and records the gap', async () => {
    const file = join(tempDir(), 'audit.jsonl')
    const fs = flakyFs()
    const log = recordingLogger()
    const trail = await AuditTrail.open({ file, fs, logger: log, queueLimit: 10, retry: { initialMs: 5, maxMs: 20 } })
    await trail.flush()
    fs.failing = 'EIO'
    const accepted = Array.from({ length: 15 }, (_, i) => trail.append('decision', { i }))
    expect(accepted.filter(Boolean)).toHaveLength(10)
    expect(accepted.slice(10)).toEqual([false, false, false, false, false])
    expect(trail.state()).toMatchObject({ dropped: 5, backlog: 10 })
    expect(log.lines.filter((l) => l.msg?.startsWith('AUDIT QUEUE FULL'))).toHaveLength(1)

    fs.failing = undefined
    await trail.flush()
    expect(trail.append('decision', { i: 'after' })).toBe(true)
    await trail.close()
    const all = entries(file)
    expect(all.filter((e) => e.type === 'decision').map((e) => e.i)).toEqual([
      ...Array.from({ length: 10 }, (_, i) => i),
      'after',
    ])
    expect(all.find((e) => e.type === 'dropped')).toMatchObject({ count: 5, since: expect.any(String) })
    expect((await verifyAudit([file])).ok).toBe(true)
  })

  it('says how many accepted entries were lost when close() hits its deadline', async () => {
    const file = join(tempDir(), 'audit.jsonl')
    const fs = flakyFs()
    const log = recordingLogger()
    const trail = await AuditTrail.open({ file, fs, logger: log, retry: { initialMs: 5, maxMs: 10 } })
    await trail.flush()
    fs.failing = 'EROFS'
    trail.append('decision', {})
    trail.append('decision', {})
    expect(await trail.close({ timeoutMs: 50 })).toEqual({ unwritten: 2 })
    expect(
      log.lines.some((l) => l.level === 'error' && l.msg?.includes('2 accepted entries could not be written')),
    ).toBe(true)
    expect(trail.append('decision', {})).toBe(false)
  })

  it.runIf(existsSync('/dev/full'))('reports a real ENOSPC (/dev/full) as unhealthy', async () => {
    const trail = await AuditTrail.open({ file: '/dev/full', retry: { initialMs: 5, maxMs: 10 } })
    trail.append('decision', {})
    await until(() => !trail.state().healthy, 'the failure')
    expect(trail.state()).toMatchObject({ healthy: false, backlog: 1, lastError: { code: 'ENOSPC' } })
    expect(await trail.close({ timeoutMs: 20 })).toEqual({ unwritten: 1 })
  })
})
