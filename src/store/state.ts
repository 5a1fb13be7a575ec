// The memory store's state file: counts, disables and bindings that survive a restart.
//
// Written in the background every `every` and once more on SIGTERM/SIGINT (the store's close),
// to a temporary file beside it that is fsynced and renamed over the old one (then the
// directory is fsynced): a crash mid-write leaves the previous snapshot whole, and a kill -9
// loses at most `every` of counting. Read back before the proxy serves; block base times are
// absolute (ms since the epoch), so windows continue in wall-clock time across the restart.
//
// Layout (numbers little-endian but the windows' words, which are the machine's: a byte-order
// mark tells):
//   header    32 bytes: magic "SLUICEST", format version, readable-by (the oldest reader that
//             understands the file: a later format that only adds sections keeps it at 1),
//             byte-order mark, time written (f64 ms), crc32 of the bytes before it
//   sections  each a 16-byte head — tag, payload length, crc32 of the payload, crc32 of the
//             head — then the payload, padded to 4 bytes:
//     META    JSON: the store's tables (section keys, routes, record hash seed, shared keys).
//             Written first, and again last if a table grew meanwhile (tables only grow)
//     ENTS    JSON { kind, entries: [[key, value, until | null (never)], …] }: disables first,
//             then session bindings, one-time-token claims, counters; ≤ 5,000 a section
//     WIND    one pool's blocks: u32 JSON length, JSON { pool, accounts } (least recently used
//             first), padding, a u32 length per block, then the blocks' words after word 0
//     WIDE    JSON { key, name, state }: a network's or route's log (wide.ts: records as hashes), ≤ 20,000 records a
//             section (a large one continues in the next)
//     END.    JSON { sections, accounts }: a file without it is incomplete
//
// Every section verifies on its own, so a corrupt or truncated windows section costs those
// accounts' windows and never the disables, written before them in sections of their own. A
// file that does not verify whole is moved aside (`<path>.corrupt-<time>`), and the store
// starts with what verified — or, with onCorrupt: refuse, sluice does not start.
//
// The file holds the record hash seed and the Basic fingerprint key: it is created 0600.
import { accessSync, constants, statSync } from 'node:fs'
import { open, rename, rm, type FileHandle } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { crc32 } from 'node:zlib'
import { SluiceError } from '../errors.js'
import type { EntryKind, MemoryStore, StoreTables } from './memory.js'
import type { WideState } from './wide.js'

export const STATE_VERSION = 1
const MAGIC = 'SLUICEST'
const HEADER_BYTES = 32
const HEAD_BYTES = 16
const BYTE_ORDER = 0x01020304
/** Words of windows per section (1 MiB): one section is one slice of the event loop. */
const SECTION_WORDS = 1 << 18
const ENTRIES_PER_SECTION = 5000
/** Records of a network's or route's log per section (a slice of the event loop). */
const WIDE_RECORDS = 20_000
/** Bytes gathered before a write. */
const FLUSH_BYTES = 4 << 20
/** Disables first: the sections most worth keeping come before the bulk. */
const ENTRY_KINDS: readonly EntryKind[] = ['disabled', 'shadowDisabled', 'disableWhy', 'sessions', 'claims', 'counters']

export interface WriteStats {
  bytes: number
  accounts: number
  entries: number
  ms: number
  /** The longest the event loop waited on the snapshot at a time (ms). */
  longestSliceMs: number
}

export interface ReadReport {
  /** There was something at the path. */
  found: boolean
  /** When the file was written (ms since the epoch), if its header verified. */
  writtenAt: number | null
  /** Accounts (and overflow keys) whose windows were restored. */
  accounts: number
  /** Live entries restored, by kind (expired ones are dropped). */
  entries: Record<EntryKind, number>
  /** Why the file did not verify whole; empty when it did. */
  problems: string[]
}

// ─── writing ─────────────────────────────────────────────────────────────────────────────

