// The audit trail writer. `append` only queues (the request path never waits for a disk);
// one writer loop serialises queued entries into the hash chain and writes them in batches.
// An entry it has accepted is kept until it is on disk: when the disk fails, the loop retries
// with backoff and the chain resumes exactly where the last complete write ended.
import { basename } from 'node:path'
import { SluiceError } from '../errors.js'
import { algOf, AUDIT_FORMAT, type AuditKey, GENESIS_PREV, RESERVED_KEYS, serializeEntry } from './entry.js'
import { MAX_LINE_BYTES } from './lines.js'
import { type AuditFileHandle, type AuditFs, nodeAuditFs } from './sink.js'
import { latestRotated, readTrailTail, rotatedName } from './tail.js'

/** pino's logger fits; so does anything with these three methods. */
export interface AuditLogger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

/**
 * When written entries are fsynced (docs/audit.md, "Durability"):
 * - `always`: after every batch, before flush() resolves. Survives power loss; costs one fsync
 *   per batch (batches grow under load, so not one per entry).
 * - `interval`: every `fsyncIntervalMs`. A power loss can lose that much; a crash of sluice alone
 *   loses nothing written (the kernel has it).
 * - `never`: the kernel decides; flush(), close() and rotation still fsync.
 */
export type FsyncPolicy = 'always' | 'interval' | 'never'

export interface AuditTrailOptions {
  /** The live file; rotated files are renamed next to it. */
  file: string
  /** Makes the chain an HMAC-SHA256 chain: nobody without the key can rewrite it consistently. */
  key?: AuditKey
  /** Default `interval`. */
  fsync?: FsyncPolicy
  /** Default 1000. */
  fsyncIntervalMs?: number
  /** Rotate once the live file reaches this size (it may exceed it by one batch). 0 (default): never. */
  maxBytes?: number
  /** Entries accepted but not yet written, at most. Default 10 000. */
  queueLimit?: number
  /**
   * Entries per write. Default 128. Serialising and hashing an entry takes ~20 µs on the event
   * loop; 128 keeps one batch to a few milliseconds of it.
   */
  batchSize?: number
  /** Backoff between attempts while the disk fails: doubles from `initialMs` up to `maxMs`. Defaults 100 and 5000. */
  retry?: { initialMs?: number; maxMs?: number }
  logger?: AuditLogger
  /** Milliseconds since the epoch; tests pass a fixed clock. */
  now?: () => number
  /** Tests inject a file system that fails. */
  fs?: AuditFs
}

export interface AuditError {
  code: string
  message: string
  time: string
}

/** What /readyz and the metrics need. */
export interface AuditState {
  file: string
  /** False while writes (or fsyncs) fail; entries are kept meanwhile. */
  healthy: boolean
  /** Accepted, not yet written. */
  backlog: number
  /** The queue is full: new entries are refused until the disk takes some. */
  refusing: boolean
  /** Refused because the queue was full (never accepted, so never written). */
  dropped: number
  /** Entries written since open (the trail's own entries included). */
  written: number
  /** The last entry serialised into the chain. */
  head: { seq: number; hash: string }
  lastError?: AuditError
  failingSince?: string
}

interface Queued {
  ordinal: number
  time: number
  type: string
  fields?: Record<string, unknown>
}

interface Batch {
  buf: Buffer
  written: number
  /** Entries in it (the trail's own ones included). */
  entries: number
  /** Queued items it carries (for the backlog). */
  items: number
  lastOrdinal: number
}

type Head = { type: 'genesis' | 'rotated' | 'recovered'; fields: Record<string, unknown> }

const SUMMARY_EVERY_MS = 10_000

export class AuditTrail {
  readonly file: string
  private readonly key: AuditKey | undefined
  private readonly fsyncPolicy: FsyncPolicy
  private readonly fsyncIntervalMs: number
  private readonly maxBytes: number
  private readonly queueLimit: number
  private readonly batchSize: number
  private readonly retryInitialMs: number
  private readonly retryMaxMs: number
  private readonly log: AuditLogger | undefined
  private readonly now: () => number
  private readonly fs: AuditFs

  private seq = 0
  private hash = GENESIS_PREV
  private size = 0
  private entriesInFile = 0
  private handle: AuditFileHandle | undefined
  /** The trail's own entry that must come first in the next batch. */
  private head: Head | undefined
  /** A torn line at the end of the file must be ended before anything else is written. */
  private prefix = ''
  private rotationDue = false

