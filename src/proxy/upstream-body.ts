// An upstream answer's body as undici's dispatch delivers it, read by the answer step without a
// stream between the two.
//
// Why: through `pool.request`, an inspected answer went undici's body Readable → 'data' events
// → readCapped; the Readable's buffering, flowing mode and ticks cost about as much as reading the
// ids of a 10 KB list (A/B, bench/ab.js --path list: 113 → 101 µs of CPU a request on Node 24,
// 123 → 113 on Node 22.13). Here undici's onData hands each chunk straight to readCapped's
// rules (CappedRead): fed to the extractor as it arrives, held once, budget taken per chunk.
// A body that is not read whole (past maxInspectBytes, the budget busy, uninspectable) or not
// read at all (not a 2xx, nothing to inspect) becomes an ordinary Readable, with backpressure
// through undici's pause and resume, to be sent on.
import { Readable } from 'node:stream'
import { BrokenBodyError } from '../errors.js'
import { CappedRead, PushedBody, type ReadResult } from '../records/body.js'

/** Chunks held for a reader that has not started yet, before undici is asked to pause. */
const EARLY_BYTES = 64 * 1024

interface Reading {
  read: CappedRead
  resolve: (result: ReadResult) => void
  reject: (err: Error) => void
}

export class UpstreamBody extends PushedBody {
  /** Undici's controls: resume after a pause (onData returned false), abort the request. */
  resumeUpstream: (() => void) | null = null
  abortUpstream: (() => void) | null = null
  /** Arrived while nobody reads (before readCapped, or after it stopped and before stream()). */
  private pending: Buffer[] = []
  private pendingBytes = 0
  private reading: Reading | null = null
  private readable: Readable | null = null
  private ended = false
  private failure: Error | null = null
  private gone = false

  // ─── from undici (forward.ts's dispatch handler) ──────────────────────────────────────

  /** A chunk of the body; false asks undici to pause until resumeUpstream. */
  push(chunk: Buffer): boolean {
    if (this.gone) return false
    if (this.readable) return this.readable.push(chunk)
    if (this.reading) return this.deliver(chunk)
    this.pending.push(chunk)
    this.pendingBytes += chunk.length
    return this.pendingBytes < EARLY_BYTES
  }

  /** The last byte arrived. */
  end(): void {
    this.ended = true
    if (this.readable) this.readable.push(null)
    else if (this.reading) this.complete(this.reading)
  }

  /** The answer broke off (or timed out) mid-body. */
  fail(err: Error): void {
    this.failure = err
    if (this.readable) this.readable.destroy(err)
    else if (this.reading) {
      const r = this.reading
      this.reading = null
      r.reject(new BrokenBodyError(err))
    }
  }

  // ─── for the answer step (PushedBody) ────────────────────────────────────────────────

  readCapped(
    cap: number,
    expectedLength: number | undefined,
    take?: (bytes: number) => boolean,
    feed?: (chunk: Buffer) => void,
  ): Promise<ReadResult> {
    const read = new CappedRead(cap, expectedLength, take, feed)
    if (read.busy) return Promise.resolve({ complete: false, busy: true, head: [], rest: () => this.stream() })
    if (this.gone) return Promise.reject(new BrokenBodyError(new Error('body destroyed before it was read')))
    return new Promise<ReadResult>((resolve, reject) => {
      const reading: Reading = { read, resolve, reject }
      this.reading = reading
      const early = this.pending
      this.pending = []
      this.pendingBytes = 0
      for (let i = 0; i < early.length; i++) {
        if (this.deliver(early[i] as Buffer)) continue
        // Stopped: what it did not get stays first in line for stream().
        this.pending = early.slice(i + 1)
        this.pendingBytes = this.pending.reduce((n, c) => n + c.length, 0)
        return
      }
      if (this.failure) this.fail(this.failure)
      else if (this.ended) this.complete(reading)
      else this.resumeUpstream?.()
    })
  }

  /** What is left of the body, `head` first, as a stream (undici paused while it is not read). */
  stream(head: readonly Buffer[] = []): Readable {
    if (this.readable) return this.readable
    const readable = new Readable({
      read: () => this.resumeUpstream?.(),
      destroy: (err, callback) => {
        // Not to its end: the client went away, or the body failed.
        if (!this.ended) this.abort()
        callback(err)
      },
    })
    this.readable = readable
    for (const c of head) readable.push(c)
    for (const c of this.pending) readable.push(c)
    this.pending = []
    this.pendingBytes = 0
    if (this.failure) readable.destroy(this.failure)
    else if (this.ended) readable.push(null)
    return readable
  }

  destroy(): void {
    if (this.readable) {
      this.readable.destroy()
      return
    }
    this.pending = []
    this.reading = null
    this.abort()
  }

  private abort(): void {
    if (this.gone) return
    this.gone = true
    if (!this.ended && this.failure === null) this.abortUpstream?.()
  }

  /** A chunk for the reader: false once it stopped reading (settled; undici pauses). */
  private deliver(chunk: Buffer): boolean {
    const r = this.reading as Reading
    let stop
    try {
      stop = r.read.add(chunk)
    } catch (err) {
      this.reading = null
      r.reject(err as Error)
      return false
    }
    if (stop === null) return true
    this.reading = null
    r.resolve({ complete: false, ...stop, rest: () => this.stream(stop.head) })
    return false
  }

  private complete(r: Reading): void {
    this.reading = null
    r.resolve({ complete: true, body: r.read.body() })
  }
}
