// What a `records: { response }` route counts in the upstream's answer: ids selected from
// JSON (the default), HTML (a CSS selector), XML (an XPath subset) or CSV (a column), each
// optionally narrowed by a regular expression on the selected value. Compiled once at config
// load; fed the decoded answer (content-encoding undone) chunk by chunk as it arrives, charset
// decoded as browsers do: HTML, XML and CSV are read as they stream in, JSON (whose reader
// needs the whole text) when it is complete.
import { SelectorError, UninspectableError } from '../../errors.js'
import { mediaType, selectJsonBody } from '../body.js'
import { compileSelector } from '../selector.js'
import { textStream, type MarkupKind } from './charset.js'
import { csvReader, type CsvColumn } from './csv.js'
import { compileCss, htmlReader } from './html.js'
import { compileXPath, xmlReader } from './xml.js'

export type AnswerSpec =
  | string
  | { json: string }
  | { html: string; attr?: string; match?: string }
  | { xml: string; match?: string }
  | {
      csv: { column: string | number; delimiter?: string; quote?: string; header?: boolean }
      match?: string
    }

export interface AnswerIds {
  ids: string[]
  /** Rows a CSV answer could not take an id from (ragged): logged. */
  skipped?: number
}

export interface AnswerExtractor {
  kind: 'json' | 'html' | 'xml' | 'csv'
  /** What `sluice check` prints: `html "table.results tr[data-id]" @data-id ~ /[?&]id=(\d+)/`. */
  describe: string
  /** Read an answer as it comes: its decoded bytes in any pieces, then its ids. */
  begin(contentType: string | undefined): AnswerReader
  /** The ids of a whole answer (begin, one write, end). */
  extract(body: Buffer, contentType: string | undefined): AnswerIds
}

/** One answer being read. Either call may throw UninspectableError (the route's policy decides). */
export interface AnswerReader {
  write(chunk: Buffer): void
  end(): AnswerIds
}

function extractor(
  kind: AnswerExtractor['kind'],
  describe: string,
  begin: (contentType: string | undefined) => AnswerReader,
): AnswerExtractor {
  return {
    kind,
    describe,
    begin,
    extract(body, contentType) {
      const r = begin(contentType)
      r.write(body)
      return r.end()
    },
  }
}

/**
 * The format an answer says it is, by its media type: one of the readers' formats, `binary`
 * (a PDF, a spreadsheet, an archive, media), or null when it does not say (no type,
 * text/plain, octet-stream, a vendor type such as application/vnd.ms-excel).
 */
