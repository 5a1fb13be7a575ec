// `clampQuery: { pageSize: 50 }`: the legacy app never sees `pageSize=100000`. Keys match as
// record query keys do (case-insensitive, PHP brackets dropped), every repeated value is
// clamped, and anything that is not a whole number from 1 to the cap becomes the cap: many
// legacy apps read 0, -1 or "all" as "no limit".
export type QueryClamp = (search: string) => { search: string; clamped: string[] } | null

export function compileClamp(caps: Readonly<Record<string, number>>): QueryClamp {
  const byKey = new Map(Object.entries(caps).map(([k, v]) => [k.toLowerCase(), v]))
  return (search) => {
    if (search.length < 2) return null
    const clamped: string[] = []
    const parts = search.slice(1).split('&')
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
      const bracket = key.indexOf('[')
      const cap = byKey.get((bracket > 0 ? key.slice(0, bracket) : key).toLowerCase())
      if (cap === undefined) continue
      const value = eq < 0 ? '' : part.slice(eq + 1)
      if (/^[0-9]{1,15}$/.test(value) && Number(value) >= 1 && Number(value) <= cap) continue
      parts[i] = `${rawKey}=${cap}`
      clamped.push(key)
    }
    return clamped.length === 0 ? null : { search: `?${parts.join('&')}`, clamped }
  }
}