  private queue: Queued[] = []
  private batch: Batch | undefined
  private acceptedOrdinal = 0
  private writtenOrdinal = 0
  private waiters: { ordinal: number; resolve: () => void }[] = []

  private pumping = false
  private retryTimer: NodeJS.Timeout | undefined
  private syncTimer: NodeJS.Timeout | undefined
  private syncing: Promise<void> | undefined
  private dirty = false
  private closing = false
  private closed = false

  private healthy = true
  private failures = 0
  private failingSince: number | undefined
  private lastError: AuditError | undefined
  private lastFailureLog = 0
  private written = 0
  private dropped = 0
  private droppedEpisode = 0
  private droppedSince = 0
  private lastDropLog = 0

  private constructor(options: AuditTrailOptions) {
    this.file = options.file
    this.key = options.key
    this.fsyncPolicy = options.fsync ?? 'interval'
    this.fsyncIntervalMs = options.fsyncIntervalMs ?? 1000
    this.maxBytes = options.maxBytes ?? 0
    this.queueLimit = Math.max(1, options.queueLimit ?? 10_000)
    this.batchSize = Math.max(1, options.batchSize ?? 128)
    this.retryInitialMs = options.retry?.initialMs ?? 100
    this.retryMaxMs = options.retry?.maxMs ?? 5000
    this.log = options.logger
    this.now = options.now ?? Date.now
    this.fs = options.fs ?? nodeAuditFs
  }

  /**
   * Opens (or creates) the trail and continues its chain. Throws a SluiceError when the chain
   * cannot be continued (unreadable file, wrong key, damaged tail) or the file cannot be opened
   * for appending: better not to start than to run without an audit.
   */
  static async open(options: AuditTrailOptions): Promise<AuditTrail> {
    const trail = new AuditTrail(options)
    await trail.resume()
    return trail
  }

  private async resume(): Promise<void> {
    const alg = algOf(this.key)
    const tail = await readTrailTail(this.file, this.key)
    const discarded = tail?.discarded
      ? {
          discardedBytes: tail.discarded.bytes,
          discardedSha256: tail.discarded.sha256,
          discardedLines: tail.discarded.lines,
        }
      : {}
    if (tail?.discarded?.needsNewline) this.prefix = '\n'
    this.size = tail?.size ?? 0
    if (tail?.last) {
      this.seq = tail.last.seq
      this.hash = tail.last.hash
      this.entriesInFile = 1
      if (tail.discarded) this.head = { type: 'recovered', fields: discarded }
    } else {
      const previous = await this.previousFile()
      if (previous) {
        this.seq = previous.seq
        this.hash = previous.hash
        this.head = {
          type: 'rotated',
          fields: { previousFile: basename(previous.file), previousSeq: previous.seq, alg, ...discarded },
        }
      } else {
        this.head = { type: 'genesis', fields: { format: AUDIT_FORMAT, alg, ...discarded } }
      }
    }
    if (tail?.discarded) {
      this.log?.error(
        { event: 'sluice.audit.recovered', file: this.file, ...discarded },
        `audit file ${this.file} ended in a torn line (a crash during a write): keeping its bytes and recording a ${this.head?.type} entry after them`,
      )
    }
    try {
      this.handle = await this.fs.open(this.file)
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      throw new SluiceError(
        'SLUICE_ERR_AUDIT_OPEN',
        `cannot open the audit file ${this.file} for appending: ${e.code ?? e.message}. Check that its directory exists and that sluice may write there.`,
      )
    }
    if (this.fsyncPolicy === 'interval') {
      this.syncTimer = setInterval(() => void this.syncIfDirty(), this.fsyncIntervalMs)
      this.syncTimer.unref()
    }
    this.log?.info(
      { event: 'sluice.audit.opened', file: this.file, seq: this.seq, hash: this.hash },
      `audit trail ${this.file} continues at seq ${this.seq + 1}`,
    )
    if (this.head) this.kick()
  }

  private async previousFile(): Promise<{ file: string; seq: number; hash: string } | undefined> {
    const file = await latestRotated(this.file)
    if (!file) return undefined
    const tail = await readTrailTail(file, this.key)
    if (!tail?.last) {
      this.log?.error(
        { event: 'sluice.audit.broken', file },
        `the newest rotated audit file ${file} holds no valid entry: starting a new chain`,
      )
      return undefined
    }
    return { file, ...tail.last }
  }

