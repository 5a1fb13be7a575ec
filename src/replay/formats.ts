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
  let lastTimeText = ''
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
