// Record ids a request asks for, read before it is forwarded.
import { unescape } from 'node:querystring'
import { cookieValue, eachCookie } from '../http/cookies.js'
import { configuredPath, namesKey, pairs } from './keys.js'

export type RecordSource = { param: string; split?: string } | { query: string; split?: string }

/** `cookie`: the request's Cookie header(s), whose cookies some stacks read as parameters. */
export type RecordExtractor = (
  params: Readonly<Record<string, string>>,
  search: string,
  cookie?: string | readonly string[],
) => string[]

const NONE: string[] = []

export function compileRecords(source: RecordSource | undefined): RecordExtractor {
  if (!source) return () => NONE
  if ('param' in source) {
    // The parameter's name as a query key counts too: Apache's `RewriteRule … [QSA]` turns
    // `/contacts/5?id=6` into `contact.php?id=5&id=6`, and PHP takes the last `id`; code that
    // reads `$_REQUEST['id']` or `req.query.id || req.params.id` does the same.
    const name = source.param
    const split = source.split
    const asKey = keyValues(source.param, split)
    return (params, search, cookie) => {
      const id = params[name]
      const ids = id === undefined || id === '' ? NONE : split === undefined ? [id] : splitIds([id], split)
      const more = asKey(search, cookie)
      if (more.length === 0) return split === undefined ? ids : [...new Set(ids)]
      return [...new Set([...ids, ...more])]
    }
  }
  const asKey = keyValues(source.query, source.split)
  return (_params, search, cookie) => asKey(search, cookie)
}

/**
 * Every value of a query key, read as every common stack reads keys (keys.ts): `ID=`, `id[]=`,
 * `[id]=`, `id[0]=` all name `id`. Counting a key the upstream ignores only over-counts, while
 * missing one it honours is a bypass. Every repeated value counts — and every cookie of that
 * name: classic ASP.NET's `Request["id"]` reads the query, the form, then the cookies, and so
 * does PHP's `$_REQUEST` where `request_order` is unset (no php.ini: `EGPCS`).
 */
function keyValues(
  key: string,
  split: string | undefined,
): (search: string, cookie?: string | readonly string[]) => string[] {
  const path = configuredPath(key)
  // (A query that cannot hold the key is not parsed: the key's letters nowhere in any case,
  // nothing percent-encoded, all ASCII. A name PHP could mangle into, `contact.id` for
  // `contact_id`, is always parsed.)
  const base = path[0] as string
  const mayHold = base.includes('_') ? null : new RegExp(base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'iu')
  const mayName = (text: string) => mayHold === null || mayHold.test(text) || /[%\u0080-\uffff]/.test(text)
  return (search, cookie) => {
    if (search.length < 2 && cookie === undefined) return NONE
    let out: Set<string> | null = null
    const add = (v: string) => {
      for (const id of split ? splitIds([v], split) : [v.trim()]) if (id !== '') (out ??= new Set()).add(id)
    }
    if (search.length > 1 && mayName(search)) for (const [k, v] of pairs(search.slice(1))) if (namesKey(k, path)) add(v)
    if (cookie !== undefined && (typeof cookie === 'string' ? mayName(cookie) : cookie.some(mayName)))
      eachCookie(cookie, false, (name, value) => {
        if (namesKey(unescape(name), path)) add(cookieValue(value))
      })
    return out === null ? NONE : [...(out as Set<string>)]
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
