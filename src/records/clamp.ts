// `clampQuery: { pageSize: 50 }`: the legacy app never sees `pageSize=100000`. Keys match as
// record query keys do (keys.ts: any case, `pageSize[]`, `[pageSize]`, `%5BpageSize%5D`),
// every repeated value is clamped, and anything that is not a whole number from 1 to the cap
// becomes the cap: many legacy apps read 0, -1 or "all" as "no limit". A pair that also holds
// `;` (a separator to some servers) is rewritten whole when any of its pieces names a key.
import { unescape } from 'node:querystring'
import { configuredPath, namesKey } from './keys.js'

export type QueryClamp = ((search: string) => { search: string; clamped: string[] } | null) & {
  /** The caps as configured, for `sluice check`. */
  readonly caps: Readonly<Record<string, number>>
  /** Plugin mode: the app reads `request.query`, already parsed; clamp it there too. */
  parsed(query: Record<string, unknown>): void
}

export function compileClamp(caps: Readonly<Record<string, number>>): QueryClamp {
  const paths = Object.entries(caps).map(([k, cap]) => ({ path: configuredPath(k), cap }))
  const capOf = (key: string) => paths.find((p) => namesKey(key, p.path))?.cap
  const within = (value: unknown, cap: number) =>
    typeof value === 'string' && /^[0-9]{1,15}$/.test(value) && Number(value) >= 1 && Number(value) <= cap

  const search = (text: string) => {
    if (text.length < 2) return null
    const clamped: string[] = []
    const parts = text.slice(1).split('&')
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as string
      // With `;` in it the pair means one thing to `&`-only servers and several to others:
      // any piece naming a capped key rewrites the whole pair.
      for (const piece of part.includes(';') ? part.split(';') : [part]) {
        const eq = piece.indexOf('=')
        const rawKey = eq < 0 ? piece : piece.slice(0, eq)
        const key = decodeKey(rawKey)
        const cap = capOf(key)
        if (cap === undefined || (piece === part && within(eq < 0 ? '' : piece.slice(eq + 1), cap))) continue
        parts[i] = `${rawKey}=${cap}`
        clamped.push(key)
        break
      }
    }
    return clamped.length === 0 ? null : { search: `?${parts.join('&')}`, clamped }
  }

  const parsed = (query: Record<string, unknown>) => {
    for (const key of Object.keys(query)) {
      const cap = capOf(key)
      if (cap === undefined) continue
      const v = query[key]
      query[key] = Array.isArray(v)
        ? v.map((x) => (within(x, cap) ? x : String(cap)))
        : within(v, cap)
          ? v
          : String(cap)
    }
  }

  return Object.assign(search, { caps, parsed })
}

/** A raw query key decoded as servers decode it (`+` is a space; a bad escape is kept, leniently). */
function decodeKey(raw: string): string {
  return unescape(raw.replace(/\+/g, ' '))
}
