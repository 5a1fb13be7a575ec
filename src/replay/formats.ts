// Access-log lines → the few fields a replay needs: when, which request, who.
//
// Three formats: NCSA combined (Apache/nginx, with an optional account field appended), JSON
// lines with configurable field names, and sluice's own decision log (pino JSON lines with
// `event: "sluice.decision"`). Parsers return an entry, a reason the line is bad, or IGNORED
// for lines that are well-formed but carry no request (other sluice log events).
import { clip } from './escape.js'

/** One request as the log recorded it. */
export interface LogEntry {
  /** Milliseconds since the epoch. */
  time: number
  method: string
  /** The request target as sent: path and query (or absolute-form). */
  target: string
  /** The account the log names, if it names one. */
  account: string | undefined
  /** The client address, if the log has one (the fallback account is `ip:<address>`). */
  client: string | undefined
}

export type FormatName = 'combined' | 'json' | 'sluice'

/** A parser's answer: an entry, `IGNORED`, or a string saying why the line is bad. */
export type ParseResult = LogEntry | typeof IGNORED | string

export const IGNORED = Symbol('ignored')

export type LineParser = (line: string) => ParseResult

/**
 * Where the account comes from.
 *  combined: `user` (%u, the default), `none` (client address only), a number N (the N-th
 *            field after the combined ones), or a name (an appended `name=value` field).
 *  json:     a field name (dotted for nesting), or `none`.
 */
export type AccountField = string

export interface JsonFields {
  time: string[]
  method: string[]
  url: string[]
  query: string[]
  account: string[]
  client: string[]
  /** A whole request line (`GET /x HTTP/1.1`), used when method or url are missing. */
  request: string[]
}

/** Tried in order; the first present field wins. Override with --fields. */
export const DEFAULT_JSON_FIELDS: JsonFields = {
  time: ['time', 'timestamp', '@timestamp', 'ts', 'time_iso8601', 'time_local', 'date'],
  method: ['method', 'request_method', 'verb', 'http.method', 'req.method'],
  url: ['url', 'uri', 'request_uri', 'path', 'target', 'http.url', 'req.url'],
  query: ['query', 'query_string', 'args'],
  account: ['account', 'user', 'remote_user', 'user_id', 'userId', 'username'],
  client: ['client', 'clientIp', 'client_ip', 'remote_addr', 'ip', 'remoteAddress', 'req.remoteAddress'],
  request: ['request'],
}

// ─── NCSA combined ───────────────────────────────────────────────────────────────────────
// host ident user [time] "request" status bytes "referer" "user-agent" [extra …]
// Common log format (no referer and user agent) is accepted too.

const COMBINED_FIELDS = 9

export function combinedParser(account: AccountField = 'user'): LineParser {
  const extraIndex = /^\d+$/.test(account) ? COMBINED_FIELDS - 1 + Number(account) : -1
  const extraName = extraIndex < 0 && account !== 'user' && account !== 'none' ? `${account}=` : null
  const fields: string[] = []
  // No time read yet: undefined, so that an empty [] is a bad time, not the previous line's.
  let lastTimeText: string | undefined
  let lastTime = 0
  return (line) => {
    if (!splitFields(line, fields)) return 'unbalanced quotes or brackets'
    if (fields.length < 7) return `${fields.length} fields, a combined log line has at least 7`
    const client = fields[0] as string
    const timeText = fields[3] as string
    let time: number
    if (timeText === lastTimeText) time = lastTime
    else {
      const t = parseClfTime(timeText)
      if (t === undefined) return `"${clip(timeText)}" is not a [dd/Mon/yyyy:hh:mm:ss ±zzzz] time`
      time = lastTime = t
      lastTimeText = timeText
    }
    const request = parseRequestLine(fields[4] as string)
    if (typeof request === 'string') return request
    let who: string | undefined
    if (account === 'user') who = fields[2]
    else if (extraIndex >= 0) who = fields[extraIndex]
    else if (extraName !== null) {
      for (let i = COMBINED_FIELDS; i < fields.length; i++) {
        const f = fields[i] as string
        if (f.startsWith(extraName)) {
          who = unquote(f.slice(extraName.length))
          break
        }
      }
    }
    return { time, method: request.method, target: request.target, account: present(who), client: present(client) }
  }
}

