// Log bytes → lines, as node:readline splits them (crlfDelay: Infinity) but without a string
// per line: a line ends at `\n`, `\r\n` or a lone `\r`; a last line without an end is a line
// unless it is empty. Bytes are cut into pieces of whole lines (at a `\n`, which no UTF-8
// sequence contains), each piece decoded once; a line is its piece and a [start, end) range.
//
// Pieces are kept small (PIECE_BYTES): a string sliced from a piece (a record id, an account)
// that a store keeps holds the whole piece in memory, as readline's lines hold its chunks.

/** Decoded text per piece: about the size readline decodes at a time. */
export const PIECE_BYTES = 1 << 16

export interface LineHandler {
  /** One line: text[start, end). */
  line(text: string, start: number, end: number): void
}

/**
 * Whole lines of a stream of chunks. `push` returns the bytes of the complete lines seen so far
 * (those of earlier chunks included), `end` the last line's bytes (or undefined).
 */
export class ByteLines {
  private rest: Buffer | undefined

  /** Whole lines: up to and including the chunk's last `\n`; undefined when it has none. */
  push(chunk: Buffer): Buffer | undefined {
    const last = chunk.lastIndexOf(10)
    if (last < 0) {
      this.rest = this.rest ? Buffer.concat([this.rest, chunk]) : Buffer.from(chunk)
      return undefined
    }
    const head = this.rest
    // A fresh buffer of its own (never a slice of Buffer's shared pool): it may be transferred.
    const out = Buffer.allocUnsafeSlow((head?.length ?? 0) + last + 1)
    let o = 0
    if (head) o += head.copy(out, 0)
    chunk.copy(out, o, 0, last + 1)
    this.rest = last + 1 < chunk.length ? Buffer.from(chunk.subarray(last + 1)) : undefined
    return out
  }

  /** The last line, without its end (not yet returned by push), if any. */
  end(): Buffer | undefined {
    const r = this.rest
    this.rest = undefined
    return r !== undefined && r.length > 0 ? r : undefined
  }
}

/**
 * Every line of `bytes` (whole lines; `last`: the stream's unended last line), decoded in pieces
 * of about `pieceBytes`, to `handler`. Returns the number of lines.
 */
export function eachLineOf(bytes: Buffer, last: boolean, handler: LineHandler, pieceBytes = PIECE_BYTES): number {
  let lines = 0
  const n = bytes.length
  for (let o = 0; o < n;) {
    let end = o + pieceBytes >= n ? n : bytes.indexOf(10, o + pieceBytes)
    end = end < 0 ? n : Math.min(n, end + 1)
    let text = bytes.toString('utf8', o, end)
    // The unended last line reads as if it had a `\n` (readline emits it unless it is empty).
    if (last && end === n) text += '\n'
    // (A `\r` is looked for in the bytes: searching a string just decoded cost ~15 % of a replay.)
    lines += eachLine(text, handler, bytes.subarray(o, end).indexOf(13) >= 0)
    o = end
  }
  return lines
}

/** The lines of `text`, which ends with `\n` (`mayHaveCr`: false when it holds no `\r`). Returns how many. */
export function eachLine(text: string, handler: LineHandler, mayHaveCr = true): number {
  const n = text.length
  let lines = 0
  let cr = mayHaveCr ? text.indexOf('\r') : -1
  for (let pos = 0; pos < n;) {
    let nl = text.indexOf('\n', pos)
    if (nl < 0) nl = n
    if (cr < 0 || cr > nl) {
      handler.line(text, pos, nl)
      lines++
    } else {
      // `\r\n` ends the line once; any other `\r` ends a line of its own.
      const end = nl > pos && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl
      let s = pos
      while (cr >= 0 && cr < end) {
        handler.line(text, s, cr)
        lines++
        s = cr + 1
        cr = text.indexOf('\r', s)
      }
      handler.line(text, s, end)
      lines++
      if (cr >= 0 && cr <= nl) cr = text.indexOf('\r', nl + 1)
    }
    pos = nl + 1
  }
  return lines
}

/** Whether the line holds nothing but white space (`line.trim() === ''`), without slicing it. */
export function blank(text: string, start: number, end: number): boolean {
  if (start === end) return true
  const c = text.charCodeAt(start)
  if (c > 32 && c < 127) return false
  return text.slice(start, end).trim() === ''
}
