// Record ids read straight from JSON text, with the selector of selector.ts (`$`, `.name`,
// `["name"]`, `[n]`, `[*]`) and its collect rules, but without JSON.parse in between. Two
// parser differentials make JSON.parse the wrong reader for counting what a client or a
// legacy upstream reads:
//
// - Big integers: JSON.parse rounds numbers above 2^53, so fifty distinct Java `long` or
//   snowflake ids can collapse into one. Here a number is its own token text. An integer
//   token is already canonical (JSON allows no leading zeros or plus sign), so it is the same
//   text as String(Number(token)) whenever that is exact, and "-0" is "0" as in String(-0).
//   A fraction or exponent token whose value is a safe integer is that integer ("1.0" and
//   "1e2" are "1" and "100"); any other fraction or exponent token is its text as written, so
//   distinct tokens are distinct ids (at worst an over-count, never a collapse). 1e400, which
//   JSON.parse turns into Infinity and the walk skips, is an id "1e400" here.
// - Duplicate keys: JSON.parse keeps the last member, other parsers keep the first. Every
//   member with the selected key is followed, and `[*]` over an object visits every member,
//   so the ids are the union of what any reader could see.
//
// One pass over the text, materialising only what the selector reaches; everything else is
// validated (RFC 8259: what JSON.parse accepts, plus a leading byte order mark, plus raw
// control characters inside strings) and skipped. The last is the union rule again: JSON.parse
// refuses a string holding a raw tab or U+0001, but Python's `json.loads(strict=False)`,
// Jackson's ALLOW_UNQUOTED_CONTROL_CHARS and lenient Gson read it as that character — and a
// legacy app that builds its JSON by hand emits one whenever a user typed one. Refusing it
// would make every page holding such a record uninspectable (blocked for everyone, or counted
// as a guess), so one planted contact could open or shut a route; read, its ids count as the
// lenient readers see them. Outside strings a control character other than white space is
// still an error, as it is to every reader.
// Recursion follows the selector's steps only (at most MAX_STEPS); skipping nested values is
// iterative, and nesting is capped at MAX_DEPTH, so no body can overflow the stack. A `[-n]`
// step reads its array once to find its length, then the chosen element again.
//
// Where the walk of selector.ts looks at an array's own properties the same is done here, so
// the two agree on every document JSON.parse reads the same way: a key step that is an array
// index (`["0"]`) selects that element, and `["length"]` on an array is its length. Ids come
// in document order; the walk's `[*]` over an object follows Object.values, which puts
// integer-like keys first, so the same ids may come in another order.

import { JsonTextError, SelectorError } from '../errors.js'
import { parseSelector } from './selector.js'

/** A compiled selector step, as parseSelector of selector.ts returns them. */
export type Step = ReturnType<typeof parseSelector>[number]

/** Bodies with containers nested deeper than this are refused (JsonTextError). */
export const MAX_DEPTH = 10_000
/** Selectors of more steps than this are refused (SelectorError): reading follows the steps by recursion. */
export const MAX_STEPS = 256

export { JsonTextError }

// Steps prepared once per selector. A key step that names an array index or "length" also
// applies to arrays (the walk of selector.ts reads them as an array's own properties).
const KEY = 0
const INDEX = 1
const ALL = 2

interface Prepared {
  kind: typeof KEY | typeof INDEX | typeof ALL
  /** Key steps: the key, and whether it holds a backslash (then no key written without escapes equals it). */
  key: string
  keyHasBackslash: boolean
  /** Index steps: the index (negative from the end). Key steps: the array index the key names, or -1. */
  index: number
  /** The key step "length". */
  isLength: boolean
}

const preparedSteps = new WeakMap<readonly Step[], Prepared[]>()

function prepare(steps: readonly Step[]): Prepared[] {
  let p = preparedSteps.get(steps)
  if (p) return p
  if (steps.length > MAX_STEPS)
    throw new SelectorError(`a selector of ${steps.length} steps is longer than ${MAX_STEPS}`)
  p = steps.map((s): Prepared => {
    if (s.kind === 'key') {
      const arrayIndex = /^(?:0|[1-9]\d*)$/.test(s.key) && Number(s.key) < 2 ** 32 - 1 ? Number(s.key) : -1
      return {
        kind: KEY,
        key: s.key,
        keyHasBackslash: s.key.includes('\\'),
        index: arrayIndex,
        isLength: s.key === 'length',
      }
    }
    // [-0] is [0], as in the walk.
    if (s.kind === 'index')
      return { kind: INDEX, key: '', keyHasBackslash: false, index: s.index === 0 ? 0 : s.index, isLength: false }
    return { kind: ALL, key: '', keyHasBackslash: false, index: 0, isLength: false }
  })
  preparedSteps.set(steps, p)
  return p
}

