// `clampQuery: { pageSize: 50 }`: the legacy app never sees `pageSize=100000`. Keys match as
// record query keys do (case-insensitive, PHP brackets dropped), every repeated value is
// clamped, and anything that is not a whole number from 1 to the cap becomes the cap: many
// legacy apps read 0, -1 or "all" as "no limit".
import { queryKey } from './extract.js'

export type QueryClamp = ((search: string) => { search: string; clamped: string[] } | null) & {
  /** The caps as configured, for `sluice check`. */
  readonly caps: Readonly<Record<string, number>>
  /** Plugin mode: the app reads `request.query`, already parsed; clamp it there too. */
  parsed(query: Record<string, unknown>): void
}

export function compileClamp(caps: Readonly<Record<string, number>>): QueryClamp {
  const byKey = new Map(Object.entries(caps).map(([k, v]) => [k.toLowerCase(), v]))
  const within = (value: unknown, cap: number) => typeof value === 'string' && /^[0-9]{1,15}$/.test(value) && Number(value) >= 1 && Number(value) <= cap

  const search = (text: string) => {
    if (text.length < 2) return null
    const clamped: string[] = []
    const parts = text.slice(1).split('&')
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as string
      const eq = part.indexOf('=')
      const rawKey = eq < 0 ? part : part.slice(0, eq)
      let key: string
      try {
        key = decodeURIComponent(rawKey.replace(/\+/g, ' '))
      } catch {
        continue
      }
      const cap = byKey.get(queryKey(key))
      if (cap === undefined || within(eq < 0 ? '' : part.slice(eq + 1), cap)) continue
      parts[i] = `${rawKey}=${cap}`
      clamped.push(key)
    }
    return clamped.length === 0 ? null : { search: `?${parts.join('&')}`, clamped }
  }

  const parsed = (query: Record<string, unknown>) => {
    for (const key of Object.keys(query)) {
      const cap = byKey.get(queryKey(key))
      if (cap === undefined) continue
      const v = query[key]
      query[key] = Array.isArray(v) ? v.map((x) => (within(x, cap) ? x : String(cap))) : within(v, cap) ? v : String(cap)
    }
  }

  return Object.assign(search, { caps, parsed })
}
