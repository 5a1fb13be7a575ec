// The path sluice matches is the path the upstream receives.
//
// Legacy servers are lax: Tomcat strips `;jsessionid=…` and reads `..;` as `..`, IIS treats
// `\` as `/` and ignores case, most decode `%2e` into a dot segment. A guard that matched the
// raw path would be bypassed by each of these. So: decode what need not be encoded, resolve dot
// segments, collapse slashes, forward that; match a copy with matrix parameters stripped, case
// folded and the trailing slash ignored; refuse (400) what cannot be made unambiguous.

export interface CanonicalOptions {
  caseSensitive: boolean
  stripMatrixParams: boolean
}

export type Canonical =
  | {
      ok: true
      /** forwarded upstream */ path: string
      /** matched against routes */ matchPath: string
      /** `?…` as sent, or '' */ search: string
    }
  | { ok: false; reason: string }

const MAX_PATH = 8192
// Anything that may need more than splitting off the query (or lower-casing).
const NEEDS_WORK = /[%.;\\"<>`{}|^(]|[^\x21-\x7e]|\/\//
// ASP.NET's cookieless session, forms-auth and anonymous-id segment, `(S(…))` or
// `(A(…)S(…)F(…))`, is taken out of the path before the page is found: `/(S(x))/admin` is
// `/admin` to it. Matched without it (forwarded with it: the session lives there).
const COOKIELESS = /^\((?:[A-Za-z]\([^()/]*\))+\)$/
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/
const HEX = /^[0-9A-Fa-f]{2}$/
// RFC 3986 §2.3: unreserved characters mean the same encoded or not.
const UNRESERVED = /[A-Za-z0-9\-._~]/
// Printable ASCII that may not stand raw in a path (RFC 3986 §3.3 pchar): encoded when forwarded.
const ENCODE_RAW = new Set([' ', '"', '<', '>', '`', '{', '}', '|', '^', '[', ']'])
// Some servers decode twice: `%252e` is `%2e` after one pass and `.` after two.
const DOUBLE_ENCODED = /%25(2e|2f|5c|00)/i
const utf8 = new TextDecoder('utf-8', { fatal: true })

const fail = (reason: string): Canonical => ({ ok: false, reason })

export function canonicalize(target: string, options: CanonicalOptions): Canonical {
  let t = target
  if (t[0] !== '/') {
    // absolute-form (`GET http://host/path`, RFC 9112 §3.2.2): only the path and query count.
    const m = ABSOLUTE_FORM.exec(t)
    if (!m) return fail('request target is not a path')
    t = t.slice(m[0].length)
    if (t === '' || t[0] === '?') t = `/${t}`
    if (t[0] !== '/') return fail('request target is not a path')
  }
  const hash = t.indexOf('#')
  if (hash >= 0) t = t.slice(0, hash)
  const q = t.indexOf('?')
  const raw = q >= 0 ? t.slice(0, q) : t
  const search = q >= 0 ? t.slice(q) : ''
  if (raw.length > MAX_PATH) return fail(`path longer than ${MAX_PATH} characters`)

  if (!NEEDS_WORK.test(raw)) {
    // Nothing to decode and no empty segment but a trailing one: the path matches as it is.
    const trimmed = raw.length > 1 && raw.endsWith('/') ? raw.slice(0, -1) : raw
    return { ok: true, path: raw, matchPath: options.caseSensitive ? trimmed : trimmed.toLowerCase(), search }
  }

  const decoded = decode(raw)
  if (typeof decoded !== 'string') return decoded
  if (DOUBLE_ENCODED.test(decoded)) return fail('double percent-encoding (%25) of a dot, slash or NUL')

  const segments = decoded.split('/')
  const resolved = resolveDots(segments)
  if (resolved === null) return fail('".." climbs above the root')
  const last = segments[segments.length - 1]
  const trailing = last === '' || last === '.' || last === '..'
  const path = resolved.length === 0 ? '/' : `/${resolved.join('/')}${trailing ? '/' : ''}`

  let matchSegments = segments
  if (options.stripMatrixParams) {
    // Strip before resolving dots: Tomcat turns `..;x` into `..`.
    matchSegments = segments.map((s) => {
      const semi = s.indexOf(';')
      return semi >= 0 ? s.slice(0, semi) : s
    })
  }
  const matchResolved = resolveDots(matchSegments)
  if (matchResolved === null) return fail('".." climbs above the root')
  if (options.stripMatrixParams && !sameAfterStripping(resolved, matchResolved)) {
    // `/a/5/;/..` is `/a/5/` to a server that keeps `;` segments and `/a` to one that strips
    // them (and `..;` is `..` to Tomcat): we cannot know which the upstream is, so refuse.
    return fail('matrix parameters (;) combined with dot segments')
  }
  return { ok: true, path, matchPath: toMatchPath(matchResolved, options), search }
}

/** Split on `/`, drop empty and `.` segments, apply `..`; null if it climbs above the root. */
function resolveDots(segments: readonly string[]): string[] | null {
  const out: string[] = []
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i] as string
    if (s === '' || s === '.') continue
    if (s === '..') {
      if (out.length === 0) return null
      out.pop()
      continue
    }
    out.push(s)
  }
  return out
}

