// One audit entry: its canonical form, its hash, and the shape a verifier accepts.
// docs/audit.md describes the same procedure for people who verify a trail without sluice.
import { createHash, createHmac } from 'node:crypto'

/** The `prev` of the very first entry of a trail: 64 zeros (no entry before it). */
export const GENESIS_PREV = '0'.repeat(64)

/** Bumped if the line format or the hash procedure ever changes. */
export const AUDIT_FORMAT = 1

/** Keys the trail writes itself; `fields` passed to `append` may not use them. */
export const RESERVED_KEYS: ReadonlySet<string> = new Set(['seq', 'time', 'type', 'prev', 'hash'])

/** Entry types the trail writes on its own (the rest are the caller's). */
export type TrailEntryType = 'genesis' | 'rotated' | 'recovered' | 'dropped' | 'invalid'

export type AuditAlg = 'sha256' | 'hmac-sha256'

export interface AuditEntry {
  seq: number
  time: string
  type: string
  prev: string
  hash: string
  [field: string]: unknown
}

/** An audit key as configured: a string (UTF-8) or raw bytes. */
export type AuditKey = string | Buffer

export function algOf(key: AuditKey | undefined): AuditAlg {
  return key === undefined ? 'sha256' : 'hmac-sha256'
}

/**
 * JSON with object keys sorted (by UTF-16 code units, JavaScript's default sort) at every
 * depth, no whitespace, array order kept. The input must already be plain JSON (the result of
 * JSON.parse), so there are no undefined values, Dates or NaN to disagree about.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const obj = value as Record<string, unknown>
  const keys = Object.keys(obj).sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`
}

/** hex SHA-256, or hex HMAC-SHA256 under `key`, of the canonical JSON of the entry without `hash`. */
export function entryHash(entryWithoutHash: Record<string, unknown>, key: AuditKey | undefined): string {
  const canonical = canonicalJson(entryWithoutHash)
  const h = key === undefined ? createHash('sha256') : createHmac('sha256', key)
  return h.update(canonical, 'utf8').digest('hex')
}

/**
 * Builds the line for one entry: `{seq, time, type, ...fields, prev, hash}` as JSON plus "\n".
 * The entry goes through JSON once first so that what is hashed is exactly what a reader parses
 * back (Dates become strings, undefined disappears); the hash is then appended as the last key.
 * Throws if `fields` cannot be serialised (a BigInt, a cycle). The caller keeps reserved keys
 * out of `fields`.
 */
export function serializeEntry(
  seq: number,
  time: string,
  type: string,
  fields: Record<string, unknown> | undefined,
  prev: string,
  key: AuditKey | undefined,
): { line: string; hash: string } {
  const plain = JSON.parse(JSON.stringify({ seq, time, type, ...fields, prev })) as Record<string, unknown>
  const hash = entryHash(plain, key)
  plain.hash = hash
  return { line: `${JSON.stringify(plain)}\n`, hash }
}

const HEX64 = /^[0-9a-f]{64}$/

/** The reason a parsed value is not an audit entry, or undefined if it has the right shape. */
export function entryShapeProblem(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not a JSON object'
  const e = value as Record<string, unknown>
  if (!Number.isSafeInteger(e.seq) || (e.seq as number) < 1) return 'seq is not a positive integer'
  if (typeof e.time !== 'string') return 'time is missing'
  if (typeof e.type !== 'string') return 'type is missing'
  if (typeof e.prev !== 'string' || !HEX64.test(e.prev)) return 'prev is not 64 lowercase hex digits'
  if (typeof e.hash !== 'string' || !HEX64.test(e.hash)) return 'hash is not 64 lowercase hex digits'
  return undefined
}

/** Recomputes an entry's hash from its parsed form. */
export function recomputeHash(entry: AuditEntry, key: AuditKey | undefined): string {
  const { hash: _hash, ...rest } = entry
  return entryHash(rest, key)
}
