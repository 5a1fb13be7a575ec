// Set-Cookie reading (session binding) and Cookie rewriting (sluice's own cookies never reach the upstream).

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
    const decoded = percentDecode(value)
    if (decoded === value) break
    value = decoded
  }
  return value
}

/**
 * A cookie name as servers compare it: percent-decoded (PHP), blanks trimmed, case ignored
 * (ASP.NET's cookie collection), `.` and spaces as `_` (PHP's variable names).
 */
export function cookieName(raw: string): string {
  const name = raw.includes('%') ? percentDecode(raw) : raw
  return name.trim().toLowerCase().replace(/[. ]/g, '_')
}

const isHex = (c: number) => (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66)

/** Lenient percent-decoding, as PHP's urldecode: bad escapes stay as they are, bytes as UTF-8. */
export function percentDecode(text: string): string {
  if (!text.includes('%')) return text
  const bytes: number[] = []
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x25 && isHex(text.charCodeAt(i + 1)) && isHex(text.charCodeAt(i + 2))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16))
      i += 2
    } else if (c < 0x80) {
      bytes.push(c)
    } else {
      const cp = text.codePointAt(i) as number
      for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) bytes.push(b)
      if (cp > 0xffff) i++
    }
  }
  return Buffer.from(bytes).toString('utf8')
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
