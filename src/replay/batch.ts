// What crosses between the replay's threads (threads.ts, worker.ts): pieces of a log to the
// workers, a batch of what their lines were back (the Sink of read.ts, recorded).
import type { CompiledConfig } from '../config/compile.js'
import type { FormatName, LogEntry } from './formats.js'
import type { ReadOptions, Sink } from './read.js'

/**
 * What a worker found in one piece: the counts that do not depend on the order, the bad lines
 * and rejection reasons in line order, and each routed request (numbers in `routed`, strings in
 * `strings`, each string once). Lines are numbered from 1 at the start of the piece.
 */
export interface Batch {
  seq: number
  lines: number
  ignored: number
  /** Requests, less the routed ones without an account or client (bad lines after all). */
  requests: number
  passedThrough: number
  from: number | null
  to: number | null
  rejectedCount: number
  /** Reasons in the order they first appear, with their counts. */
  rejected: [string, number][]
  badCount: number
  /** The first `keepBad`. */
  bad: [number, string][]
  strings: string[]
  /**
   * Per routed request: line, time, route index, the log's account (string index or -1), client
   * (or -1), the account counted, method, the target's offset and length in `targets`, n records,
   * then the records' string indexes.
   */
  routed: Float64Array
  routedLength: number
  /**
   * The targets, end to end: one string to copy instead of one per request (most are needed only
   * while the request is replayed; one that is kept is copied out, see Replay).
   */
  targets: string
}

/** Message to a worker: whole lines (the file's unended last line if `last`), to read as `format`. */
export interface Piece {
  seq: number
  format: FormatName
  bytes: Uint8Array
  last: boolean
}

/** What a worker needs: the config to compile its own copy of (its routes must be the same). */
export interface WorkerSetup {
  source: CompiledConfig['source']
  routes: string[]
  options: ReadOptions
  keepBad: number
}

/** A worker's Sink: a batch per piece. */
export class BatchSink implements Sink {
  private batch!: Batch
  private readonly index = new Map<string, number>()
  private readonly reasons = new Map<string, number>()
  private targets: string[] = []
  private targetsLength = 0

  constructor(private readonly keepBad: number) {
    this.reset(0)
  }

  reset(seq: number): void {
    this.batch = {
      seq,
      lines: 0,
      ignored: 0,
      requests: 0,
      passedThrough: 0,
      from: null,
      to: null,
      rejectedCount: 0,
      rejected: [],
      badCount: 0,
      bad: [],
      strings: [],
      routed: new Float64Array(1 << 12),
      routedLength: 0,
      targets: '',
    }
    this.targets = []
    this.targetsLength = 0
    this.index.clear()
    this.reasons.clear()
  }

  /** The batch of the piece read since reset. */
  take(lines: number): Batch {
    const b = this.batch
    b.lines = lines
    b.rejected = [...this.reasons]
    b.targets = this.targets.join('')
    return b
  }

  ignored(): void {
    this.batch.ignored++
  }

  bad(line: number, reason: string): void {
    const b = this.batch
    b.badCount++
    if (b.bad.length < this.keepBad) b.bad.push([line, reason])
  }

  request(time: number): void {
    const b = this.batch
    b.requests++
    if (b.from === null || time < b.from) b.from = time
    if (b.to === null || time > b.to) b.to = time
  }

  rejected(reason: string): void {
    this.batch.rejectedCount++
    this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + 1)
  }

  unrouted(): void {
    this.batch.passedThrough++
  }

  unaccounted(line: number): void {
    this.batch.requests--
    this.bad(line, 'neither an account nor a client address')
  }

  routed(line: number, entry: LogEntry, account: string, route: number, records: readonly string[]): void {
    const b = this.batch
    const need = b.routedLength + 10 + records.length
    if (need > b.routed.length) {
      const grown = new Float64Array(Math.max(need, 2 * b.routed.length))
      grown.set(b.routed.subarray(0, b.routedLength))
      b.routed = grown
    }
    const ev = b.routed
    let i = b.routedLength
    ev[i++] = line
    ev[i++] = entry.time
    ev[i++] = route
    ev[i++] = entry.account === undefined ? -1 : this.string(entry.account)
    ev[i++] = entry.client === undefined ? -1 : this.string(entry.client)
    ev[i++] = this.string(account)
    ev[i++] = this.string(entry.method)
    ev[i++] = this.targetsLength
    ev[i++] = entry.target.length
    this.targets.push(entry.target)
    this.targetsLength += entry.target.length
    ev[i++] = records.length
    for (const r of records) ev[i++] = this.string(r)
    b.routedLength = i
  }

  private string(s: string): number {
    let i = this.index.get(s)
    if (i === undefined) {
      i = this.batch.strings.length
      this.batch.strings.push(s)
      this.index.set(s, i)
    }
    return i
  }
}