/** A combined-log parser reading a line where it lies in a larger text (lines.ts), not sliced out. */
export type CombinedScanner = (text: string, start: number, end: number) => ParseResult

/**
 * combinedParser's answers, fast: the line is read in place, its fields located by position, and
 * only the few values a replay needs are sliced out; the time of the previous line is reused
 * when its text is the same. Only a plain line is read this way (no backslash or tab, balanced,
 * seven fields or more, a valid time and request line); any other goes to combinedParser
 * itself, which gives it the answer (the reason a line is bad, above all) it always has.
 */
export function combinedScanner(account: AccountField = 'user'): CombinedScanner {
  const general = combinedParser(account)
  const extraIndex = /^\d+$/.test(account) ? COMBINED_FIELDS - 1 + Number(account) : -1
  const extraName = extraIndex < 0 && account !== 'user' && account !== 'none' ? `${account}=` : null
  let starts = new Int32Array(32)
  let ends = new Int32Array(32)
  // Positions of the next character of each kind at or after `from` in `text`; a search is
  // repeated only once the scan has passed what it found, so the scan of a text stays linear.
  let text = ''
  const found = new Int32Array(5)
  const from = new Int32Array(5)
  const CHARS = ['\\', '\t', '"', ' ', ']']
  const next = (k: number, i: number): number => {
    if ((from[k] as number) <= i && (found[k] as number) >= i) return found[k] as number
    const at = text.indexOf(CHARS[k] as string, i)
    from[k] = i
    found[k] = at < 0 ? text.length : at
    return found[k] as number
  }
  let lastTimeText: string | undefined
  let lastTime = 0
  const clfTime = new ClfTimes()
  // Request methods as written → as returned (upper case), for the few a log holds.
  const rawMethods: string[] = []
  const methods: string[] = []

  const value = (s: number, e: number): string | undefined => {
    if (s === e) return undefined
    const c = text.charCodeAt(s)
    const d = text.charCodeAt(e - 1)
    if (c > 32 && c < 127 && d > 32 && d < 127) return e - s === 1 && c === 45 /* - */ ? undefined : text.slice(s, e)
    return present(text.slice(s, e))
  }

  return (t, a, e) => {
    if (t !== text) {
      text = t
      from.fill(0x7fffffff)
    }
    if (next(0, a) < e || next(1, a) < e) return general(t.slice(a, e))
    let n = 0
    let i = a
    while (i < e) {
      const c = t.charCodeAt(i)
      if (c === 32) {
        i++
        continue
      }
      let fs: number
      let fe: number
      if (c === 34) {
        fs = i + 1
        fe = next(2, fs)
        if (fe >= e) return general(t.slice(a, e))
        i = fe + 1
      } else if (c === 91) {
        fs = i + 1
        fe = next(4, fs)
        if (fe >= e) return general(t.slice(a, e))
        i = fe + 1
      } else {
        fs = i
        let j = i
        for (;;) {
          const sp = Math.min(next(3, j), e)
          const q = next(2, j)
          if (q >= sp) {
            j = sp
            break
          }
          // name="value with spaces"
          const close = next(2, q + 1)
          if (close >= e) return general(t.slice(a, e))
          j = close + 1
        }
        fe = j
        i = j
      }
      if (n === starts.length) {
        const s2 = new Int32Array(2 * n)
        const e2 = new Int32Array(2 * n)
        s2.set(starts)
        e2.set(ends)
        starts = s2
        ends = e2
      }
      starts[n] = fs
      ends[n++] = fe
    }
    if (n < 7) return general(t.slice(a, e))

    const ts = starts[3] as number
    const te = ends[3] as number
    let time: number
    if (lastTimeText !== undefined && te - ts === lastTimeText.length && t.startsWith(lastTimeText, ts)) time = lastTime
    else {
      const timeText = t.slice(ts, te)
      const parsed = clfTime.parse(timeText) ?? parseClfTime(timeText)
      if (parsed === undefined) return general(t.slice(a, e))
      time = lastTime = parsed
      lastTimeText = timeText
    }

    // The request line: METHOD target [HTTP/x.y], the target one non-empty word.
    const rs = starts[4] as number
    const re = ends[4] as number
    const sp = next(3, rs)
    if (sp >= re) return general(t.slice(a, e))
    let method: string | undefined
    for (let m = 0; m < rawMethods.length; m++) {
      const raw = rawMethods[m] as string
      if (raw.length === sp - rs && t.startsWith(raw, rs)) {
        method = methods[m]
        break
      }
    }
    if (method === undefined) {
      const raw = t.slice(rs, sp)
      if (!METHOD.test(raw)) return general(t.slice(a, e))
      method = raw.toUpperCase()
      if (rawMethods.length < 16) {
        rawMethods.push(raw)
        methods.push(method)
      }
    }
    const targetStart = sp + 1
    let targetEnd = re
    const last = t.lastIndexOf(' ', re - 1)
    if (last >= targetStart) {
      if (!httpVersion(t, last + 1, re)) return general(t.slice(a, e))
      targetEnd = last
      if (next(3, targetStart) < targetEnd) return general(t.slice(a, e))
    }
    if (targetEnd === targetStart) return general(t.slice(a, e))

    let who: string | undefined
    if (account === 'user') who = value(starts[2] as number, ends[2] as number)
    else if (extraIndex >= 0)
      who = extraIndex < n ? value(starts[extraIndex] as number, ends[extraIndex] as number) : undefined
    else if (extraName !== null) {
      for (let f = COMBINED_FIELDS; f < n; f++) {
        const s = starts[f] as number
        const fe = ends[f] as number
        if (fe - s >= extraName.length && t.startsWith(extraName, s)) {
          // unquote (no backslash: nothing to unescape)
          let vs = s + extraName.length
          let ve = fe
          if (ve - vs >= 2 && t.charCodeAt(vs) === 34 && t.charCodeAt(ve - 1) === 34) {
            vs++
            ve--
          }
          who = value(vs, ve)
          break
        }
      }
    }
    return {
      time,
      method,
      target: t.slice(targetStart, targetEnd),
      account: who,
      client: value(starts[0] as number, ends[0] as number),
    }
  }
}