/**
 * The ids `steps` (parseSelector of selector.ts) select in the JSON document `text`: what the
 * walk of selector.ts collects from JSON.parse(text), except that numbers are read from their
 * own digits and every member with a selected key is followed (see above). Throws
 * JsonTextError if `text` is not one JSON value (a leading byte order mark is allowed).
 * `anyCase`: keys compare in any case (the steps' keys must be lower case), as ASP.NET Core
 * binds JSON properties.
 */
/** The current call's key comparison (the scan is synchronous: one call at a time). */
let keysInAnyCase = false

export function selectJsonText(text: string, steps: readonly Step[], anyCase = false): string[] {
  const out: string[] = []
  const s = prepare(steps)
  resetScan()
  keysInAnyCase = anyCase
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0
  let c = text.charCodeAt(i)
  while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++i)
  i = select(text, i, s, 0, 0, out)
  c = text.charCodeAt(i)
  while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++i)
  if (i < text.length) fail(text, i)
  return out
}

/** compileSelector of selector.ts for JSON text: `compileJsonTextSelector('$.items[*].id')(body)`. */
export function compileJsonTextSelector(selector: string | readonly Step[]): (text: string) => string[] {
  const steps = typeof selector === 'string' ? parseSelector(selector) : selector
  prepare(steps)
  return (text) => selectJsonText(text, steps)
}

/** Throws JsonTextError unless `text` is one JSON value (a leading BOM allowed). */
export function validateJsonText(text: string): void {
  resetScan()
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0
  let c = text.charCodeAt(i)
  while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++i)
  i = skipValue(text, i, 0)
  c = text.charCodeAt(i)
  while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++i)
  if (i < text.length) fail(text, i)
}

function fail(text: string, i: number): never {
  if (i >= text.length) throw new JsonTextError('unexpected end of JSON', text.length)
  const c = text.charCodeAt(i)
  const shown = c < 32 || c === 127 ? `\\u${c.toString(16).padStart(4, '0')}` : text[i]
  throw new JsonTextError(`unexpected ${c < 32 ? 'control character' : 'character'} "${shown}"`, i)
}

function tooDeep(i: number): never {
  throw new JsonTextError(`nesting deeper than ${MAX_DEPTH.toLocaleString('en-US')}`, i)
}

// --- Selection: one call per selector step reached --------------------------------------

/** Reads the value at `i` (no whitespace before it) with steps[at..]; returns the offset after it. */
function select(text: string, i: number, steps: readonly Prepared[], at: number, depth: number, out: string[]): number {
  if (at === steps.length) return collect(text, i, depth, out)
  const c = text.charCodeAt(i)
  const step = steps[at] as Prepared
  if (c === 123 /* { */) {
    if (step.kind === INDEX) return skipValue(text, i, depth)
    if (depth >= MAX_DEPTH) tooDeep(i)
    return selectMembers(text, i, steps, at, depth + 1, out, step)
  }
  if (c === 91 /* [ */) {
    if (step.kind === KEY) {
      if (step.index >= 0) return selectElement(text, i, steps, at, depth, out, step.index)
      if (step.isLength) return arrayLength(text, i, depth, at + 1 === steps.length ? out : null)
      return skipValue(text, i, depth)
    }
    if (step.kind === INDEX) return selectElement(text, i, steps, at, depth, out, step.index)
    if (depth >= MAX_DEPTH) tooDeep(i)
    // [*]: every element.
    const inner = depth + 1
    let c2 = text.charCodeAt(++i)
    while (c2 === 32 || c2 === 10 || c2 === 13 || c2 === 9) c2 = text.charCodeAt(++i)
    if (c2 === 93) return i + 1
    for (;;) {
      i = select(text, i, steps, at + 1, inner, out)
      c2 = text.charCodeAt(i)
      while (c2 === 32 || c2 === 10 || c2 === 13 || c2 === 9) c2 = text.charCodeAt(++i)
      if (c2 === 44) {
        c2 = text.charCodeAt(++i)
        while (c2 === 32 || c2 === 10 || c2 === 13 || c2 === 9) c2 = text.charCodeAt(++i)
        continue
      }
      if (c2 === 93) return i + 1
      fail(text, i)
    }
  }
  return skipValue(text, i, depth)
}