  /**
   * Queues an entry and returns at once. `fields` are serialised later, by the writer: do not
   * change the object afterwards. Returns false when the entry is refused (queue full, or the
   * trail closed); refusals are counted in `dropped`, logged, and recorded in the trail as a
   * `dropped` entry once there is room again.
   */
  append(type: string, fields?: Record<string, unknown>): boolean {
    if (this.closing) {
      this.dropped++
      this.log?.error({ event: 'sluice.audit.dropped', type, reason: 'closed' }, 'audit entry after close: not written')
      return false
    }
    if (this.backlog() >= this.queueLimit) {
      this.refuse()
      return false
    }
    if (this.droppedEpisode > 0) this.recordDrops()
    this.queue.push({ ordinal: ++this.acceptedOrdinal, time: this.now(), type, ...(fields ? { fields } : {}) })
    this.kick()
    return true
  }

  /** Resolves once everything accepted before the call is written and fsynced. Waits while the disk fails. */
  async flush(): Promise<void> {
    if (this.closed) return
    const ordinal = this.acceptedOrdinal
    if (this.writtenOrdinal < ordinal || this.head || this.batch) {
      await new Promise<void>((resolve) => this.waiters.push({ ordinal, resolve }))
    }
    await this.syncNow()
  }

  /**
   * Stops accepting, writes what is queued (waiting at most `timeoutMs` for a failing disk),
   * fsyncs and closes. Returns how many accepted entries could not be written (and says so in the log).
   */
  async close(options: { timeoutMs?: number } = {}): Promise<{ unwritten: number }> {
    if (this.closed) return { unwritten: 0 }
    this.closing = true
    if (this.syncTimer) clearInterval(this.syncTimer)
    if (this.retryTimer) {
      // Shutting down: try once more now rather than after the backoff.
      clearTimeout(this.retryTimer)
      this.retryTimer = undefined
      void this.pump()
    }
    let timer: NodeJS.Timeout | undefined
    const timedOut = await Promise.race([
      this.flush().then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), options.timeoutMs ?? 5000))),
    ])
    clearTimeout(timer)
    this.closed = true
    if (this.retryTimer) clearTimeout(this.retryTimer)
    const unwritten = this.backlog()
    if (timedOut && unwritten > 0) {
      this.log?.error(
        { event: 'sluice.audit.lost', file: this.file, unwritten, lastError: this.lastError },
        `AUDIT: ${unwritten} accepted entries could not be written before shutdown; they are lost`,
      )
    }
    const handle = this.handle
    this.handle = undefined
    await handle?.close().catch(() => undefined)
    this.log?.info(
      { event: 'sluice.audit.closed', file: this.file, seq: this.seq, hash: this.hash },
      `audit trail closed at seq ${this.seq}, hash ${this.hash}`,
    )
    return { unwritten }
  }

  state(): AuditState {
    const state: AuditState = {
      file: this.file,
      healthy: this.healthy,
      backlog: this.backlog(),
      refusing: this.backlog() >= this.queueLimit,
      dropped: this.dropped,
      written: this.written,
      head: { seq: this.seq, hash: this.hash },
    }
    if (this.lastError) state.lastError = this.lastError
    if (this.failingSince !== undefined) state.failingSince = new Date(this.failingSince).toISOString()
    return state
  }

  private backlog(): number {
    return this.queue.length + (this.batch?.items ?? 0)
  }

  // ---- refusing entries -------------------------------------------------------------------

  private refuse(): void {
    this.dropped++
    this.droppedEpisode++
    const now = this.now()
    if (this.droppedEpisode === 1) this.droppedSince = now
    if (this.droppedEpisode === 1 || now - this.lastDropLog >= SUMMARY_EVERY_MS) {
      this.lastDropLog = now
      this.log?.error(
        {
          event: 'sluice.audit.dropped',
          file: this.file,
          dropped: this.dropped,
          backlog: this.backlog(),
          queueLimit: this.queueLimit,
          lastError: this.lastError,
        },
        `AUDIT QUEUE FULL (${this.queueLimit} entries waiting for the disk): new audit entries are refused, ${this.dropped} so far`,
      )
    }
  }

  /** The trail itself says that entries were refused here, once it accepts again. */
  private recordDrops(): void {
    this.queue.push({
      ordinal: ++this.acceptedOrdinal,
      time: this.now(),
      type: 'dropped',
      fields: { count: this.droppedEpisode, since: new Date(this.droppedSince).toISOString() },
    })
    this.droppedEpisode = 0
  }

  // ---- the writer loop --------------------------------------------------------------------

  private kick(): void {
    if (this.pumping || this.closed) return
    this.pumping = true
    setImmediate(() => void this.pump())
  }

  private async pump(): Promise<void> {
    this.pumping = true
    while (!this.closed && (this.batch || this.head || this.queue.length > 0)) {
      try {
        await this.prepareFile()
        this.batch ??= this.nextBatch()
        await this.writeBatch(this.batch)
        if (this.fsyncPolicy === 'always') await this.handle?.sync()
        this.batchDone(this.batch)
      } catch (err) {
        const delay = this.failed(err)
        if (this.closed) break
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined
          void this.pump()
        }, delay)
        // Retrying alone does not keep the process alive; close() does, with its deadline.
        this.retryTimer.unref()
        return
      }
    }
    this.pumping = false
    this.releaseWaiters()
  }

  private async prepareFile(): Promise<void> {
    if (this.rotationDue && !this.batch) await this.rotate()
    if (!this.handle) this.handle = await this.fs.open(this.file)
  }

  /** Each step can fail and be retried: the handle is closed, then the file renamed, then the next one opened. */
  private async rotate(): Promise<void> {
    if (this.handle) {
      await this.syncing
      await this.handle.sync()
      await this.handle.close().catch(() => undefined)
      this.handle = undefined
    }
    let target = rotatedName(this.file, this.now(), 0)
    for (let attempt = 1; await this.fs.exists(target); attempt++) target = rotatedName(this.file, this.now(), attempt)
    await this.fs.rename(this.file, target)
    this.rotationDue = false
    this.size = 0
    this.entriesInFile = 0
    this.head = {
      type: 'rotated',
      fields: { previousFile: basename(target), previousSeq: this.seq, alg: algOf(this.key) },
    }
    this.log?.info(
      { event: 'sluice.audit.rotated', file: this.file, rotatedTo: target, seq: this.seq },
      `audit file rotated to ${target}`,
    )
  }

  /** Serialises the next entries into the chain. From here on they are one buffer, written as is. */
  private nextBatch(): Batch {
    let text = this.prefix
    let entries = 0
    if (this.head) {
      text += this.serialize(this.now(), this.head.type, this.head.fields)
      entries++
    }
    const items = this.queue.splice(0, this.batchSize)
    for (const item of items) text += this.serialize(item.time, item.type, item.fields)
    const last = items[items.length - 1]
    return {
      buf: Buffer.from(text, 'utf8'),
      written: 0,
      entries: entries + items.length,
      items: items.length,
      lastOrdinal: last ? last.ordinal : this.writtenOrdinal,
    }
  }

  private serialize(time: number, type: string, fields: Record<string, unknown> | undefined): string {
    const iso = new Date(time).toISOString()
    let entry = this.entryOrProblem(iso, type, fields)
    if (typeof entry === 'string') {
      // A caller's bug must not break the chain or stall the queue: record that it happened.
      this.log?.error(
        { event: 'sluice.audit.invalid', type, err: entry },
        'audit entry could not be serialised; recorded as invalid',
      )
      entry = serializeEntry(this.seq + 1, iso, 'invalid', { originalType: type, error: entry }, this.hash, this.key)
    }
    this.seq++
    this.hash = entry.hash
    return entry.line
  }

  /** The next entry, or why it cannot be written: reserved keys, over the line limit, not serialisable. */
  private entryOrProblem(
    iso: string,
    type: string,
    fields: Record<string, unknown> | undefined,
  ): { line: string; hash: string } | string {
    try {
      const reserved = fields ? Object.keys(fields).filter((k) => RESERVED_KEYS.has(k)) : []
      if (reserved.length > 0) return `fields use reserved keys: ${reserved.join(', ')}`
      const entry = serializeEntry(this.seq + 1, iso, type, fields, this.hash, this.key)
      // Cheap check first (UTF-16 length); then the exact one.
      const bytes = entry.line.length > MAX_LINE_BYTES / 4 ? Buffer.byteLength(entry.line) : 0
      if (bytes > MAX_LINE_BYTES) return `entry of ${bytes} bytes exceeds the 1 MiB line limit`
      return entry
    } catch (err) {
      // Fields JSON cannot hold (a BigInt, a cycle), or a getter that throws.
      return (err as Error).message
    }
  }

  private async writeBatch(batch: Batch): Promise<void> {
    // After a short or failed write, the same handle continues with the remaining bytes, so a
    // half-written line is completed, not duplicated.
    while (batch.written < batch.buf.length) {
      const handle = this.handle
      if (!handle) throw new Error('audit file not open')
      const { bytesWritten } = await handle.write(batch.buf, batch.written, batch.buf.length - batch.written)
      if (bytesWritten <= 0) throw Object.assign(new Error('the disk accepted no bytes'), { code: 'EIO' })
      batch.written += bytesWritten
      this.size += bytesWritten
    }
  }

  private batchDone(batch: Batch): void {
    this.batch = undefined
    this.head = undefined
    this.prefix = ''
    this.writtenOrdinal = batch.lastOrdinal
    this.written += batch.entries
    this.entriesInFile += batch.entries
    this.dirty = true
    if (this.maxBytes > 0 && this.size >= this.maxBytes && this.entriesInFile > 1) this.rotationDue = true
    if (!this.healthy) this.recovered()
    this.releaseWaiters()
  }

  private releaseWaiters(): void {
    if (this.batch || this.head) return
    const ready = this.waiters.filter((w) => w.ordinal <= this.writtenOrdinal)
    if (ready.length === 0) return
    this.waiters = this.waiters.filter((w) => w.ordinal > this.writtenOrdinal)
    for (const w of ready) w.resolve()
  }

  // ---- fsync ------------------------------------------------------------------------------

  private async syncIfDirty(): Promise<void> {
    if (!this.dirty || this.syncing || this.rotationDue) return
    await this.syncNow()
  }

  private async syncNow(): Promise<void> {
    const handle = this.handle
    if (!handle) return
    if (this.syncing) return this.syncing
    this.dirty = false
    this.syncing = handle.sync().then(
      () => {
        // A failed fsync made the trail unhealthy; a good one with nothing else failing ends that.
        if (!this.healthy && !this.batch && !this.pumping) this.recovered()
      },
      (err: unknown) => {
        // The data may not be durable; we cannot tell which. Say so; the next write retries.
        this.dirty = true
        this.failed(err, 'fsync')
      },
    )
    try {
      await this.syncing
    } finally {
      this.syncing = undefined
    }
  }

  // ---- failure and recovery ---------------------------------------------------------------

  /** Records a failure, logs it (loudly the first time, then a summary every 10 s) and returns the backoff. */
  private failed(err: unknown, during = 'write'): number {
    const e = err as NodeJS.ErrnoException
    const now = this.now()
    this.failures++
    this.lastError = {
      code: e.code ?? 'EUNKNOWN',
      message: e.message ?? String(err),
      time: new Date(now).toISOString(),
    }
    const details = {
      event: 'sluice.audit.failing',
      file: this.file,
      during,
      code: this.lastError.code,
      error: this.lastError.message,
      backlog: this.backlog(),
      dropped: this.dropped,
    }
    if (this.healthy) {
      this.healthy = false
      this.failingSince = now
      this.lastFailureLog = now
      this.log?.error(
        details,
        `AUDIT SINK FAILING (${during} ${this.file}: ${this.lastError.code}): entries are kept in memory (up to ${this.queueLimit}) and retried`,
      )
    } else if (now - this.lastFailureLog >= SUMMARY_EVERY_MS) {
      this.lastFailureLog = now
      this.log?.error(
        details,
        `AUDIT SINK STILL FAILING since ${new Date(this.failingSince ?? now).toISOString()}: ${this.backlog()} entries waiting`,
      )
    }
    return Math.min(this.retryMaxMs, this.retryInitialMs * 2 ** Math.min(this.failures - 1, 30))
  }

  private recovered(): void {
    this.log?.warn(
      {
        event: 'sluice.audit.recovered',
        file: this.file,
        failingSince: this.failingSince,
        failures: this.failures,
        backlog: this.backlog(),
      },
      `audit sink recovered after ${this.failures} failed attempt(s); buffered entries written in order`,
    )
    this.healthy = true
    this.failures = 0
    this.failingSince = undefined
  }
}
