// The audit trail: append-only, hash-chained JSON lines (docs/audit.md).
export { AUDIT_FORMAT, canonicalJson, GENESIS_PREV, type AuditAlg, type AuditEntry, type AuditKey } from './entry.js'
export { derivePseudonymKey, PSEUDONYM_HEX_LENGTH, pseudonymise, pseudonymiseAll } from './pseudonym.js'
export type { AuditFileHandle, AuditFs } from './sink.js'
export {
  AuditTrail,
  type AuditError,
  type AuditLogger,
  type AuditState,
  type AuditTrailOptions,
  type FsyncPolicy,
} from './trail.js'
export { orderAuditFiles, verifyAudit, type AuditProblem, type AuditWarning, type VerifyResult } from './verify.js'