function declaredFormat(contentType: string | undefined): AnswerExtractor['kind'] | 'binary' | null {
  const type = mediaType(contentType)
  if (type === 'text/html' || type === 'application/xhtml+xml') return 'html'
  if (/[/+]json$|javascript|ecmascript/.test(type)) return 'json'
  if (/[/+]xml$/.test(type)) return 'xml'
  if (/csv|comma-separated/.test(type)) return 'csv'
  if (/pdf|zip|openxmlformats|msword|opendocument|^(image|audio|video|font)\//.test(type)) return 'binary'
  return null
}

/**
 * The same URL often answers in another format when asked (`Accept: application/json`,
 * `X-Requested-With: XMLHttpRequest`, `?format=json|pdf|xlsx`): a reader of the configured
 * format would find no ids in it and let every record through. An answer that says it is
 * another format, or whose first text no answer of this format starts with (`{`/`[` for JSON,
 * `<` for markup, `%PDF-`, NUL bytes), is uninspectable instead (the route's `uninspectable`
 * policy decides). A CSV export may say text/html (PHP's default type).
 */
function sameFormat(kind: AnswerExtractor['kind'], contentType: string | undefined): (head: string) => void {
  const declared = declaredFormat(contentType)
  if (declared !== null && declared !== kind && !(kind === 'csv' && declared === 'html'))
    throw new UninspectableError(`the answer is ${declared} (${contentType}), not the ${kind} this route reads`)
  return (head) => {
    const first = head.trimStart()[0] as string
    const foreign =
      kind === 'xml'
        ? first !== '<'
        : (kind === 'html' ? '{[' : '{[<').includes(first) || head.trimStart().startsWith('%PDF-')
    if (foreign || head.slice(0, 1024).includes('\u0000'))
      throw new UninspectableError(
        `the answer starts ${JSON.stringify(head.trimStart().slice(0, 8))}: not the ${kind} this route reads`,
      )
  }
}

/** A text format's reader behind the charset decoder (and the check that the answer is of its format). */
function textReader(
  contentType: string | undefined,
  kind: MarkupKind,
  format: AnswerExtractor['kind'],
  reader: { write(text: string): void },
  end: () => AnswerIds,
): AnswerReader {
  let check: ((first: string) => void) | null = sameFormat(format, contentType)
  const text = textStream(contentType, kind, (t) => {
    // (Checked on the first piece that holds more than white space.)
    if (check !== null && /\S/.test(t)) {
      check(t)
      check = null
    }
    reader.write(t)
  })
  return {
    write: (chunk) => text.write(chunk),
    end: () => {
      text.end()
      return end()
    },
  }
}

/** Throws SelectorError (with what is wrong) for a bad selector, XPath or regular expression. */
export function compileAnswer(spec: AnswerSpec): AnswerExtractor {
  if (typeof spec === 'string' || 'json' in spec) {
    const text = typeof spec === 'string' ? spec : spec.json
    const selector = compileSelector(text)
    // The source-text reader needs the whole text: the pieces are kept (not copied) until the end.
    return extractor('json', `json ${text}`, (type) => {
      const parts: Buffer[] = []
      return {
        write: (chunk) => void parts.push(chunk),
        end: () => ({ ids: selectJsonBody(joined(parts), type, selector) }),
      }
    })
  }
  const match = narrow(spec.match)
  const suffix = spec.match === undefined ? '' : ` ~ /${spec.match}/`
  if ('html' in spec) {
    const chains = compileCss(spec.html)
    const describe = `html "${spec.html}"${spec.attr !== undefined ? ` @${spec.attr}` : ' text'}${suffix}`
    return extractor('html', describe, (type) => {
      const html = htmlReader(chains, spec.attr)
      return textReader(type, 'html', 'html', html, () => ({ ids: match(html.end()) }))
    })
  }
  if ('xml' in spec) {
    const path = compileXPath(spec.xml)
    return extractor('xml', `xml ${spec.xml}${suffix}`, (type) => {
      const xml = xmlReader(path)
      return textReader(type, 'xml', 'xml', xml, () => ({ ids: match(xml.end()) }))
    })
  }
  const column: CsvColumn = { ...spec.csv, header: spec.csv.header ?? true }
  const describe = `csv column ${typeof column.column === 'number' ? column.column : `"${column.column}"`}${suffix}`
  return extractor('csv', describe, (type) => {
    const csv = csvReader(column)
    return textReader(type, 'text', 'csv', csv, () => {
      const { values, skipped } = csv.end()
      return { ids: match(values), skipped }
    })
  })
}

/** Pieces as one buffer: a view when they lie end to end in one (the held body), else a copy. */
function joined(parts: Buffer[]): Buffer {
  if (parts.length === 1) return parts[0] as Buffer
  let end = -1
  let size = 0
  const first = parts[0]
  for (const p of parts) {
    if (first === undefined || p.buffer !== first.buffer || (end >= 0 && p.byteOffset !== end))
      return Buffer.concat(parts)
    end = p.byteOffset + p.length
    size += p.length
  }
  return first === undefined ? Buffer.alloc(0) : Buffer.from(first.buffer, first.byteOffset, size)
}

/** The ids in selected values: each match of the expression (group 1, else all of it), or the values as they are. */
function narrow(source: string | undefined): (values: string[]) => string[] {
  if (source === undefined) return (values) => values
  let re: RegExp
  try {
    re = new RegExp(source, 'g')
  } catch (err) {
    throw new SelectorError(`match: not a regular expression: ${(err as Error).message}`)
  }
  return (values) => {
    const ids: string[] = []
    for (const v of values) for (const m of v.matchAll(re)) if ((m[1] ?? m[0]) !== '') ids.push(m[1] ?? m[0])
    return ids
  }
}
