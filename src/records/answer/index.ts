// What a `records: { response }` route counts in the upstream's answer: ids selected from
// JSON (the default), HTML (a CSS selector), XML (an XPath subset) or CSV (a column), each
// optionally narrowed by a regular expression on the selected value. Compiled once at config
// load; run on the decoded answer (content-encoding undone, charset decoded as browsers do).
import { SelectorError } from '../../errors.js'
import { selectJsonBody } from '../body.js'
import { compileSelector } from '../selector.js'
import { decodeText } from './charset.js'
import { csvValues, type CsvColumn } from './csv.js'
import { compileCss, htmlValues } from './html.js'
import { compileXPath, xmlValues } from './xml.js'

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
  extract(body: Buffer, contentType: string | undefined): AnswerIds
}

/** Throws SelectorError (with what is wrong) for a bad selector, XPath or regular expression. */
export function compileAnswer(spec: AnswerSpec): AnswerExtractor {
  if (typeof spec === 'string' || 'json' in spec) {
    const text = typeof spec === 'string' ? spec : spec.json
    const selector = compileSelector(text)
    return {
      kind: 'json',
      describe: `json ${text}`,
      extract: (body, type) => ({ ids: selectJsonBody(body, type, selector) }),
    }
  }
  const match = narrow(spec.match)
  const suffix = spec.match === undefined ? '' : ` ~ /${spec.match}/`
  if ('html' in spec) {
    const chains = compileCss(spec.html)
    return {
      kind: 'html',
      describe: `html "${spec.html}"${spec.attr !== undefined ? ` @${spec.attr}` : ' text'}${suffix}`,
      extract: (body, type) => ({ ids: match(htmlValues(decodeText(body, type, 'html'), chains, spec.attr)) }),
    }
  }
  if ('xml' in spec) {
    const path = compileXPath(spec.xml)
    return {
      kind: 'xml',
      describe: `xml ${spec.xml}${suffix}`,
      extract: (body, type) => ({ ids: match(xmlValues(decodeText(body, type, 'xml'), path)) }),
    }
  }
  const column: CsvColumn = { ...spec.csv, header: spec.csv.header ?? true }
  return {
    kind: 'csv',
    describe: `csv column ${typeof column.column === 'number' ? column.column : `"${column.column}"`}${suffix}`,
    extract: (body, type) => {
      const { values, skipped } = csvValues(decodeText(body, type, 'text'), column)
      return { ids: match(values), skipped }
    },
  }
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
