// Set-Cookie reading (session binding) and Cookie rewriting (sluice's own cookies never reach the upstream).
// Percent-decoding is Node's lenient querystring.unescape: bad escapes stay as they are (as PHP's urldecode).
import { unescape } from 'node:querystring'

export interface SetCookie {
  name: string
  value: string
  /** Lifetime in ms from now, when the cookie names one (Max-Age wins over Expires). */
  maxAgeMs: number | undefined
}

/**
 * A cookie value as the common stacks read it: surrounding double quotes (RFC 6265 allows
 * them) and blanks are not part of it, and percent-escapes are decoded (Express's `cookie`,
 * PHP and ASP.NET decode them; Tomcat does not, but no session id of its contains `%`). So
 * `%61bc` is the session `abc`, as the upstream would resolve it. Decoded until it stops
 * changing (a few rounds): merging over-encoded spellings can only put one client's
 * spellings together, never split them.
 */
export function cookieValue(raw: string): string {
  let value = raw.trim()
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
  for (let round = 0; round < 4 && value.includes('%'); round++) {
    const decoded = unescape(value)
    if (decoded === value) break
    value = decoded
  }
  return value
}

/**
 * Each `name=value` pair of Cookie headers, raw: split at `;` as every server splits them and,
 * with `commas`, at `,` as well, as Tomcat's legacy parser, GlassFish and ASP.NET Core also do
 * (to them `x=1, JSESSIONID=<id>` carries a session). A pair without `=` is skipped.
 */
export function eachCookie(
  header: string | readonly string[],
  commas: boolean,
  visit: (name: string, value: string) => void,
): void {
  const pair = (text: string) => {
    const eq = text.indexOf('=')
    if (eq >= 0) visit(text.slice(0, eq), text.slice(eq + 1))
  }
  for (const h of typeof header === 'string' ? [header] : header)
    for (const text of h.split(';')) {
      pair(text)
      // (The first `,`-part is the pair itself: its value is cut by credentialValue.)
      if (commas && text.includes(',')) for (const part of text.split(',').slice(1)) pair(part)
    }
}

/** RFC 2616's separators: Tomcat's legacy cookie parser ends a value's token at the first of them. */
const SEPARATOR = /[()<>@,;:\\"/[\]?={} \t]/

/**
 * A credential's value (a session id, a token) as a lenient server may read it. Tomcat's
 * legacy cookie parser (the default through Tomcat 8.0; GlassFish's is the same) ends a value
 * at its first separator and skips what follows up to the next `;` or `,`, so to it
 * `JSESSIONID=<id>, n=1`, `<id> 2`, `<id>=3` and `"<id>"4` are all the session `<id>`, while a
 * reader that keeps the whole value would see a fresh identity in every one of them. The value
 * is cut there when what is left could be a credential by itself (16 characters or more;
 * servlet session ids are 16 to 32): spellings of one secret only ever merge one client's
 * requests. A shorter cut is left whole (`s` of express-session's `s:<id>.<mac>`, a PHP id
 * with a `,` near its start) so that no two clients meet in one account.
 */
export function credentialValue(value: string): string {
  let token: string
  if (value.startsWith('"')) {
    const end = value.indexOf('"', 1)
    token = end < 0 ? value.slice(1) : value.slice(1, end)
  } else {
    const at = value.search(SEPARATOR)
    if (at < 0) return value
    token = value.slice(0, at)
  }
  return token.length >= 16 ? token : value
}

/**
 * A cookie name as servers compare it: percent-decoded (PHP), blanks trimmed, case ignored
 * (ASP.NET's cookie collection), `.` and spaces as `_` (PHP's variable names).
 */
export function cookieName(raw: string): string {
  const name = raw.includes('%') ? unescape(raw) : raw
  return name.trim().toLowerCase().replace(/[. ]/g, '_')
}

export function parseSetCookie(header: string, now: number): SetCookie | null {
  const parts = header.split(';')
  const first = parts[0] ?? ''
  const eq = first.indexOf('=')
  if (eq <= 0) return null
  const name = first.slice(0, eq).trim()
  const value = cookieValue(first.slice(eq + 1))
  let maxAgeMs: number | undefined
  let expiresMs: number | undefined
  for (const attr of parts.slice(1)) {
    const [k = '', v = ''] = attr.split('=', 2).map((x) => x.trim())
    const key = k.toLowerCase()
    if (key === 'max-age' && /^-?\d+$/.test(v)) maxAgeMs = Number(v) * 1000
    else if (key === 'expires') {
      const t = Date.parse(v)
      if (!Number.isNaN(t)) expiresMs = t - now
    }
  }
  return { name, value, maxAgeMs: maxAgeMs ?? expiresMs }
}

/** The Set-Cookie headers of a response, however the framework holds them. */
export function setCookies(value: unknown): string[] {
  if (typeof value === 'string') return [value]
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string')
  return []
}

/** The Cookie header without the named cookies (however their names are spelled); undefined when nothing is left. */
export function withoutCookies(header: string, names: readonly string[]): string | undefined {
  const drop = names.map(cookieName)
  const kept = header
    .split(';')
    .map((p) => p.trim())
    .filter((p) => {
      if (p === '') return false
      const eq = p.indexOf('=')
      return !drop.includes(cookieName(eq < 0 ? p : p.slice(0, eq)))
    })
  return kept.length > 0 ? kept.join('; ') : undefined
}
