// A replay on several threads. The engine's windows depend on the order of the requests (per
// account, per network, per route), so the engine stays on this thread and sees every request
// in log order; what depends on a line alone (parse, classify, name the account: read.ts) is
// done by workers, on pieces of whole lines that this thread cuts from the file as it reads it
// (gzip is inflated here, off the event loop by zlib). Pieces go to the workers in turn and
// their batches are merged back in the order of the pieces, so the result is the one a
// single-threaded replay gives (test/replay/threads.test.ts compares them).
import { Worker } from 'node:worker_threads'
import type { CompiledConfig } from '../config/compile.js'
import type { Batch, Piece, WorkerSetup } from './batch.js'
import type { FormatName } from './formats.js'
import { readFile, type Replay, type ReplayOptions } from './replay.js'

/** Pieces sent and not yet merged, per worker: enough to keep both sides busy, bounded memory. */
const IN_FLIGHT = 4

export async function replayThreaded(
  replay: Replay,
  config: CompiledConfig,
  files: readonly string[],
  options: ReplayOptions,
  workers: number,
): Promise<void> {
  const pool = new WorkerPool(replay, config, options, workers)
  try {
    for (const name of files) await readFile(replay, name, options, pool)
  } finally {
    await pool.close()
  }
}

export class WorkerPool {
  private readonly workers: Worker[] = []
  private format: FormatName = 'combined'
  private sent = 0
  private merged = 0
  private readonly done = new Map<number, Batch>()
  private failure: Error | undefined
  private wake: (() => void) | undefined

  constructor(
    private readonly replay: Replay,
    config: CompiledConfig,
    options: ReplayOptions,
    count: number,
  ) {
    const setup: WorkerSetup = {
      source: config.source,
      routes: config.routes.map((r) => r.name),
      options: {
        ...(options.format !== undefined ? { format: options.format } : {}),
        ...(options.account !== undefined ? { account: options.account } : {}),
        ...(options.fields !== undefined ? { fields: options.fields } : {}),
      },
      keepBad: options.keepBad ?? 5,
    }
    for (let i = 0; i < count; i++) {
      const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: setup })
      w.on('message', (b: Batch) => {
        this.done.set(b.seq, b)
        this.mergeReady()
      })
      w.on('error', (err) => this.fail(err))
      w.on('exit', (code) => {
        if (!this.closing) this.fail(new Error(`a replay worker stopped (exit code ${code})`))
      })
      this.workers.push(w)
    }
  }

  private closing = false

  /** The format of the next pieces (a new file). */
  start(format: FormatName): void {
    this.format = format
  }

  /** Sends whole lines to the next worker; waits while too many are in flight. */
  async read(bytes: Buffer, last: boolean): Promise<void> {
    while (this.sent - this.merged >= IN_FLIGHT * this.workers.length && !this.failure) await this.waitForMerge()
    if (this.failure) throw this.failure
    // Transferred, so it must own its memory: never a slice of Buffer's shared pool, which
    // Node 22+ refuses to transfer (Buffer.from of a small buffer takes from that pool).
    let own = bytes
    if (bytes.byteOffset !== 0 || bytes.buffer.byteLength !== bytes.length) {
      own = Buffer.allocUnsafeSlow(bytes.length)
      bytes.copy(own)
    }
    const piece: Piece = { seq: this.sent, format: this.format, bytes: own, last }
    const w = this.workers[this.sent % this.workers.length] as Worker
    w.postMessage(piece, [own.buffer as ArrayBuffer])
    // Counted once sent: drain() waits for every piece counted.
    this.sent++
  }

  /** Waits until every piece sent is merged. */
  async drain(): Promise<void> {
    while (this.merged < this.sent && !this.failure) await this.waitForMerge()
    if (this.failure) throw this.failure
  }

  async close(): Promise<void> {
    this.closing = true
    await Promise.all(this.workers.map((w) => w.terminate()))
  }

  private waitForMerge(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve))
  }

  private fail(err: Error): void {
    this.failure ??= err
    this.notify()
  }

  private notify(): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  /** Batches in the order of their pieces: this file's lines, numbered on from the last merged. */
  private mergeReady(): void {
    const replay = this.replay
    for (let b = this.done.get(this.merged); b !== undefined; b = this.done.get(this.merged)) {
      this.done.delete(this.merged)
      this.merged++
      const file = replay.file
      replay.lineBase = file.lines
      try {
        replay.mergeBatch(b)
      } catch (err) {
        this.fail(err as Error)
        return
      }
      file.lines += b.lines
      replay.result.lines += b.lines
    }
    this.notify()
  }
}