/**
 * parseClfTime's answer for its common form, `dd/Mon/yyyy:hh:mm:ss ±zzzz`, read by position with
 * the day's start (Date.UTC of its date) remembered; undefined for any other text (parseClfTime
 * answers it). The same number: Date.UTC is the day's milliseconds plus the time's, exactly.
 */
export class ClfTimes {
  private dayText = ''
  private dayMs = 0

  parse(t: string): number | undefined {
    if (t.length !== 26) return undefined
    if (
      t.charCodeAt(2) !== 47 ||
      t.charCodeAt(6) !== 47 ||
      t.charCodeAt(11) !== 58 ||
      t.charCodeAt(14) !== 58 ||
      t.charCodeAt(17) !== 58 ||
      t.charCodeAt(20) !== 32
    )
      return undefined
    const sign = t.charCodeAt(21)
    if (sign !== 43 && sign !== 45) return undefined
    const h = digits(t, 12, 2)
    const m = digits(t, 15, 2)
    const sec = digits(t, 18, 2)
    const zh = digits(t, 22, 2)
    const zm = digits(t, 24, 2)
    if (h < 0 || m < 0 || sec < 0 || zh < 0 || zm < 0) return undefined
    if (!t.startsWith(this.dayText) || this.dayText === '') {
      const day = digits(t, 0, 2)
      const year = digits(t, 7, 4)
      const c = t.charCodeAt(3)
      const monthName = t.slice(3, 6)
      const month = Object.hasOwn(MONTHS, monthName) ? MONTHS[monthName] : undefined
      // [A-Z][a-z]{2}, as the pattern asks (every month's name is).
      if (day < 0 || year < 0 || month === undefined || c < 65 || c > 90) return undefined
      this.dayText = t.slice(0, 11)
      this.dayMs = Date.UTC(year, month, day)
    }
    const utc = this.dayMs + h * 3_600_000 + m * 60_000 + sec * 1000
    const offset = (zh * 60 + zm) * 60_000
    return sign === 43 ? utc - offset : utc + offset
  }
}

/** The number written with `n` decimal digits at t[at], or -1. */
function digits(t: string, at: number, n: number): number {
  let v = 0
  for (let i = at; i < at + n; i++) {
    const d = t.charCodeAt(i) - 48
    if (d < 0 || d > 9) return -1
    v = v * 10 + d
  }
  return v
}

