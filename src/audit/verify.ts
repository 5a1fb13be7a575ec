// Verifies a trail: every line's bytes, every hash, every link, across rotated files, streaming.
import { createHash, type Hash } from 'node:crypto'
import {
  AUDIT_FORMAT,
  type AuditEntry,
  type AuditKey,
  entryShapeProblem,
  GENESIS_PREV,
  recomputeHash,
} from './entry.js'
import { readLines, type RawLine } from './lines.js'

export interface AuditProblem {
  file: string
  /** 1-based line number in `file` (0: the file could not be read at all). */
  line: number
  /** The seq written on the offending line, or the seq expected there when it has none. */
  seq: number
  reason: string
}

export interface AuditWarning {
  file: string
  line: number
  message: string
}

export interface VerifyResult {
  ok: boolean
  /** Entries verified (up to the first problem when there is one). */
  entries: number
  /** The last entry that verified. */
  last?: { seq: number; hash: string; file: string }
  /** Set when the first file given starts with a `rotated` entry: the files before it were not checked. */
  continuesFrom?: { file: string | null; seq: number; hash: string }
  /** Lines a crashed writer left half-written, acknowledged by the entry after them (not tampering). */
  warnings: AuditWarning[]
  firstProblem?: AuditProblem
  /** The trail is HMAC-keyed (audit.key) and no key was given: nothing could be checked past its genesis. */
  keyRequired?: boolean
}

/** Lines that are not entries at all, waiting for the entry that acknowledges them. */
interface Discarded {
  file: string
  line: number
  reason: string
  bytes: number
  lines: number
  digest: Hash
}

/**
 * Checks `files`, oldest first, as one chain. Any changed byte, deleted, inserted or reordered
 * line, torn or garbage line, missing rotated file or wrong key yields `ok: false` and the first
 * problem. Lines removed from the very end of the newest file cannot be seen from the files
 * alone: compare `last` with a hash recorded elsewhere (docs/audit.md, "Anchoring").
 */