function sameAfterStripping(forwarded: readonly string[], matched: readonly string[]): boolean {
  const stripped = forwarded
    .map((s) => {
      const semi = s.indexOf(';')
      return semi >= 0 ? s.slice(0, semi) : s
    })
    .filter((s) => s !== '')
  const m = matched.filter((s) => s !== '')
  return stripped.length === m.length && stripped.every((s, i) => s === m[i])
}

/** Matching ignores empty segments (so a trailing slash) and, unless told otherwise, case. */
function toMatchPath(segments: readonly string[], options: CanonicalOptions): string {
  const joined = `/${segments.filter((s) => s !== '' && !isCookieless(s)).join('/')}`
  return options.caseSensitive ? joined : joined.toLowerCase()
}

function isCookieless(segment: string): boolean {
  // (IIS decodes the path before ASP.NET looks: `%28S%28x%29%29` is the same segment.)
  return segment.includes('(') || segment.includes('%28')
    ? COOKIELESS.test(segment.replace(/%28/gi, '(').replace(/%29/gi, ')'))
    : false
}

/**
 * One pass over the raw path: decode escapes of unreserved characters, upper-case the rest,
 * check that escaped bytes form valid UTF-8, encode raw characters that may not stand in a
 * path, and refuse the ambiguous ones.
 */
function decode(raw: string): string | Canonical {
  let out = ''
  let bytes: number[] = [] // a run of escaped or raw bytes >= 0x80, validated as UTF-8 together
  const flush = (): Canonical | null => {
    if (bytes.length === 0) return null
    try {
      utf8.decode(Uint8Array.from(bytes))
    } catch {
      return fail('percent-encoded bytes are not valid UTF-8')
    }
    for (const b of bytes) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`
    bytes = []
    return null
  }

  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as string
    const code = raw.charCodeAt(i)
    if (c === '%') {
      const hex = raw.slice(i + 1, i + 3)
      if (!HEX.test(hex)) return fail('invalid percent-encoding')
      const b = parseInt(hex, 16)
      i += 2
      if (b >= 0x80) {
        bytes.push(b)
        continue
      }
      const bad = flush()
      if (bad) return bad
      if (b === 0x2f) return fail('encoded slash (%2F) in path')
      if (b === 0x5c) return fail('encoded backslash (%5C) in path')
      if (b < 0x20 || b === 0x7f) return fail('encoded control character in path')
      const ch = String.fromCharCode(b)
      out += UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`
      continue
    }
    if (code >= 0x80) {
      // Node hands over raw bytes as latin1 characters; a JS caller may pass real Unicode.
      if (code <= 0xff) bytes.push(code)
      else bytes.push(...Buffer.from(String.fromCodePoint(raw.codePointAt(i) as number), 'utf8'))
      if (code >= 0xd800 && code <= 0xdbff) i++
      continue
    }
    const bad = flush()
    if (bad) return bad
    if (c === '\\') return fail('backslash in path')
    if (code < 0x20 || code === 0x7f) return fail('control character in path')
    out += ENCODE_RAW.has(c) ? `%${code.toString(16).toUpperCase().padStart(2, '0')}` : c
  }
  const bad = flush()
  return bad ?? out
}
