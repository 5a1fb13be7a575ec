// Streams a file as "\n"-terminated lines of raw bytes. Not readline: readline also ends lines
// at "\r", so a "\n" changed into "\r" would go unnoticed, and it decodes before we can compare
// bytes.
import { createReadStream } from 'node:fs'

/** Longer lines are not audit entries (the writer never produces them); they are not buffered. */
export const MAX_LINE_BYTES = 1024 * 1024

export interface RawLine {
  /** 1-based line number in the file. */
  number: number
  /** The line without its "\n"; empty when `tooLong`. */
  bytes: Buffer
  /** False for a last line with no "\n" after it (a torn write or a truncated file). */
  terminated: boolean
  /** The line exceeded MAX_LINE_BYTES; its bytes were skipped. */
  tooLong: boolean
}

export async function* readLines(file: string): AsyncGenerator<RawLine> {
  let parts: Buffer[] = []
  let partBytes = 0
  let tooLong = false
  let number = 0
  for await (const chunk of createReadStream(file, { highWaterMark: 64 * 1024 }) as AsyncIterable<Buffer>) {
    let start = 0
    for (let nl = chunk.indexOf(0x0a, start); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, nl)
      const bytes =
        tooLong || partBytes + piece.length > MAX_LINE_BYTES
          ? Buffer.alloc(0)
          : parts.length === 0
            ? piece
            : Buffer.concat([...parts, piece])
      yield { number: ++number, bytes, terminated: true, tooLong: tooLong || partBytes + piece.length > MAX_LINE_BYTES }
      parts = []
      partBytes = 0
      tooLong = false
      start = nl + 1
    }
    const rest = chunk.subarray(start)
    if (rest.length === 0) continue
    partBytes += rest.length
    if (partBytes > MAX_LINE_BYTES) {
      tooLong = true
      parts = []
    } else {
      // Copy: the stream may reuse its buffer.
      parts.push(Buffer.from(rest))
    }
  }
  if (partBytes > 0)
    yield { number: number + 1, bytes: tooLong ? Buffer.alloc(0) : Buffer.concat(parts), terminated: false, tooLong }
}
