// Record ids a request asks for, read before it is forwarded.

export type RecordSource = { param: string } | { query: string; split?: string }

export type RecordExtractor = (params: Readonly<Record<string, string>>, search: string) => string[]

const NONE: string[] = []

export function compileRecords(source: RecordSource | undefined): RecordExtractor {
  if (!source) return () => NONE
  if ('param' in source) {
    const name = source.param
    return (params) => {
      const id = params[name]
      return id === undefined || id === '' ? NONE : [id]
    }
  }
  // Query keys are compared case-insensitively and with PHP-style brackets dropped (`ID=`,
  // `id[]=`, `id[0]=`): servers differ here, and counting a key the upstream ignores only
  // over-counts, while missing one it honours is a bypass. Every repeated value counts.
  const key = source.query.toLowerCase()
  const split = source.split
  return (_params, search) => {
    if (search.length < 2) return NONE
    const out = new Set<string>()
    for (const [k, v] of new URLSearchParams(search)) {
      if (queryKey(k) !== key) continue
      for (const part of split ? v.split(split) : [v]) {
        const id = part.trim()
        if (id !== '') out.add(id)
      }
    }
    return out.size === 0 ? NONE : [...out]
  }
}

/** A query key as records and clamps compare it: lower case, PHP brackets dropped (`IDS`, `ids[]`, `ids[0]` → `ids`). */
export function queryKey(k: string): string {
  const bracket = k.indexOf('[')
  return (bracket > 0 ? k.slice(0, bracket) : k).toLowerCase()
}