/** An object at `i` under a key step or [*]; `depth` counts the object itself. */
function selectMembers(
  text: string,
  i: number,
  steps: readonly Prepared[],
  at: number,
  depth: number,
  out: string[],
  step: Prepared,
): number {
  const all = step.kind === ALL
  const key = step.key
  const keyLength = key.length
  let c = text.charCodeAt(++i)
  while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++i)
  if (c === 125) return i + 1
  for (;;) {
    if (c !== 34) fail(text, i)
    const start = i + 1
    const r = scanString(text, start)
    const end = r < 0 ? -r : r
    let match = all
    if (!match) {
      const rawLength = end - 1 - start
      if (keysInAnyCase) {
        match =
          r > 0
            ? rawLength === keyLength && text.slice(start, end - 1).toLowerCase() === key
            : decodeString(text, start, end - 1).toLowerCase() === key
      } else if (r > 0) match = rawLength === keyLength && !step.keyHasBackslash && text.startsWith(key, start)
      else match = rawLength > keyLength && decodeString(text, start, end - 1) === key
    }
    i = end
    c = text.charCodeAt(i)
    while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++i)
    if (c !== 58) fail(text, i)
    c = text.charCodeAt(++i)
    while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++i)
    i = match ? select(text, i, steps, at + 1, depth, out) : skipValue(text, i, depth)
    c = text.charCodeAt(i)
    while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++i)
    if (c === 44) {
      c = text.charCodeAt(++i)
      while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++i)
      continue
    }
    if (c === 125) return i + 1
    fail(text, i)
  }
}

/** An array at `i` under [n] (or a key naming an index); `depth` is the array's parent's. */
function selectElement(
  text: string,
  i: number,
  steps: readonly Prepared[],
  at: number,
  depth: number,
  out: string[],
  index: number,
): number {
  if (depth >= MAX_DEPTH) tooDeep(i)
  const inner = depth + 1
  // From the end: remember where the last -index elements start, read the one chosen again
  // once the array's length is known (it has been validated by then).
  const fromEnd = index < 0 ? -index : 0
  const starts: number[] = []
  let n = 0
  let c = text.charCodeAt(++i)
  while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++i)
  if (c !== 93) {
    for (;;) {
      if (fromEnd > 0) {
        starts[n % fromEnd] = i
        i = skipValue(text, i, inner)
      } else {
        i = n === index ? select(text, i, steps, at + 1, inner, out) : skipValue(text, i, inner)
      }
      n++
      c = text.charCodeAt(i)
      while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++i)
      if (c === 44) {
        c = text.charCodeAt(++i)
        while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++i)
        continue
      }
      if (c === 93) break
      fail(text, i)
    }
  }
  if (fromEnd > 0 && n >= fromEnd) {
    resetScan()
    select(text, starts[(n - fromEnd) % fromEnd] as number, steps, at + 1, inner, out)
  }
  return i + 1
}

/** `["length"]` on an array: its length is the id when it is the last step. */
function arrayLength(text: string, i: number, depth: number, out: string[] | null): number {
  if (depth >= MAX_DEPTH) tooDeep(i)
  const inner = depth + 1
  let n = 0
  let c = text.charCodeAt(++i)
  while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++i)
  if (c !== 93) {
    for (;;) {
      i = skipValue(text, i, inner)
      n++
      c = text.charCodeAt(i)
      while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++i)
      if (c === 44) {
        c = text.charCodeAt(++i)
        while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++i)
        continue
      }
      if (c === 93) break
      fail(text, i)
    }
  }
  if (out) out.push(String(n))
  return i + 1
}

