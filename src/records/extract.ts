// Record ids a request asks for, read before it is forwarded.
import { configuredPath, namesKey, pairs } from './keys.js'

export type RecordSource = { param: string; split?: string } | { query: string; split?: string }

export type RecordExtractor = (params: Readonly<Record<string, string>>, search: string) => string[]

const NONE: string[] = []

export function compileRecords(source: RecordSource | undefined): RecordExtractor {
  if (!source) return () => NONE
  if ('param' in source) {
    const name = source.param
    const split = source.split
    return (params) => {
      const id = params[name]
      if (id === undefined || id === '') return NONE
      return split === undefined ? [id] : [...new Set(splitIds([id], split))]
    }
  }
  // Query keys are read as every common stack reads them (keys.ts): `ID=`, `id[]=`, `[id]=`,
  // `id[0]=` all name `id`. Counting a key the upstream ignores only over-counts, while
  // missing one it honours is a bypass. Every repeated value counts.
  const path = configuredPath(source.query)
  const split = source.split
  return (_params, search) => {
    if (search.length < 2) return NONE
    const out = new Set<string>()
    for (const [k, v] of pairs(search.slice(1))) {
      if (!namesKey(k, path)) continue
      for (const id of split ? splitIds([v], split) : [v.trim()]) if (id !== '') out.add(id)
    }
    return out.size === 0 ? NONE : [...out]
  }
}

/** Values split into ids (a query record's `split`; its key read in a body too): trimmed, empty ones dropped. */
export function splitIds(values: readonly string[], split: string): string[] {
  const out: string[] = []
  for (const v of values)
    for (const part of v.split(split)) {
      const id = part.trim()
      if (id !== '') out.push(id)
    }
  return out
}