/** Write the store's state to `path` (atomically: a temporary file, fsynced and renamed). */
export async function writeState(store: MemoryStore, path: string): Promise<WriteStats> {
  const started = performance.now()
  const tmp = `${path}.tmp`
  await rm(tmp, { force: true }) // created afresh, so with mode 0600
  const fh = await open(tmp, 'wx', 0o600)
  const out = new Output(fh)
  let accounts = 0
  let entries = 0
  try {
    const header = Buffer.alloc(HEADER_BYTES)
    header.write(MAGIC, 0, 'latin1')
    header.writeUInt32LE(STATE_VERSION, 8)
    header.writeUInt32LE(1, 12)
    Buffer.from(new Uint32Array([BYTE_ORDER]).buffer).copy(header, 16)
    header.writeDoubleLE(Date.now(), 20)
    header.writeUInt32LE(crc32(header.subarray(0, 28)), 28)
    out.push(header)

    const tables = store.tables()
    out.section('META', [json(tables)])
    for (const kind of ENTRY_KINDS) {
      for await (const batch of store.entries(kind, ENTRIES_PER_SECTION)) {
        entries += batch.length
        const list = batch.map(([key, value, until]) => [key, never(value), never(until)])
        out.section('ENTS', [json({ kind, entries: list })])
        await out.pause()
      }
    }
    for (const pool of store.poolNames()) {
      for await (const chunk of store.exportPool(pool, SECTION_WORDS)) {
        accounts += chunk.names.length
        const head = json({ pool, accounts: chunk.names })
        const lead = Buffer.alloc(4 + head.length + pad(head.length))
        lead.writeUInt32LE(head.length, 0)
        head.copy(lead, 4)
        out.section('WIND', [lead, bytes(Uint32Array.from(chunk.lengths)), bytes(chunk.words)])
        await out.pause()
      }
    }
    // Networks' and routes' windows (wide.ts), a large log in several sections.
    for (const { key, name, state } of store.savedWideLogs()) {
      for (let i = 0; i === 0 || i < state.records.length; i += WIDE_RECORDS) {
        const records = state.records.slice(i, i + WIDE_RECORDS)
        out.section('WIDE', [
          json({ key, name, state: { ...state, records, requests: i === 0 ? state.requests : [] } }),
        ])
        await out.pause()
      }
    }
    // Tables only grow: blocks copied after a new key was interned need the later tables.
    const last = store.tables()
    if (last.keys.length !== tables.keys.length || last.routes.length !== tables.routes.length)
      out.section('META', [json(last)])
    out.section('END.', [json({ sections: out.sections, accounts })])
    out.mark()
    await out.flush()
    await fh.sync()
  } catch (err) {
    await fh.close().catch(() => undefined)
    await rm(tmp, { force: true }).catch(() => undefined)
    throw err
  }
  await fh.close()
  await rename(tmp, path)
  await syncDir(dirname(path))
  return {
    bytes: out.bytes,
    accounts,
    entries,
    ms: performance.now() - started,
    longestSliceMs: out.longestSliceMs(),
  }
}

/** Sections gathered in memory and written in a few MiB at a time. */
class Output {
  bytes = 0
  sections = 0
  private parts: Uint8Array[] = []
  private pending = 0
  private sliceStart = performance.now()
  private longest = 0

  constructor(private readonly fh: FileHandle) {}

  push(part: Uint8Array): void {
    this.parts.push(part)
    this.pending += part.byteLength
    this.bytes += part.byteLength
  }

  section(tag: string, payload: Uint8Array[]): void {
    let length = 0
    let crc = 0
    for (const p of payload) {
      length += p.byteLength
      crc = crc32(p, crc)
    }
    const head = Buffer.alloc(HEAD_BYTES)
    head.write(tag, 0, 'latin1')
    head.writeUInt32LE(length, 4)
    head.writeUInt32LE(crc, 8)
    head.writeUInt32LE(crc32(head.subarray(0, 12)), 12)
    this.push(head)
    for (const p of payload) this.push(p)
    if (pad(length) > 0) this.push(Buffer.alloc(pad(length)))
    this.sections++
  }

  /** Let requests in: write what is gathered past FLUSH_BYTES, else wait one turn. */
  async pause(): Promise<void> {
    this.mark()
    if (this.pending >= FLUSH_BYTES) await this.flush()
    else await nextTurn()
    this.sliceStart = performance.now()
  }

  async flush(): Promise<void> {
    const parts = this.parts
    this.parts = []
    this.pending = 0
    if (parts.length > 0) await this.fh.writev(parts)
  }

  /** The end of a slice: what ran since the last pause held the event loop. */
  mark(): void {
    this.longest = Math.max(this.longest, performance.now() - this.sliceStart)
  }

  longestSliceMs(): number {
    return this.longest
  }
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r')
  try {
    await d.sync()
  } finally {
    await d.close()
  }
}

// ─── reading ─────────────────────────────────────────────────────────────────────────────