/** `HTTP/d` or `HTTP/d.d` at text[s, e) (what /^HTTP\/\d(\.\d)?$/ accepts). */
function httpVersion(t: string, s: number, e: number): boolean {
  if (e - s !== 6 && e - s !== 8) return false
  if (!t.startsWith('HTTP/', s)) return false
  const d = t.charCodeAt(s + 5)
  if (d < 48 || d > 57) return false
  if (e - s === 6) return true
  const f = t.charCodeAt(s + 7)
  return t.charCodeAt(s + 6) === 46 && f >= 48 && f <= 57
}

/**
 * Split on spaces, keeping `[…]` and `"…"` (backslash escapes: Apache `\"`, nginx `\x22`) as
 * one field each, unescaped. `name="…"` stays one field with its quotes. False if unbalanced.
 */
export function splitFields(line: string, out: string[]): boolean {
  out.length = 0
  const n = line.length
  let i = 0
  while (i < n) {
    const c = line.charCodeAt(i)
    if (c === 32 || c === 9) {
      i++
      continue
    }
    if (c === 34 /* " */) {
      const end = closingQuote(line, i + 1)
      if (end < 0) return false
      out.push(unescapeLog(line.slice(i + 1, end)))
      i = end + 1
    } else if (c === 91 /* [ */) {
      const end = line.indexOf(']', i + 1)
      if (end < 0) return false
      out.push(line.slice(i + 1, end))
      i = end + 1
    } else {
      let j = i
      while (j < n) {
        const d = line.charCodeAt(j)
        if (d === 32 || d === 9) break
        if (d === 34) {
          // name="value with spaces"
          const end = closingQuote(line, j + 1)
          if (end < 0) return false
          j = end + 1
          continue
        }
        j++
      }
      out.push(line.slice(i, j))
      i = j
    }
  }
  return true
}

function closingQuote(line: string, from: number): number {
  for (let i = from; i < line.length; i++) {
    const c = line.charCodeAt(i)
    if (c === 92 /* \ */) i++
    else if (c === 34) return i
  }
  return -1
}

/** Apache and nginx escape `"`, `\` and non-printable bytes in quoted fields. */
export function unescapeLog(s: string): string {
  if (!s.includes('\\')) return s
  let out = ''
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string
    if (c !== '\\' || i + 1 >= s.length) {
      out += c
      continue
    }
    const next = s[i + 1] as string
    if (next === 'x' && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 2, i + 4))) {
      out += String.fromCharCode(parseInt(s.slice(i + 2, i + 4), 16))
      i += 3
    } else if (next === 'n') {
      out += '\n'
      i++
    } else if (next === 't') {
      out += '\t'
      i++
    } else {
      out += next
      i++
    }
  }
  return out
}

function unquote(s: string): string {
  return s.length >= 2 && s[0] === '"' && s[s.length - 1] === '"' ? unescapeLog(s.slice(1, -1)) : s
}

const MONTHS: Record<string, number> = {
  Jan: 0,
  Feb: 1,
  Mar: 2,
  Apr: 3,
  May: 4,
  Jun: 5,
  Jul: 6,
  Aug: 7,
  Sep: 8,
  Oct: 9,
  Nov: 10,
  Dec: 11,
}
const CLF_TIME = /^(\d{2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))? ([+-])(\d{2})(\d{2})$/

/** `10/Oct/2000:13:55:36 -0700` (Apache %t, nginx $time_local) → ms since the epoch. */
export function parseClfTime(text: string): number | undefined {
  const m = CLF_TIME.exec(text)
  if (!m) return undefined
  const month = MONTHS[m[2] as string]
  if (month === undefined) return undefined
  const ms = m[7] ? Math.floor(Number(`0.${m[7]}`) * 1000) : 0
  const utc = Date.UTC(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]), ms)
  const offset = (Number(m[9]) * 60 + Number(m[10])) * 60_000
  return m[8] === '+' ? utc - offset : utc + offset
}

