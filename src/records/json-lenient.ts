// JSON as the lenient readers of legacy back ends read it, rewritten as strict JSON for
// json-text.ts to select from. Gson's `fromJson` is lenient unless told otherwise, Json.NET
// is by default, Jackson is with its ALLOW_* features, and servlets often parse the body
// whatever its Content-Type: `{ids:[1,2,3]}` posted as a form is three ids to them and no JSON
// at all to a strict reader (nor a form with an `ids` field). Read here, as the union of those
// readers: the non-execute prefixes (`)]}'`, `)]}',`, `while(1);`, `for(;;);`, `{}&&`),
// comments (`//`, `#`, `/* */`), unquoted and single-quoted names and strings, `=` and `=>`
// for `:`, `;` for `,`, missing and trailing separators. A value that is no JSON literal
// (`017`, `0x1F`, `NaN`, `abc`) becomes a string: an id spelled apart from its record's usual
// spelling counts as another id (an over-count, never a miss). Only a whole document whose
// first value is an object or an array is read (what follows it may be white space and
// comments only): anything else stays as unreadable as it was. Iterative, depth-capped like
// json-text.ts.
import { MAX_DEPTH } from './json-text.js'

/**
 * Prefixes that keep a JSON answer from running as a script (XSSI guards): AngularJS's and
 * Google's, Facebook's, and older ones. Longest first.
 */
const GUARDS = [")]}',", ")]}'", 'while(1);', 'while (1);', 'for(;;);', 'for (;;);', '{}&&']

/**
 * The JSON inside a JSONP answer (`callback({...});`, jQuery's `typeof cb === 'function' &&
 * cb({...})`, behind an empty comment too), or null when the text is not one. Legacy AJAX pages
 * fetch their data so; the ids are the document's all the same.
 */
export function jsonpPayload(text: string): string | null {
  const m = JSONP.exec(text)
  if (m === null) return null
  const end = text.lastIndexOf(')')
  if (end < m[0].length || !/^\s*;?\s*$/.test(text.slice(end + 1))) return null
  return text.slice(m[0].length, end)
}
const JSONP = /^\s*(?:\/\*\*\/\s*)?(?:typeof\s+[\w$.]+\s*={2,3}\s*(['"])function\1\s*&&\s*)?[A-Za-z_$][\w$.]*\s*\(/

const NAME = 0
const VALUE = 1
const AFTER = 2

/** The document as strict JSON text, or null when it is not a lenient JSON container. */
export function strictFromLenient(text: string): string | null {
  const n = text.length
  let i = skip(text, text.charCodeAt(0) === 0xfeff ? 1 : 0)
  const guard = GUARDS.find((g) => text.startsWith(g, i))
  if (guard !== undefined) i = skip(text, i + guard.length)
  const first = text[i]
  if (first !== '{' && first !== '[') return null
  const out: string[] = []
  /** The open containers, and how many members each has had written. */
  const open: string[] = []
  const counts: number[] = []
  let state = VALUE
  for (;;) {
    i = skip(text, i)
    if (open.length === 0 && out.length > 0) return i >= n ? out.join('') : null
    if (i >= n) return null
    const c = text[i] as string
    const inObject = open[open.length - 1] === '{'
    if (state === AFTER) {
      if (c === ',' || c === ';') {
        i++
        state = inObject ? NAME : VALUE
      } else if ((c === '}' && inObject) || (c === ']' && !inObject)) {
        i = close(out, open, counts, c, i)
        state = AFTER
      } else return null
      continue
    }
    if (state === NAME) {
      if (c === '}') {
        i = close(out, open, counts, c, i)
        state = AFTER
        continue
      }
      if (c === ',' || c === ';') {
        i++
        continue
      }
      const name = c === '"' || c === "'" ? quoted(text, i) : literal(text, i)
      if (name === null) return null
      member(out, counts)
      out.push(JSON.stringify(name.value))
      i = skip(text, name.end)
      if (text[i] === ':') i++
      else if (text[i] === '=') i += text[i + 1] === '>' ? 2 : 1
      else return null
      out.push(':')
      state = VALUE
      continue
    }
    // VALUE: in an array, after a name, or the document's first.
    if (open.length > 0 && !inObject) {
      if (c === ']') {
        i = close(out, open, counts, c, i)
        state = AFTER
        continue
      }
      if (c === ',' || c === ';') {
        // A missing element (Gson reads it as null).
        member(out, counts)
        out.push('null')
        i++
        continue
      }
      member(out, counts)
    }
    if (c === '{' || c === '[') {
      if (open.length >= MAX_DEPTH) return null
      out.push(c)
      open.push(c)
      counts.push(0)
      state = c === '{' ? NAME : VALUE
      i++
      continue
    }
    const value = c === '"' || c === "'" ? quoted(text, i) : literal(text, i)
    if (value === null) return null
    out.push(value.quoted || !isJsonLiteral(value.value) ? JSON.stringify(value.value) : value.value)
    i = value.end
    state = AFTER
  }
}

function member(out: string[], counts: number[]): void {
  const at = counts.length - 1
  if ((counts[at] as number) > 0) out.push(',')
  counts[at] = (counts[at] as number) + 1
}

function close(out: string[], open: string[], counts: number[], c: string, i: number): number {
  out.push(c)
  open.pop()
  counts.pop()
  return i + 1
}

const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/

function isJsonLiteral(text: string): boolean {
  return text === 'true' || text === 'false' || text === 'null' || NUMBER.test(text)
}

/** White space and comments skipped: the index of the next thing. */
function skip(text: string, i: number): number {
  const n = text.length
  while (i < n) {
    const c = text.charCodeAt(i)
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0x0c) i++
    else if (c === 0x23 || (c === 0x2f && text[i + 1] === '/')) {
      const end = text.indexOf('\n', i)
      i = end < 0 ? n : end + 1
    } else if (c === 0x2f && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2)
      i = end < 0 ? n : end + 2
    } else break
  }
  return i
}

/** An unquoted name or value: up to a character that ends it in Gson. */
function literal(text: string, i: number): { value: string; end: number; quoted: false } | null {
  let end = i
  while (end < text.length && !ENDS_LITERAL.has(text[end] as string)) end++
  return end === i ? null : { value: text.slice(i, end), end, quoted: false }
}
const ENDS_LITERAL = new Set(['/', '\\', ';', '#', '=', '{', '}', '[', ']', ':', ',', ' ', '\t', '\f', '\r', '\n'])

/** A string in `"` or `'`, its escapes undone (an unknown escape is the character itself). */
function quoted(text: string, i: number): { value: string; end: number; quoted: true } | null {
  const q = text[i]
  let value = ''
  let from = i + 1
  for (let k = from; k < text.length; k++) {
    const c = text[k]
    if (c === q) return { value: value + text.slice(from, k), end: k + 1, quoted: true }
    if (c !== '\\') continue
    value += text.slice(from, k)
    const e = text[k + 1]
    if (e === undefined) return null
    if (e === 'u') {
      const hex = text.slice(k + 2, k + 6)
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) return null
      value += String.fromCharCode(parseInt(hex, 16))
      k += 5
    } else {
      value += ESCAPES[e] ?? e
      k += 1
    }
    from = k + 1
  }
  return null
}
const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f' }