/**
 * Restore the state at `path` into an empty store: everything that verifies, section by
 * section. Never throws for what the file holds; the report says what did not verify.
 */
export async function readState(store: MemoryStore, path: string): Promise<ReadReport> {
  const report: ReadReport = {
    found: false,
    writtenAt: null,
    accounts: 0,
    entries: { disabled: 0, shadowDisabled: 0, disableWhy: 0, sessions: 0, claims: 0, counters: 0 },
    problems: [],
  }
  let fh: FileHandle
  try {
    fh = await open(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return report
    report.found = true
    report.problems.push(`cannot be read (${(err as Error).message})`)
    return report
  }
  report.found = true
  try {
    await readInto(store, new Input(fh, (await fh.stat()).size), report)
  } catch (err) {
    // A directory (EISDIR), an I/O error: what was restored so far stays.
    report.problems.push(`cannot be read (${(err as Error).message})`)
  } finally {
    await fh.close().catch(() => undefined)
  }
  return report
}

async function readInto(store: MemoryStore, input: Input, report: ReadReport): Promise<void> {
  const problems = report.problems
  const header = await input.bytes(0, HEADER_BYTES)
  if (header === null) return void problems.push(`truncated: ${input.size} bytes, no header`)
  if (header.toString('latin1', 0, 8) !== MAGIC) return void problems.push('not a sluice state file')
  if (crc32(header.subarray(0, 28)) !== header.readUInt32LE(28)) return void problems.push('its header is corrupted')
  const version = header.readUInt32LE(8)
  const readableBy = header.readUInt32LE(12)
  if (readableBy > STATE_VERSION)
    return void problems.push(
      `written by a newer sluice (state format ${version}, readable from ${readableBy}; this one reads ${STATE_VERSION})`,
    )
  if (new Uint32Array(Uint8Array.from(header.subarray(16, 20)).buffer)[0] !== BYTE_ORDER)
    return void problems.push('written on a machine of the other byte order')
  report.writtenAt = header.readDoubleLE(20)

  // First the heads alone: the last verified tables serve every block (tables only grow).
  let tables: StoreTables | null = null
  let metas = 0
  for await (const section of input.sections(problems, (tag) => tag === 'META')) {
    metas++
    const t = section.payload ? asTables(parse(section.payload)) : null
    if (t) tables = t
  }
  if (tables) store.restoreTables(tables)
  else if (metas > 0) problems.push('no section of tables verifies: the windows cannot be restored')

  let sections = 0
  let accountsWritten = 0
  let invalid = 0
  let ended: { sections: number; accounts: number } | null = null
  const now = Date.now()
  for await (const { tag, at, payload } of input.sections(null, () => true)) {
    if (ended) break
    if (tag === 'END.') {
      const end = payload ? parse(payload) : null
      if (isEnd(end)) ended = end
      else problems.push(`the end marker at byte ${at} does not verify`)
      continue
    }
    sections++
    if (!payload) {
      problems.push(`section ${tag} at byte ${at} does not verify (skipped)`)
      continue
    }
    if (tag === 'ENTS') {
      const ents = asEntries(parse(payload))
      if (!ents) {
        problems.push(`section ENTS at byte ${at} is not what it says (skipped)`)
        continue
      }
      for (const [key, value, until] of ents.entries)
        if (store.importEntry(ents.kind, key, value ?? Infinity, until ?? Infinity, now)) report.entries[ents.kind]++
    } else if (tag === 'WIND') {
      const wind = windowsOf(payload)
      if (!wind) {
        problems.push(`section WIND at byte ${at} is not what it says (skipped)`)
        continue
      }
      accountsWritten += wind.accounts.length
      if (!tables) continue
      const { imported, invalid: bad } = store.importBlocks(wind.pool, wind.accounts, wind.lengths, wind.words)
      report.accounts += imported
      invalid += bad
    } else if (tag === 'WIDE') {
      const wide = asWide(parse(payload))
      if (!wide) {
        problems.push(`section WIDE at byte ${at} is not what it says (skipped)`)
        continue
      }
      store.importWide(wide.key, wide.name, wide.state)
    }
    // META was read above; a tag from a later format is skipped.
  }
  if (invalid > 0) problems.push(`${invalid} accounts' windows do not fit (skipped)`)
  if (!ended) problems.push('incomplete: no end marker (truncated?)')
  else if (ended.sections !== sections || ended.accounts !== accountsWritten)
    problems.push(
      `${ended.sections - sections} sections (${ended.accounts - accountsWritten} accounts) are missing or do not verify`,
    )
}

interface Section {
  tag: string
  /** Where its head starts. */
  at: number
  /** The payload, or null when it does not verify. Valid until the next section is read. */
  payload: Buffer | null
}

/** Positional reads of a file, one section at a time into one reused buffer. */
class Input {
  private buffer = Buffer.alloc(0)

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
  ) {}

  /** `length` bytes at `at` (into the reused buffer, aligned at its start), or null past the end. */
  async bytes(at: number, length: number): Promise<Buffer | null> {
    if (at + length > this.size) return null
    // A fresh ArrayBuffer, so that the payload starts aligned for Uint32Array views.
    if (this.buffer.length < length)
      this.buffer = Buffer.from(new ArrayBuffer(Math.max(length, 2 * this.buffer.length)))
    const into = this.buffer.subarray(0, length)
    for (let done = 0; done < length;) {
      const { bytesRead } = await this.fh.read(into, done, length - done, at + done)
      if (bytesRead === 0) return null
      done += bytesRead
    }
    return into
  }

  /**
   * The sections after the header, in order; payloads only of those `wanted`. Stops where the
   * file is truncated or a head is corrupted (what follows cannot be located); reported into
   * `problems` if given.
   */
  async *sections(problems: string[] | null, wanted: (tag: string) => boolean): AsyncGenerator<Section> {
    for (let at = HEADER_BYTES; at < this.size;) {
      const head = await this.bytes(at, HEAD_BYTES)
      if (head === null) return void problems?.push(`truncated at byte ${at} (a section head cut short)`)
      if (crc32(head.subarray(0, 12)) !== head.readUInt32LE(12))
        return void problems?.push(`the section head at byte ${at} is corrupted: nothing after it can be located`)
      const tag = head.toString('latin1', 0, 4)
      const length = head.readUInt32LE(4)
      const crc = head.readUInt32LE(8)
      if (at + HEAD_BYTES + length > this.size)
        return void problems?.push(`truncated at byte ${this.size} (in section ${tag} at byte ${at})`)
      let payload: Buffer | null = null
      if (wanted(tag)) {
        payload = await this.bytes(at + HEAD_BYTES, length)
        if (payload !== null && crc32(payload) !== crc) payload = null
      }
      if (wanted(tag)) yield { tag, at, payload }
      at += HEAD_BYTES + length + pad(length)
    }
  }
}

