// Query and form keys as the stacks behind sluice read them. One key, several readings:
//   qs (Express)  `a[b][]=1` is a → b → [1]; a leading bracket `[id]=4` is `id`
//   PHP           the same brackets; `.` and spaces in the base name become `_`; a NUL ends
//                 the name; leading blanks are dropped
//   servlets      the key as it is; ASP.NET compares keys case-insensitively
// A key "names" a configured key when any reading's path starts with the configured path:
// `id`, `ID`, `id[]`, `id[0]`, `[id]`, `[id][]` and `%5Bid%5D` all name `id`; `filter[id]`
// names `filter[id]` (and `filter`). Counting a key the upstream ignores only over-counts;
// missing one it honours is a bypass.

/** The readings of one decoded key, each a path of lower-cased segments. */
export function keyPaths(rawKey: string): string[][] {
  const nul = rawKey.indexOf('\0')
  const key = (nul >= 0 ? rawKey.slice(0, nul) : rawKey).trim().toLowerCase()
  const open = key.indexOf('[')
  const close = open >= 0 ? key.indexOf(']', open) : -1
  if (open < 0 || close < 0) {
    // No bracket group (an unmatched `[` is part of the name: PHP makes it `_`).
    const php = key.replace(/[. []/g, '_')
    return php === key ? [[key]] : [[key], [php]]
  }
  let base = key.slice(0, open)
  const rest: string[] = []
  let i = open
  while (i < key.length && key[i] === '[') {
    const end = key.indexOf(']', i)
    if (end < 0) break
    rest.push(key.slice(i + 1, end))
    i = end + 1
  }
  // qs: `[id]` names `id`; the first group stands for the missing base.
  if (base === '') base = rest.shift() ?? ''
  const paths = [[base, ...rest]]
  const php = base.replace(/[. ]/g, '_')
  if (php !== base) paths.push([php, ...rest])
  return paths
}

/** A configured key (`id`, `filter[id]`) as the path the request's keys are compared with. */
export function configuredPath(key: string): string[] {
  return (keyPaths(key)[0] as string[]).filter((s, i) => i === 0 || s !== '')
}

/** Does any reading of `rawKey` name the configured path? */
export function namesKey(rawKey: string, path: readonly string[]): boolean {
  for (const reading of keyPaths(rawKey)) {
    if (reading.length < path.length) continue
    let same = true
    for (let i = 0; i < path.length && same; i++) same = reading[i] === path[i]
    if (same) return true
  }
  return false
}

/**
 * The pairs of a query string or form body. `&` separates pairs everywhere; some servers
 * (older servlet containers, Perl's CGI, Python before 3.9.2) also split on `;`: both
 * splittings are read and their pairs all returned (a value read twice only repeats an id).
 */
export function pairs(text: string): [string, string][] {
  const out: [string, string][] = []
  for (const pair of new URLSearchParams(text)) out.push(pair)
  if (text.includes(';')) {
    for (const part of text.split('&')) {
      if (!part.includes(';')) continue
      for (const pair of new URLSearchParams(part.replace(/;/g, '&'))) out.push(pair)
    }
  }
  return out
}

/**
 * The pairs of a form body sent in another charset, as servlet containers and ASP.NET read it:
 * split at the bytes `&` (and `;`) and `=`, percent-decoded to bytes, then each name and value
 * decoded with `decode` — so an ISO-2022-JP escape sequence inside a name (`i%1B(Bds`) is no
 * character at all, and UTF-16 names are names. `bytes`: the body, a character per byte.
 */
export function charsetPairs(bytes: string, decode: (b: Buffer) => string): [string, string][] {
  const out: [string, string][] = []
  const read = (part: string) => {
    if (part === '') return
    const eq = part.indexOf('=')
    out.push([
      decode(percentBytes(eq < 0 ? part : part.slice(0, eq))),
      decode(percentBytes(eq < 0 ? '' : part.slice(eq + 1))),
    ])
  }
  for (const part of bytes.split('&')) {
    read(part)
    // (Servers that also split at `;`: both splittings, as pairs() reads them.)
    if (part.includes(';')) for (const piece of part.split(';')) read(piece)
  }
  return out
}

/** `+` and `%XX` of a form's name or value undone, to bytes (a `%` that starts no escape stays). */
function percentBytes(text: string): Buffer {
  const plain = text.replace(/\+/g, ' ')
  if (!plain.includes('%')) return Buffer.from(plain, 'latin1')
  const out = Buffer.alloc(plain.length)
  let n = 0
  for (let i = 0; i < plain.length; i++) {
    const c = plain.charCodeAt(i)
    if (c === 0x25 && i + 2 < plain.length && /^[0-9a-f]{2}$/i.test(plain.slice(i + 1, i + 3))) {
      out[n++] = parseInt(plain.slice(i + 1, i + 3), 16)
      i += 2
    } else out[n++] = c
  }
  return out.subarray(0, n)
}

/**
 * A form body as nested values (qs's reading, lower-cased keys): `a[b][]=1&a[b][]=2` is
 * `{ a: { b: ['1', '2'] } }`. Array indices only append (a huge index must not make a huge
 * sparse array). Beside it, the flat reading: every top-level name with all its values.
 * `only`: build just that top-level name (lower case).
 */
export function formReadings(
  form: string | readonly [string, string][],
  only?: string,
): { nested: Record<string, unknown>; flat: Record<string, string[]> } {
  const nested: Record<string, unknown> = Object.create(null) as Record<string, unknown>
  const flat: Record<string, string[]> = Object.create(null) as Record<string, string[]>
  for (const [k, v] of typeof form === 'string' ? pairs(form) : form) {
    for (const path of keyPaths(k)) {
      const top = path[0] as string
      // Only the field a selector starts with matters: the rest is not built at all.
      if (only !== undefined && top !== only) continue
      ;(flat[top] ??= []).push(v)
      put(nested, path, v)
    }
  }
  return { nested, flat }
}

const MAX_DEPTH = 20

function put(root: Record<string, unknown>, path: readonly string[], value: string): void {
  let node: Record<string, unknown> | unknown[] = root
  const depth = Math.min(path.length, MAX_DEPTH)
  for (let i = 0; i < depth; i++) {
    const seg = path[i] as string
    const last = i === depth - 1
    const nextIsIndex = !last && /^\d*$/.test(path[i + 1] as string)
    if (Array.isArray(node)) {
      // An index segment: append (a fresh container, or the value).
      const child: Record<string, unknown> | unknown[] | string = last
        ? value
        : nextIsIndex
          ? []
          : (Object.create(null) as Record<string, unknown>)
      node.push(child)
      if (last) return
      node = child as Record<string, unknown> | unknown[]
      continue
    }
    const existing: unknown = node[seg]
    if (last) {
      // (Pushed in place: a copy per repeated key made 80,000 `id=` pairs take 43 s.)
      if (Array.isArray(existing)) existing.push(value)
      else if (existing === undefined) node[seg] = value
      else if (typeof existing === 'string') node[seg] = [existing, value]
      return
    }
    if (existing !== null && typeof existing === 'object') {
      node = existing as Record<string, unknown> | unknown[]
    } else {
      const child: Record<string, unknown> | unknown[] = nextIsIndex
        ? []
        : (Object.create(null) as Record<string, unknown>)
      node[seg] = child // a plain value here stays in the flat reading
      node = child
    }
  }
}
