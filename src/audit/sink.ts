// The few file operations the writer needs, behind an interface so tests can make them fail
// the way disks do (ENOSPC half-way through a write, EACCES on open) even when running as root.
import { access, open, rename } from 'node:fs/promises'

export interface AuditFileHandle {
  /** Like FileHandle.write: may write fewer bytes than asked. */
  write(buffer: Buffer, offset: number, length: number): Promise<{ bytesWritten: number }>
  sync(): Promise<void>
  close(): Promise<void>
}

export interface AuditFs {
  /** Opens `path` for appending, creating it if missing. */
  open(path: string): Promise<AuditFileHandle>
  rename(from: string, to: string): Promise<void>
  exists(path: string): Promise<boolean>
}

/** Audit files hold account ids: owner read-write, group read (a log shipper), nobody else. */
const FILE_MODE = 0o640

export const nodeAuditFs: AuditFs = {
  open: (path) => open(path, 'a', FILE_MODE),
  rename: (from, to) => rename(from, to),
  exists: (path) =>
    access(path).then(
      () => true,
      () => false,
    ),
}
