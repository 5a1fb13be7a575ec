// Temp dirs, a recording logger and a file system that fails on demand (tests may run as root,
// where chmod does not stop writes).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AuditFileHandle, AuditFs, AuditLogger } from '../../src/audit/index.js'
import { nodeAuditFs } from '../../src/audit/sink.js'

const dirs: string[] = []

export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-audit-'))
  dirs.push(dir)
  return dir
}

export function removeTempDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
}

export interface LogLine {
  level: 'info' | 'warn' | 'error'
  obj: object
  msg: string | undefined
}

export function recordingLogger(): AuditLogger & { lines: LogLine[] } {
  const lines: LogLine[] = []
  return {
    lines,
    info: (obj, msg) => void lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => void lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => void lines.push({ level: 'error', obj, msg }),
  }
}

/**
 * The real file system, except while `failing` is set: opens and renames fail with that code.
 * Unless it is EACCES (which an open descriptor does not notice), writes fail too: the first
 * write is short (half its bytes reach the disk, a torn line, as a filling disk leaves it: write(2)
 * reports the short count) and every later one fails with the code.
 */
export function flakyFs(): AuditFs & { failing: string | undefined; attempts: number; torn: boolean } {
  const fs = {
    failing: undefined as string | undefined,
    attempts: 0,
    torn: false,
    async open(path: string): Promise<AuditFileHandle> {
      if (fs.failing) {
        fs.attempts++
        throw errno(fs.failing, `open '${path}'`)
      }
      const real = await nodeAuditFs.open(path)
      return {
        async write(buffer, offset, length) {
          if (!fs.failing || fs.failing === 'EACCES') return real.write(buffer, offset, length)
          fs.attempts++
          const half = Math.floor(length / 2)
          if (!fs.torn && half > 0) {
            fs.torn = true
            return real.write(buffer, offset, half)
          }
          throw errno(fs.failing, 'write')
        },
        sync: () => {
          if (!fs.failing || fs.failing === 'EACCES') return real.sync()
          fs.attempts++
          return Promise.reject(errno(fs.failing, 'fsync'))
        },
        close: () => real.close(),
      }
    },
    rename: (from: string, to: string) => {
      if (!fs.failing) return nodeAuditFs.rename(from, to)
      fs.attempts++
      return Promise.reject(errno(fs.failing, `rename '${from}'`))
    },
    exists: (path: string) => nodeAuditFs.exists(path),
  }
  return fs
}

function errno(code: string, what: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${what}`), { code })
}

/** Polls `check` (bounded) until it holds; for state reached through timers. */
export async function until(check: () => boolean, what: string, tries = 500): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (check()) return
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`timed out waiting for ${what}`)
}
