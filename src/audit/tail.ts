// Where an existing trail ends: the last entry that is whole and verifies, and what follows it
// (a line torn by a crash). Reads only the end of the file, however large it is.
import { createHash } from 'node:crypto'
import { open, readdir } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { SluiceError } from '../errors.js'
import { type AuditEntry, type AuditKey, entryShapeProblem, recomputeHash } from './entry.js'
import { MAX_LINE_BYTES } from './lines.js'

export interface TrailTail {
  /** The last valid entry, absent when the file holds none (empty, or only torn bytes). */
  last?: { seq: number; hash: string }
  size: number
  /** Bytes after the last valid entry: torn or garbage lines a crash left behind. */
  discarded?: {
    /** Their length and SHA-256, without the final "\n" if there is one (docs/audit.md). */
    bytes: number
    sha256: string
    lines: number
    /** The file does not end in "\n": the writer must end the torn line first. */
    needsNewline: boolean
  }
}

/** A torn tail is at most one batch of entries; more than this is not a crash, it is damage. */
const TAIL_WINDOW = 4 * MAX_LINE_BYTES

/** Reads the end of `file`; undefined when it does not exist. */
export async function readTrailTail(file: string, key: AuditKey | undefined): Promise<TrailTail | undefined> {
  let handle
  try {
    handle = await open(file, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw openError(file, err)
  }
  let size: number
  let start: number
  let tail: Buffer
  try {
    size = (await handle.stat()).size
    if (size === 0) return { size }
    start = Math.max(0, size - TAIL_WINDOW)
    const buf = Buffer.alloc(size - start)
    const { bytesRead } = await handle.read(buf, 0, buf.length, start)
    tail = buf.subarray(0, bytesRead)
  } catch (err) {
    throw openError(file, err)
  } finally {
    await handle.close()
  }
  // Read and closed: what the bytes say (a wrong key, damage) is not an error opening the file.
  return scanTail(file, tail, start, size, key)
}

function scanTail(file: string, buf: Buffer, start: number, size: number, key: AuditKey | undefined): TrailTail {
  // Line boundaries in buf: ends[i] is the index of the i-th "\n".
  const ends: number[] = []
  for (let i = buf.indexOf(0x0a); i !== -1; i = buf.indexOf(0x0a, i + 1)) ends.push(i)
  // When the window starts mid-file, the bytes before its first "\n" are part of a line we
  // cannot see whole; never treat them as an entry.
  const firstUsable = start > 0 ? 1 : 0
  for (let i = ends.length - 1; i >= firstUsable; i--) {
    const lineStart = i === 0 ? 0 : (ends[i - 1] as number) + 1
    const lineEnd = ends[i] as number
    const bytes = buf.subarray(lineStart, lineEnd)
    const entry = parseEntry(bytes)
    if (!entry) continue
    if (!Buffer.from(JSON.stringify(entry), 'utf8').equals(bytes) || recomputeHash(entry, key) !== entry.hash) {
      throw new SluiceError(
        'SLUICE_ERR_AUDIT_KEY',
        `the last entry of the audit file ${file} (seq ${entry.seq}) does not verify with the configured key: the key is wrong (or missing, or given when the trail is unkeyed), or the file was edited. ` +
          `Check it with \`sluice audit verify ${file}\`; to start a new trail, move the file aside.`,
      )
    }
    return withDiscarded({ last: { seq: entry.seq, hash: entry.hash }, size }, buf.subarray(lineEnd + 1))
  }
  if (start > 0) {
    throw new SluiceError(
      'SLUICE_ERR_AUDIT_CORRUPT',
      `the last ${TAIL_WINDOW} bytes of the audit file ${file} hold no valid entry: the file is damaged. Check it with \`sluice audit verify ${file}\` and move it aside to start a new trail.`,
    )
  }
  return withDiscarded({ size }, buf)
}

function withDiscarded(tail: TrailTail, rest: Buffer): TrailTail {
  if (rest.length === 0) return tail
  const needsNewline = rest[rest.length - 1] !== 0x0a
  const content = needsNewline ? rest : rest.subarray(0, rest.length - 1)
  let lines = 1
  for (let i = content.indexOf(0x0a); i !== -1; i = content.indexOf(0x0a, i + 1)) lines++
  tail.discarded = {
    bytes: content.length,
    sha256: createHash('sha256').update(content).digest('hex'),
    lines,
    needsNewline,
  }
  return tail
}

function parseEntry(bytes: Buffer): AuditEntry | undefined {
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'))
    return entryShapeProblem(value) === undefined ? (value as AuditEntry) : undefined
  } catch {
    return undefined
  }
}

/**
 * Rotated files are named `<file>.<UTC time>` (see rotatedName); the newest is the one whose name
 * sorts last. Used when the live file is missing or empty, so a crash between the rename and the
 * first write of the new file does not restart the chain.
 */
export async function latestRotated(file: string): Promise<string | undefined> {
  const prefix = `${basename(file)}.`
  let names: string[]
  try {
    names = await readdir(dirname(file))
  } catch {
    return undefined
  }
  const rotated = names.filter((n) => n.startsWith(prefix) && ROTATED_SUFFIX.test(n.slice(prefix.length))).sort()
  const newest = rotated[rotated.length - 1]
  return newest === undefined ? undefined : join(dirname(file), newest)
}

const ROTATED_SUFFIX = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z(?:-\d+)?$/

/** `audit.jsonl` → `audit.jsonl.2025-01-31T12-00-00-123Z`: sorts by time, no ':' for other file systems. */
export function rotatedName(file: string, time: number, attempt: number): string {
  const stamp = new Date(time).toISOString().replace(/[:.]/g, '-')
  return `${file}.${stamp}${attempt > 0 ? `-${attempt}` : ''}`
}

function openError(file: string, err: unknown): SluiceError {
  const e = err as NodeJS.ErrnoException
  return new SluiceError(
    'SLUICE_ERR_AUDIT_OPEN',
    `cannot read the audit file ${file} to continue its chain: ${e.code ?? e.message}. Fix its permissions, or move it aside to start a new trail.`,
  )
}
