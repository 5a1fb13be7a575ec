// Record ids in a CSV export: one column, named by its header or numbered from 1. Parsed by
// csv-parse (quoted fields with commas, quotes and newlines in them, CRLF or LF, a BOM); the
// delimiter is the one the header line uses most (`,` `;` tab `|`: spreadsheets in many locales
// export `;`) unless configured. A ragged row is counted if it has the column, and otherwise
// skipped and reported.
import { parse } from 'csv-parse/sync'
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

export function csvValues(text: string, spec: CsvColumn): CsvValues {
  const delimiter = spec.delimiter ?? guessDelimiter(text)
  let rows: string[][]
  try {
    rows = parse(text, {
      delimiter,
      quote: spec.quote ?? '"',
      bom: true,
      relax_column_count: true,
      relax_quotes: true,
      skip_empty_lines: true,
    }) as string[][]
  } catch (err) {
    throw new UninspectableError(`not readable as CSV: ${(err as Error).message}`)
  }
  let index: number
  let first = 0
  if (typeof spec.column === 'number') {
    index = spec.column - 1
    if (spec.header) first = 1
  } else {
    const want = spec.column.trim().toLowerCase()
    index = (rows[0] ?? []).findIndex((h) => h.trim().toLowerCase() === want)
    if (index < 0) throw new UninspectableError(`no column "${spec.column}" in the header row`)
    first = 1
  }
  const values: string[] = []
  let skipped = 0
  for (let r = first; r < rows.length; r++) {
    const v = (rows[r] as string[])[index]
    if (v === undefined) skipped++
    else if (v.trim() !== '') values.push(v.trim())
  }
  return { values, skipped }
}

/** The candidate that occurs most often outside quotes in the first line. */
function guessDelimiter(text: string): string {
  const counts = new Map<string, number>()
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string
    if (c === '"') quoted = !quoted
    else if (!quoted && (c === '\n' || c === '\r')) break
    else if (!quoted && CANDIDATES.includes(c)) counts.set(c, (counts.get(c) ?? 0) + 1)
  }
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