const METHOD = /^[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*$/

/** `GET /path?q HTTP/1.1` (or HTTP/0.9 `GET /path`) → method and target. */
export function parseRequestLine(line: string): { method: string; target: string } | string {
  if (line === '-' || line === '') return 'no request line (the client sent none)'
  const first = line.indexOf(' ')
  if (first < 0) return `request line "${clip(line)}" is not "METHOD target"`
  const method = line.slice(0, first)
  if (!METHOD.test(method)) return `request line "${clip(line)}" does not start with a method`
  let rest = line.slice(first + 1)
  const last = rest.lastIndexOf(' ')
  if (last >= 0 && /^HTTP\/\d(\.\d)?$/.test(rest.slice(last + 1))) rest = rest.slice(0, last)
  if (rest === '' || rest.includes(' ')) return `request line "${clip(line)}" is not "METHOD target HTTP/x"`
  return { method: method.toUpperCase(), target: rest }
}

// ─── JSON lines ──────────────────────────────────────────────────────────────────────────

export function jsonParser(fields: JsonFields): LineParser {
  return (line) => {
    let doc: unknown
    try {
      doc = JSON.parse(line)
    } catch {
      return 'not valid JSON'
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return 'not a JSON object'
    const o = doc as Record<string, unknown>
    const time = parseTime(pick(o, fields.time))
    if (time === undefined) return `no time (looked for ${fields.time.join(', ')})`
    let method = text(pick(o, fields.method))
    let target = text(pick(o, fields.url))
    if (method === undefined || target === undefined) {
      const request = text(pick(o, fields.request))
      const parsed = request !== undefined ? parseRequestLine(request) : undefined
      if (parsed !== undefined && typeof parsed !== 'string') {
        method ??= parsed.method
        target ??= parsed.target
      }
    }
    if (method === undefined) return `no method (looked for ${fields.method.join(', ')})`
    if (target === undefined) return `no url (looked for ${fields.url.join(', ')})`
    const query = text(pick(o, fields.query))
    if (query !== undefined && query !== '' && !target.includes('?')) target += query[0] === '?' ? query : `?${query}`
    return {
      time,
      method: method.toUpperCase(),
      target,
      account: present(text(pick(o, fields.account))),
      client: present(text(pick(o, fields.client))),
    }
  }
}

/**
 * sluice's decision log: the account is the engine's own (basic fingerprints and session
 * hashes included). Only decisions other than `allow` are logged, so a decision log holds the
 * requests sluice acted on, not the traffic around them.
 */
export function sluiceParser(): LineParser {
  return (line) => {
    let doc: unknown
    try {
      doc = JSON.parse(line)
    } catch {
      return 'not valid JSON'
    }
    if (typeof doc !== 'object' || doc === null) return 'not a JSON object'
    const o = doc as Record<string, unknown>
    if (o.event !== 'sluice.decision') return IGNORED
    // The records of an answer, decided after its request (already logged if it was acted on):
    // not another request.
    if (o.step === 'response') return IGNORED
    const time = parseTime(o.time)
    if (time === undefined) return 'decision without a time'
    const account = text(o.account)
    const method = text(o.method)
    const target = text(o.path)
    if (!account || !method || !target) return 'decision without account, method or path'
    return { time, method: method.toUpperCase(), target, account, client: present(text(o.clientIp)) }
  }
}

/** Which format a file is in, from its first non-empty line. */
export function detectFormat(line: string): FormatName {
  const t = line.trimStart()
  if (t[0] === '{') {
    try {
      const o = JSON.parse(t) as Record<string, unknown>
      if (typeof o.event === 'string' && o.event.startsWith('sluice.')) return 'sluice'
    } catch {
      // a broken first line: still JSON lines, most likely
    }
    return 'json'
  }
  return 'combined'
}

// ─── values ──────────────────────────────────────────────────────────────────────────────

function pick(o: Record<string, unknown>, names: readonly string[]): unknown {
  for (const name of names) {
    let v: unknown = o[name]
    if (v === undefined && name.includes('.')) {
      v = o
      for (const part of name.split('.'))
        v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined
    }
    if (v !== undefined && v !== null) return v
  }
  return undefined
}

function text(v: unknown): string | undefined {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined
}

function present(v: string | undefined): string | undefined {
  if (v === undefined) return undefined
  const t = v.trim()
  return t === '' || t === '-' ? undefined : t
}

/** Epoch seconds or milliseconds (number or numeric string), ISO 8601, or CLF time. */
export function parseTime(v: unknown): number | undefined {
  if (typeof v === 'number')
    return Number.isFinite(v) ? (Math.abs(v) < 1e11 ? Math.round(v * 1000) : Math.round(v)) : undefined
  if (typeof v !== 'string' || v === '') return undefined
  if (/^\d+(\.\d+)?$/.test(v)) return parseTime(Number(v))
  const clf = parseClfTime(v)
  if (clf !== undefined) return clf
  const t = Date.parse(v)
  return Number.isNaN(t) ? undefined : t
}