// ─── what a payload must be ──────────────────────────────────────────────────────────────

function parse(payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString('utf8'))
  } catch {
    return undefined
  }
}

const isString = (v: unknown): v is string => typeof v === 'string'
const isCount = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0

function asTables(v: unknown): StoreTables | null {
  const t = v as Partial<StoreTables> | null
  if (typeof t !== 'object' || t === null) return null
  const { seed, keys, keyRoutes, routes, longestWindowMs, sharedKeys } = t
  const ok =
    Array.isArray(seed) &&
    seed.length === 2 &&
    seed.every((s) => isCount(s) && s <= 0xffffffff) &&
    Array.isArray(keys) &&
    keys.every(isString) &&
    Array.isArray(routes) &&
    routes.every(isString) &&
    Array.isArray(keyRoutes) &&
    keyRoutes.length === keys.length &&
    keyRoutes.every((r) => isCount(r) && r < routes.length) &&
    typeof longestWindowMs === 'number' &&
    longestWindowMs >= 0 &&
    typeof sharedKeys === 'object' &&
    sharedKeys !== null &&
    Object.values(sharedKeys).every(isString)
  return ok ? (t as StoreTables) : null
}

type Wide = { key: string; name: string; state: WideState }

function asWide(v: unknown): Wide | null {
  const w = v as Partial<Wide> | null
  const st = w?.state
  if (typeof w !== 'object' || w === null || typeof w.key !== 'string' || typeof w.name !== 'string') return null
  if (typeof st !== 'object' || st === null || typeof st.newest !== 'number') return null
  if (!Array.isArray(st.requests) || !st.requests.every((t) => typeof t === 'number')) return null
  // [hash high, hash low, time], or [id, time] as files before hashed wide logs had them.
  const entry = (r: unknown): boolean =>
    Array.isArray(r) &&
    (r.length === 3
      ? r.every((x) => Number.isInteger(x) && x >= 0) && (r[0] as number) < 2 ** 32 && (r[1] as number) < 2 ** 32
      : r.length === 2 && typeof r[0] === 'string' && typeof r[1] === 'number')
  if (!Array.isArray(st.records) || !st.records.every(entry)) return null
  return w as Wide
}

