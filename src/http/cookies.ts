// Set-Cookie reading (session binding) and Cookie rewriting (sluice's own cookies never reach the upstream).

export interface SetCookie {
  name: string
  value: string
  /** Lifetime in ms from now, when the cookie names one (Max-Age wins over Expires). */
  maxAgeMs: number | undefined
}

/** A cookie value as sent: surrounding double quotes (RFC 6265 allows them) are not part of it. */
export function cookieValue(raw: string): string {
  const value = raw.trim()
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value
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

/** The Cookie header without the named cookies; undefined when nothing is left. */
export function withoutCookies(header: string, names: readonly string[]): string | undefined {
  const kept = header
    .split(';')
    .map((p) => p.trim())
    .filter((p) => {
      if (p === '') return false
      const eq = p.indexOf('=')
      return !names.includes((eq < 0 ? p : p.slice(0, eq)).trim())
    })
  return kept.length > 0 ? kept.join('; ') : undefined
}
