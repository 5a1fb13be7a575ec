// Record ids a request asks for, read before it is forwarded.
import { configuredPath, namesKey, pairs } from './keys.js'

export type RecordSource = { param: string; split?: string } | { query: string; split?: string }

export type RecordExtractor = (params: Readonly<Record<string, string>>, search: string) => string[]

const NONE: string[] = []

export function compileRecords(source: RecordSource | undefined): RecordExtractor {
  if (!source) return () => NONE
  if ('param' in source) {
    // The parameter's name as a query key counts too: Apache's `RewriteRule … [QSA]` turns
    // `/contacts/5?id=6` into `contact.php?id=5&id=6`, and PHP takes the last `id`; code that
    // reads `$_REQUEST['id']` or `req.query.id || req.params.id` does the same.
    const name = source.param
    const split = source.split
    const inQuery = queryValues(source.param, split)
    return (params, search) => {
      const id = params[name]
      const ids = id === undefined || id === '' ? NONE : split === undefined ? [id] : splitIds([id], split)
      const more = inQuery(search)
      if (more.length === 0) return split === undefined ? ids : [...new Set(ids)]
      return [...new Set([...ids, ...more])]
    }
  }
  const inQuery = queryValues(source.query, source.split)
  return (_params, search) => inQuery(search)
}

/**
 * Every value of a query key, read as every common stack reads keys (keys.ts): `ID=`, `id[]=`,
 * `[id]=`, `id[0]=` all name `id`. Counting a key the upstream ignores only over-counts, while
 * missing one it honours is a bypass. Every repeated value counts.
 */
function queryValues(key: string, split: string | undefined): (search: string) => string[] {
  const path = configuredPath(key)
  // (A query that cannot hold the key is not parsed: the key's letters nowhere in any case,
  // nothing percent-encoded, all ASCII. A name PHP could mangle into, `contact.id` for
  // `contact_id`, is always parsed.)
  const base = path[0] as string
  const mayHold = base.includes('_') ? null : new RegExp(base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'iu')
  return (search) => {
    if (search.length < 2) return NONE
    if (mayHold !== null && !mayHold.test(search) && !/[%\u0080-\uffff]/.test(search)) return NONE
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