type Entries = { kind: EntryKind; entries: [string, string | number | null, number | null][] }

function asEntries(v: unknown): Entries | null {
  const e = v as { kind?: unknown; entries?: unknown } | null
  if (typeof e !== 'object' || e === null || !ENTRY_KINDS.includes(e.kind as EntryKind) || !Array.isArray(e.entries))
    return null
  const ok = e.entries.every(
    (x: unknown) =>
      Array.isArray(x) &&
      x.length === 3 &&
      isString(x[0]) &&
      (isString(x[1]) || typeof x[1] === 'number' || x[1] === null) &&
      (x[2] === null || typeof x[2] === 'number'),
  )
  return ok ? (e as Entries) : null
}

function isEnd(v: unknown): v is { sections: number; accounts: number } {
  const e = v as { sections?: unknown; accounts?: unknown } | null
  return typeof e === 'object' && e !== null && isCount(e.sections) && isCount(e.accounts)
}

function windowsOf(
  payload: Buffer,
): { pool: string; accounts: string[]; lengths: Uint32Array; words: Uint32Array } | null {
  if (payload.length < 4) return null
  const headLength = payload.readUInt32LE(0)
  const start = 4 + headLength + pad(headLength)
  if (start > payload.length) return null
  const head = parse(payload.subarray(4, 4 + headLength)) as { pool?: unknown; accounts?: unknown } | undefined
  if (!head || !isString(head.pool) || !Array.isArray(head.accounts) || !head.accounts.every(isString)) return null
  const n = head.accounts.length
  if (start + 4 * n > payload.length || (payload.length - start) % 4 !== 0) return null
  // The payload starts at its buffer's start (Input.bytes), so these offsets are aligned.
  const lengths = new Uint32Array(payload.buffer, payload.byteOffset + start, n)
  const words = new Uint32Array(payload.buffer, payload.byteOffset + start + 4 * n, (payload.length - start) / 4 - n)
  let total = 0
  for (const l of lengths) total += l
  if (total !== words.length) return null
  return { pool: head.pool, accounts: head.accounts, lengths, words }
}

const pad = (n: number): number => (4 - (n & 3)) & 3
/** JSON has no Infinity (a disable's `forever`): null stands for it. */
const never = <T>(v: T): T | null => (v === Infinity ? null : v)
const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v), 'utf8')
const bytes = (a: Uint32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)

// ─── keeping it ──────────────────────────────────────────────────────────────────────────

export interface StateLog {
  debug(obj: object, msg: string): void
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

export interface StateOptions {
  path: string
  everyMs: number
  /** A file that does not verify: start with what verified (moved aside), or refuse to start. */
  onCorrupt: 'start' | 'refuse'
  log: StateLog
  /** A state file did not verify at start. */
  onCorruptFile?: () => void
  /** A snapshot was written (stats) or failed (null). */
  onWrite?: (stats: WriteStats | null) => void
}

/** Why sluice could not keep its state at `path` (its directory missing or not writable), or null. */
export function stateDirProblem(path: string): string | null {
  const dir = dirname(resolve(path))
  try {
    if (!statSync(dir).isDirectory()) return `${dir} is not a directory`
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return code === 'ENOENT' ? `the directory ${dir} does not exist` : `${dir}: ${(err as Error).message}`
  }
  try {
    accessSync(dir, constants.W_OK)
  } catch {
    return `the directory ${dir} is not writable by this user`
  }
  return null
}

/**
 * The state file of one memory store: restores it at open, writes it every `everyMs` (never
 * two writes at once) and when the store closes.
 */
export class StateKeeper {
  private timer: NodeJS.Timeout | null = null
  private running: Promise<WriteStats | null> | null = null
  private closed = false
  private failingSince = 0
  private failureLogged = 0

  private constructor(
    private readonly store: MemoryStore,
    private readonly options: StateOptions,
  ) {}