/** The selected value: a string or number is an id, an array yields its strings and numbers. */
function collect(text: string, i: number, depth: number, out: string[]): number {
  const c = text.charCodeAt(i)
  if (c === 34) return collectString(text, i, out)
  if (c === 45 || (c >= 48 && c <= 57)) return collectNumber(text, i, out)
  if (c !== 91) return skipValue(text, i, depth)
  if (depth >= MAX_DEPTH) tooDeep(i)
  const inner = depth + 1
  let c2 = text.charCodeAt(++i)
  while (c2 === 32 || c2 === 10 || c2 === 13 || c2 === 9) c2 = text.charCodeAt(++i)
  if (c2 === 93) return i + 1
  for (;;) {
    if (c2 === 34) i = collectString(text, i, out)
    else if (c2 === 45 || (c2 >= 48 && c2 <= 57)) i = collectNumber(text, i, out)
    else i = skipValue(text, i, inner)
    c2 = text.charCodeAt(i)
    while (c2 === 32 || c2 === 10 || c2 === 13 || c2 === 9) c2 = text.charCodeAt(++i)
    if (c2 === 44) {
      c2 = text.charCodeAt(++i)
      while (c2 === 32 || c2 === 10 || c2 === 13 || c2 === 9) c2 = text.charCodeAt(++i)
      continue
    }
    if (c2 === 93) return i + 1
    fail(text, i)
  }
}

function collectString(text: string, i: number, out: string[]): number {
  const r = scanString(text, i + 1)
  if (r > 0) {
    if (r - i > 2) out.push(text.slice(i + 1, r - 1))
    return r
  }
  const s = decodeString(text, i + 1, -r - 1)
  if (s !== '') out.push(s)
  return -r
}

function collectNumber(text: string, i: number, out: string[]): number {
  const r = scanNumber(text, i)
  if (r > 0) {
    // An integer token: already canonical, except "-0".
    out.push(r - i === 2 && text.charCodeAt(i) === 45 && text.charCodeAt(i + 1) === 48 ? '0' : text.slice(i, r))
    return r
  }
  const token = text.slice(i, -r)
  const n = Number(token)
  out.push(Number.isSafeInteger(n) ? String(n) : token)
  return -r
}

// --- Scanning -------------------------------------------------------------------------------

// Where the next backslash is, at or after where it was last looked for: most strings hold
// none, and then the string ends at the next quote, found with indexOf rather than char by
// char. It is looked for again only once reading has passed it, so each part of the text is
// searched at most once (reads go forward; a re-read, for [-n], resets it first).
let backslashAt = -1

function resetScan(): void {
  backslashAt = -1
}

/**
 * A string whose contents start at `i` (after the opening quote): the offset after the
 * closing quote, negated if the string holds escapes. Raw control characters are part of
 * the string (see the top of this file).
 */
function scanString(text: string, i: number): number {
  const q = text.indexOf('"', i)
  if (q >= 0) {
    if (backslashAt < i) {
      backslashAt = text.indexOf('\\', i)
      if (backslashAt < 0) backslashAt = text.length
    }
    if (backslashAt > q) return q + 1
  }
  return scanEscapedString(text, i)
}

/** scanString, char by char: strings with escapes, and errors. */
function scanEscapedString(text: string, i: number): number {
  let escaped = false
  for (;;) {
    const c = text.charCodeAt(i)
    if (c === 34) return escaped ? -(i + 1) : i + 1
    if (c === 92) {
      escaped = true
      const e = text.charCodeAt(i + 1)
      if (e === 117 /* u */) {
        if (!(
          isHex(text.charCodeAt(i + 2)) &&
          isHex(text.charCodeAt(i + 3)) &&
          isHex(text.charCodeAt(i + 4)) &&
          isHex(text.charCodeAt(i + 5))
        )) {
          let j = i + 2
          while (j < i + 6 && isHex(text.charCodeAt(j))) j++
          if (j >= text.length) fail(text, j)
          throw new JsonTextError(`bad \\u escape`, i)
        }
        i += 6
      } else if (e === 34 || e === 92 || e === 47 || e === 98 || e === 102 || e === 110 || e === 114 || e === 116) {
        i += 2
      } else {
        if (i + 1 >= text.length) fail(text, i + 1)
        throw new JsonTextError(`bad escape "\\${text[i + 1]}"`, i)
      }
    } else if (c !== c) {
      // NaN: the end of the text.
      throw new JsonTextError('unterminated string', text.length)
    } else {
      i++
    }
  }
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70)
}

/** The contents of a string already scanned (from `i` up to the closing quote at `end`). */
function decodeString(text: string, i: number, end: number): string {
  let s = ''
  let from = i
  while (i < end) {
    if (text.charCodeAt(i) !== 92) {
      i++
      continue
    }
    if (i > from) s += text.slice(from, i)
    const e = text.charCodeAt(i + 1)
    if (e === 117) {
      s += String.fromCharCode(Number.parseInt(text.slice(i + 2, i + 6), 16))
      i += 6
    } else {
      s += e === 98 ? '\b' : e === 102 ? '\f' : e === 110 ? '\n' : e === 114 ? '\r' : e === 116 ? '\t' : text[i + 1]
      i += 2
    }
    from = i
  }
  return from < end ? s + text.slice(from, end) : s
}

