// Record ids in a CSV export: one column, named by its header or numbered from 1. RFC 4180 as
// spreadsheets write it: quoted fields with delimiters, doubled quotes and newlines in them,
// CRLF or LF, a BOM. The delimiter is the one the header line uses most (`,` `;` tab `|`:
// spreadsheets in many locales export `;`) unless configured. A ragged row is counted if it
// has the column, and otherwise skipped and reported.
//
// A single pass over the text that keeps only the one column, rather than csv-parse: on the
// bench's 50-row export csv-parse took 136 µs an answer (its per-call option handling and a
// record array per row), this scanner ~10 µs — the difference between inspection costing more
// than the proxy and costing little.
import { UninspectableError } from '../../errors.js'
export interface CsvColumn {
  /** A header name (compared trimmed, in any case), or a 1-based column number. */
  column: string | number
  delimiter?: string
  quote?: string
  /** The first row names the columns (default: true). */
  header: boolean
}

export interface CsvValues {
  values: string[]
  /** Rows without the column. */
  skipped: number
}

const CANDIDATES = [',', ';', '\t', '|']

/**
 * The same over text in pieces: rows are read as soon as their line break has come; the row
 * under way (and, for a guessed delimiter, the header line) waits for the next piece.
 */
export function csvReader(spec: CsvColumn): { write(text: string): void; end(): CsvValues } {
  let delimiter = spec.delimiter === undefined ? -1 : spec.delimiter.charCodeAt(0)
  const quote = (spec.quote ?? '"').charCodeAt(0)
  const quoteChar = String.fromCharCode(quote)
  let want = typeof spec.column === 'number' ? spec.column - 1 : -1
  const name = typeof spec.column === 'string' ? spec.column.trim().toLowerCase() : ''
  let header = typeof spec.column === 'string' || spec.header
  const values: string[] = []
  let skipped = 0
  let text = ''
  let started = false

  /** Reads the whole rows of `text`, keeps the rest for the next piece (all of it when `final`). */
  const rows = (final: boolean): void => {
    if (!started) {
      if (text.length === 0) return
      started = true
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
    }
    if (delimiter < 0) {
      const guessed = guessDelimiter(text, final)
      if (guessed === null) return
      delimiter = guessed.charCodeAt(0)
    }
    const n = text.length
    let i = 0
    let row = 0
    rows: while (i < n) {
      row = i
      // One row: fields until an unquoted line break.
      let col = 0
      let found: string | undefined
      let blank = true
      for (;;) {
        let value: string
        if (text.charCodeAt(i) === quote) {
          let end = i + 1
          let parts: string[] | null = null
          let from = end
          for (;;) {
            end = text.indexOf(quoteChar, end)
            if (end < 0 || (end + 1 === n && !final)) {
              if (!final) break rows
              throw new UninspectableError('not readable as CSV: a quoted field never ends')
            }
            if (text.charCodeAt(end + 1) === quote) {
              ;(parts ??= []).push(text.slice(from, end + 1))
              end += 2
              from = end
              continue
            }
            break
          }
          value = parts ? parts.join('') + text.slice(from, end) : text.slice(from, end)
          i = end + 1
          // Whatever follows the closing quote up to the delimiter belongs to the field (lax, as spreadsheets read it).
          while (i < n && text.charCodeAt(i) !== delimiter && text.charCodeAt(i) !== 10 && text.charCodeAt(i) !== 13)
            value += text[i++]
        } else {
          const start = i
          while (i < n && text.charCodeAt(i) !== delimiter && text.charCodeAt(i) !== 10 && text.charCodeAt(i) !== 13)
            i++
          value = text.slice(start, i)
        }
        // The row goes on in the next piece: read it then, whole.
        if (!final && (i >= n || (i === n - 1 && text.charCodeAt(i) === 13))) break rows
        if (value !== '') blank = false
        if (header && want < 0 && value.trim().toLowerCase() === name) want = col
        if (col === want) found = value
        col++
        if (i < n && text.charCodeAt(i) === delimiter) {
          i++
          continue
        }
        break
      }
      // The line break: CRLF, LF or CR.
      if (text.charCodeAt(i) === 13) i++
      if (text.charCodeAt(i) === 10) i++
      row = i
      if (header) {
        header = false
        if (want < 0) throw new UninspectableError(`no column "${String(spec.column)}" in the header row`)
        continue
      }
      if (blank && col === 1) continue
      if (found === undefined) skipped++
      else if (found.trim() !== '') values.push(found.trim())
    }
    text = row >= n ? '' : text.slice(row)
  }

  return {
    write(piece) {
      text = text.length === 0 ? piece : text + piece
      rows(false)
    },
    end() {
      rows(true)
      if (header && typeof spec.column === 'string')
        throw new UninspectableError(`no column "${spec.column}" in the header row`)
      return { values, skipped }
    },
  }
}

/** The candidate that occurs most often outside quotes in the first line (null: that line is still coming). */
function guessDelimiter(text: string, final: boolean): string | null {
  const counts = new Map<string, number>()
  let quoted = false
  let ended = final
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string
    if (c === '"') quoted = !quoted
    else if (!quoted && (c === '\n' || c === '\r')) {
      ended = true
      break
    } else if (!quoted && CANDIDATES.includes(c)) counts.set(c, (counts.get(c) ?? 0) + 1)
  }
  if (!ended) return null
  let best = ','
  let most = 0
  for (const c of CANDIDATES) {
    if ((counts.get(c) ?? 0) > most) {
      best = c
      most = counts.get(c) as number
    }
  }
  return best
}