  /** Restore the store from the file (if any) and keep it from now on; a SluiceError when sluice must not start. */
  static async open(store: MemoryStore, options: StateOptions): Promise<StateKeeper> {
    const { path, log } = options
    const dirProblem = stateDirProblem(path)
    if (dirProblem)
      throw new SluiceError(
        'SLUICE_ERR_STATE_PATH',
        `store.state.path ${path}: ${dirProblem} (create it, writable by the user sluice runs as)`,
      )
    const started = performance.now()
    const report = await readState(store, path)
    const restored = {
      accounts: report.accounts,
      disabled: report.entries.disabled + report.entries.shadowDisabled,
      sessions: report.entries.sessions,
    }
    const ms = Math.round(performance.now() - started)
    const written = report.writtenAt === null ? undefined : new Date(report.writtenAt).toISOString()
    if (!report.found) {
      log.info({ event: 'sluice.state', outcome: 'none', path }, `no state file at ${path} yet: starting empty`)
    } else if (report.problems.length === 0) {
      log.info(
        { event: 'sluice.state', outcome: 'restored', path, written, ms, ...restored },
        `state restored from ${path} (written ${written}): ${restored.accounts} accounts, ${restored.disabled} disables, ${restored.sessions} session bindings`,
      )
    } else {
      options.onCorruptFile?.()
      const problems = report.problems.join('; ')
      if (options.onCorrupt === 'refuse')
        throw new SluiceError(
          'SLUICE_ERR_STATE_CORRUPT',
          `the state file ${path} does not verify (${problems}); not started, as store.state.onCorrupt is refuse: move the file aside to start with an empty store, or set onCorrupt: start to start with what verifies`,
        )
      const aside = `${path}.corrupt-${new Date().toISOString().replace(/:/g, '-')}`
      let moved = true
      await rename(path, aside).catch(() => (moved = false))
      log.error(
        {
          event: 'sluice.state',
          outcome: 'corrupt',
          path,
          movedTo: moved ? aside : null,
          problems: report.problems,
          written,
          ...restored,
        },
        `the state file ${path} does not verify (${problems}): ${moved ? `moved to ${aside}` : 'it could not be moved aside'}; started with what verified: ${restored.accounts} accounts, ${restored.disabled} disables, ${restored.sessions} session bindings`,
      )
    }
    const keeper = new StateKeeper(store, options)
    store.onClose(() => keeper.close())
    keeper.schedule()
    return keeper
  }

  /** Write a snapshot now (after the one being written, if any); null if it failed (logged). */
  async snapshot(): Promise<WriteStats | null> {
    while (this.running) await this.running
    const run = writeState(this.store, this.options.path).then(
      (stats) => this.written(stats),
      (err: unknown) => this.failed(err as Error),
    )
    this.running = run
    try {
      return await run
    } finally {
      this.running = null
    }
  }

  /** The last write, once nothing more can change (the store's close). */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    const stats = await this.snapshot()
    if (stats)
      this.options.log.info(
        { event: 'sluice.state', outcome: 'saved', path: this.options.path, ...round(stats) },
        `state saved to ${this.options.path}: ${stats.accounts} accounts, ${stats.bytes} bytes in ${Math.round(stats.ms)} ms`,
      )
  }

  private schedule(): void {
    if (this.closed) return
    this.timer = setTimeout(() => void this.snapshot().then(() => this.schedule()), this.options.everyMs)
    this.timer.unref()
  }

  private written(stats: WriteStats): WriteStats {
    this.options.onWrite?.(stats)
    if (this.failingSince !== 0) {
      this.options.log.info(
        { event: 'sluice.state', outcome: 'written', path: this.options.path, ...round(stats) },
        `state written to ${this.options.path} again`,
      )
      this.failingSince = 0
    } else {
      this.options.log.debug(
        { event: 'sluice.state', outcome: 'written', path: this.options.path, ...round(stats) },
        'state written',
      )
    }
    return stats
  }

  private failed(err: Error): null {
    this.options.onWrite?.(null)
    const now = Date.now()
    if (this.failingSince === 0) this.failingSince = now
    // Once a minute while it keeps failing: the previous snapshot stays in place meanwhile.
    if (now - this.failureLogged >= 60_000) {
      this.failureLogged = now
      this.options.log.error(
        {
          event: 'sluice.state',
          outcome: 'failed',
          path: this.options.path,
          err: err.message,
          since: new Date(this.failingSince).toISOString(),
        },
        `cannot write the state file ${this.options.path}: ${err.message} (the previous snapshot stays; a restart now would lose what was counted since)`,
      )
    }
    return null
  }
}

function round(stats: WriteStats): WriteStats {
  return { ...stats, ms: Math.round(stats.ms), longestSliceMs: Math.round(stats.longestSliceMs * 10) / 10 }
}