/** A number starting at `i`: the offset after it, negated if it has a fraction or exponent. */
function scanNumber(text: string, i: number): number {
  let c = text.charCodeAt(i)
  if (c === 45) c = text.charCodeAt(++i)
  if (c === 48) {
    c = text.charCodeAt(++i)
  } else if (c >= 49 && c <= 57) {
    do c = text.charCodeAt(++i)
    while (c >= 48 && c <= 57)
  } else {
    fail(text, i)
  }
  if (c !== 46 && c !== 101 && c !== 69) return i
  if (c === 46) {
    c = text.charCodeAt(++i)
    if (!(c >= 48 && c <= 57)) fail(text, i)
    do c = text.charCodeAt(++i)
    while (c >= 48 && c <= 57)
  }
  if (c === 101 || c === 69) {
    c = text.charCodeAt(++i)
    if (c === 43 || c === 45) c = text.charCodeAt(++i)
    if (!(c >= 48 && c <= 57)) fail(text, i)
    do c = text.charCodeAt(++i)
    while (c >= 48 && c <= 57)
  }
  return -i
}

function literal(text: string, i: number, word: string): number {
  if (!text.startsWith(word, i)) {
    let j = 0
    while (j < word.length && text.charCodeAt(i + j) === word.charCodeAt(j)) j++
    fail(text, i + j)
  }
  return i + word.length
}

// Open containers while skipping: 91 for an array, 123 for an object (their closers are +2).
const open = new Uint8Array(MAX_DEPTH + 1)

/** Validates and passes over the value at `i`, inside `depth` containers; the offset after it. */
function skipValue(text: string, i: number, depth: number): number {
  let c = text.charCodeAt(i)
  if (c === 34) {
    const r = scanString(text, i + 1)
    return r < 0 ? -r : r
  }
  if (c === 45 || (c >= 48 && c <= 57)) {
    const r = scanNumber(text, i)
    return r < 0 ? -r : r
  }
  if (c !== 91 && c !== 123) {
    if (c === 116) return literal(text, i, 'true')
    if (c === 102) return literal(text, i, 'false')
    if (c === 110) return literal(text, i, 'null')
    fail(text, i)
  }
  // Containers, without recursion: `sp` of them are open (from open[0]).
  const room = MAX_DEPTH - depth
  let sp = 0
  for (;;) {
    // A value starts at i.
    if (c === 91 || c === 123) {
      if (sp >= room) tooDeep(i)
      open[sp++] = c
      c = text.charCodeAt(++i)
      while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++i)
      if (c === open[sp - 1]! + 2) {
        sp--
        i++
      } else {
        if (open[sp - 1] === 123) i = memberName(text, i, c)
        c = text.charCodeAt(i)
        continue
      }
    } else if (c === 34) {
      const r = scanString(text, i + 1)
      i = r < 0 ? -r : r
    } else if (c === 45 || (c >= 48 && c <= 57)) {
      const r = scanNumber(text, i)
      i = r < 0 ? -r : r
    } else if (c === 116) {
      i = literal(text, i, 'true')
    } else if (c === 102) {
      i = literal(text, i, 'false')
    } else if (c === 110) {
      i = literal(text, i, 'null')
    } else {
      fail(text, i)
    }
    // After a value: a comma and the next, or closers.
    for (;;) {
      if (sp === 0) return i
      c = text.charCodeAt(i)
      while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++i)
      if (c === 44) {
        c = text.charCodeAt(++i)
        while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++i)
        if (open[sp - 1] === 123) {
          i = memberName(text, i, c)
          c = text.charCodeAt(i)
        }
        break
      }
      if (c === open[sp - 1]! + 2) {
        sp--
        i++
        continue
      }
      fail(text, i)
    }
  }
}

/** A member's name and colon at `i` (whose char is `c`): the offset of its value. */
function memberName(text: string, i: number, c: number): number {
  if (c !== 34) fail(text, i)
  const r = scanString(text, i + 1)
  i = r < 0 ? -r : r
  c = text.charCodeAt(i)
  while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++i)
  if (c !== 58) fail(text, i)
  c = text.charCodeAt(++i)
  while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++i)
  return i
}
