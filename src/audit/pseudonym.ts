// Record ids in the audit (and logs) as keyed pseudonyms: the trail can show that account A read
// record X — to someone who holds the key and asks about X — without listing the records.
import { createHmac } from 'node:crypto'
import type { AuditKey } from './entry.js'

/** Hex characters kept: 16 bytes (128 bits), enough that two ids never share a pseudonym. */
export const PSEUDONYM_HEX_LENGTH = 32

/** HMAC-SHA256(key, UTF-8 of the id), hex, first 32 characters. The same id and key give the same pseudonym. */
export function pseudonymise(key: AuditKey, recordId: string | number): string {
  return createHmac('sha256', key).update(String(recordId), 'utf8').digest('hex').slice(0, PSEUDONYM_HEX_LENGTH)
}

/** `pseudonymise` over a list, order kept. */
export function pseudonymiseAll(key: AuditKey, recordIds: readonly (string | number)[]): string[] {
  return recordIds.map((id) => pseudonymise(key, id))
}

/**
 * A pseudonym key derived from the audit key, for when only one secret is configured. The label
 * keeps the two uses apart: entry hashes are HMACs of JSON objects (they start with "{"), so the
 * derived key never appears in the trail as some entry's hash.
 */
export function derivePseudonymKey(auditKey: AuditKey): Buffer {
  return createHmac('sha256', auditKey).update('sluice pseudonym key v1', 'utf8').digest()
}