export async function verifyAudit(files: readonly string[], key?: AuditKey): Promise<VerifyResult> {
  const result: VerifyResult = { ok: true, entries: 0, warnings: [] }
  let last: { seq: number; hash: string; file: string } | undefined
  let alg: string | undefined
  let discarded: Discarded | undefined

  const fail = (file: string, line: number, seq: number, reason: string): VerifyResult => {
    result.ok = false
    result.firstProblem = { file, line, seq, reason }
    if (last) result.last = last
    return result
  }

  for (const [index, file] of files.entries()) {
    const isLastFile = index === files.length - 1
    let entriesInFile = 0
    let lines: AsyncGenerator<RawLine>
    try {
      lines = readLines(file)
      for await (const raw of lines) {
        const expectedSeq = last ? last.seq + 1 : 1
        if (raw.tooLong) return fail(file, raw.number, expectedSeq, 'line longer than 1 MiB: not an audit entry')
        if (!raw.terminated) {
          const why = isLastFile
            ? 'the last line has no newline: a write was torn by a crash, or the file was truncated'
            : 'a rotated file ends in a torn line'
          return fail(file, raw.number, expectedSeq, why)
        }

        let parsed: unknown
        let badReason: string | undefined
        try {
          parsed = JSON.parse(raw.bytes.toString('utf8'))
          badReason = entryShapeProblem(parsed)
        } catch {
          badReason = 'not valid JSON'
        }
        if (badReason !== undefined) {
          // Possibly a torn write that a restarted writer acknowledged: collect it and let the
          // next entry decide.
          if (!discarded)
            discarded = { file, line: raw.number, reason: badReason, bytes: 0, lines: 0, digest: createHash('sha256') }
          else if (discarded.file !== file)
            return fail(
              discarded.file,
              discarded.line,
              expectedSeq,
              `${discarded.reason} (garbage at the end of a rotated file)`,
            )
          if (discarded.lines > 0) {
            discarded.digest.update('\n')
            discarded.bytes += 1
          }
          discarded.digest.update(raw.bytes)
          discarded.bytes += raw.bytes.length
          discarded.lines++
          continue
        }

        const entry = parsed as AuditEntry
        // The writer writes exactly JSON.stringify of the parsed entry; anything else (spaces,
        // escapes, key order) was edited in, even when it parses to the same values.
        if (!Buffer.from(JSON.stringify(entry), 'utf8').equals(raw.bytes)) {
          return fail(
            file,
            raw.number,
            entry.seq,
            'the bytes of the line differ from what the writer writes for this entry (edited)',
          )
        }
        if (typeof entry.alg === 'string' && (entry.type === 'genesis' || entry.type === 'rotated')) alg = entry.alg
        if (recomputeHash(entry, key) !== entry.hash) {
          // Not tampering that the files show: the trail is keyed and the verifier has no key.
          if (alg === 'hmac-sha256' && key === undefined) result.keyRequired = true
          return fail(file, raw.number, entry.seq, hashReason(alg, key))
        }

        const problem = discardProblem(entry, discarded)
        if (problem)
          return discarded
            ? fail(discarded.file, discarded.line, expectedSeq, problem)
            : fail(file, raw.number, entry.seq, problem)
        if (discarded) {
          result.warnings.push({
            file,
            line: discarded.line,
            message: `${discarded.lines} line(s), ${discarded.bytes} bytes, left by an interrupted write; acknowledged by seq ${entry.seq} (line ${raw.number})`,
          })
          discarded = undefined
        }

        const linkProblem = chainProblem(entry, last, entriesInFile === 0, index === 0)
        if (linkProblem) return fail(file, raw.number, entry.seq, linkProblem)
        if (!last && entry.type === 'rotated') {
          result.continuesFrom = {
            file: typeof entry.previousFile === 'string' ? entry.previousFile : null,
            seq: entry.seq - 1,
            hash: entry.prev,
          }
        }
        last = { seq: entry.seq, hash: entry.hash, file }
        entriesInFile++
        result.entries++
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      return fail(file, 0, last ? last.seq + 1 : 1, `cannot read the file: ${e.code ?? e.message}`)
    }
    if (entriesInFile === 0 && !discarded) return fail(file, 1, last ? last.seq + 1 : 1, 'the file has no entries')
  }
  if (discarded)
    return fail(discarded.file, discarded.line, last ? last.seq + 1 : 1, `${discarded.reason}, and no entry after it`)
  if (files.length === 0) return fail('', 0, 1, 'no files given')
  if (last) result.last = last
  return result
}

function hashReason(alg: string | undefined, key: AuditKey | undefined): string {
  if (alg === 'hmac-sha256' && key === undefined) return 'hash mismatch: the trail is HMAC-keyed and no key was given'
  if (alg === 'sha256' && key !== undefined) return 'hash mismatch: the trail is not keyed but a key was given'
  return key === undefined
    ? 'hash mismatch: the entry was changed'
    : 'hash mismatch: the entry was changed, or the key is wrong'
}

/** A writer that found half-written lines on restart records their size and SHA-256 in the next entry. */
function discardProblem(entry: AuditEntry, discarded: Discarded | undefined): string | undefined {
  const claims = entry.discardedBytes !== undefined || entry.discardedSha256 !== undefined
  if (!discarded) return claims ? 'the entry acknowledges discarded lines that are not there (deleted)' : undefined
  if (!claims) return discarded.reason
  if (entry.discardedBytes !== discarded.bytes || entry.discardedSha256 !== discarded.digest.copy().digest('hex')) {
    return `${discarded.reason}, and the lines differ from what seq ${entry.seq} acknowledges (changed)`
  }
  return undefined
}

function chainProblem(
  entry: AuditEntry,
  last: { seq: number; hash: string; file: string } | undefined,
  firstInFile: boolean,
  firstFile: boolean,
): string | undefined {
  if (entry.type === 'genesis') {
    if (last || entry.seq !== 1 || entry.prev !== GENESIS_PREV) return 'a genesis entry in the middle of the chain'
    if (entry.format !== AUDIT_FORMAT) return `unknown audit format ${String(entry.format)}`
    return undefined
  }
  if (entry.type === 'rotated' && !firstInFile) return 'a rotated entry that is not the first of its file'
  if (!firstFile && firstInFile && entry.type !== 'rotated') return 'the file does not start with a rotated entry'
  if (!last) {
    if (entry.type === 'rotated') return undefined
    return 'the trail starts neither with a genesis nor with a rotated entry (lines before it deleted?)'
  }
  if (entry.seq !== last.seq + 1) {
    if (firstInFile) {
      const from = typeof entry.previousFile === 'string' ? ` (this file continues from ${entry.previousFile})` : ''
      return `gap: expected seq ${last.seq + 1} after ${last.file}, found ${entry.seq}: a file is missing${from}`
    }
    if (entry.seq <= last.seq) return `expected seq ${last.seq + 1}, found ${entry.seq}: lines reordered or repeated`
    return `expected seq ${last.seq + 1}, found ${entry.seq}: ${entry.seq - last.seq - 1} entr${entry.seq - last.seq - 1 === 1 ? 'y' : 'ies'} missing`
  }
  if (entry.prev !== last.hash) return `prev does not match the hash of seq ${last.seq}`
  return undefined
}

/**
 * Orders trail files oldest first by the seq of their first line, so `audit.jsonl*` (which a
 * shell sorts with the live file first) can be passed as is. Unreadable files keep their place
 * at the end, where verification reports them.
 */
export async function orderAuditFiles(files: readonly string[]): Promise<string[]> {
  const keyed = await Promise.all(
    files.map(async (file, i) => {
      let seq = Number.POSITIVE_INFINITY
      try {
        for await (const raw of readLines(file)) {
          const parsed = JSON.parse(raw.bytes.toString('utf8')) as { seq?: unknown }
          if (Number.isSafeInteger(parsed.seq)) seq = parsed.seq as number
          break
        }
      } catch {
        // Left for verifyAudit to report.
      }
      return { file, seq, i }
    }),
  )
  return keyed.sort((a, b) => a.seq - b.seq || a.i - b.i).map((k) => k.file)
}
