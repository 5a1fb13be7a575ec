// A secret never appears in a message: values of secret keys (token, secret, password, key…) and
// the credentials of a URL are replaced before a config problem is printed or logged.

/** Keys whose values are secrets wherever they appear (admin.token, audit.key, jwt secret, …). */
const SECRET_KEY = /token|secret|password|passphrase|credential/i
const KEYISH = /^key$|Key$/

export function isSecretKey(key: string | number | undefined): boolean {
  return typeof key === 'string' && (SECRET_KEY.test(key) || KEYISH.test(key))
}

/** The last key of a path names a secret. */
export function isSecretPath(path: readonly (string | number)[]): boolean {
  for (let i = path.length - 1; i >= 0; i--) {
    const p = path[i]
    if (typeof p === 'string') return isSecretKey(p)
  }
  return false
}

const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^@/?#\s"]*)@/gi

/** `redis://user:pw@host` → `redis://user:***@host` (and `redis://:pw@host` → `redis://:***@host`). */
export function redactUrl(text: string): string {
  return text.replace(URL_USERINFO, (_m, scheme: string, info: string) => {
    const colon = info.indexOf(':')
    return colon < 0 ? `${scheme}***@` : `${scheme}${info.slice(0, colon)}:***@`
  })
}

/** How a value is shown in a message: a secret by its length only, a URL without its credentials. */
export function shownValue(path: readonly (string | number)[], value: unknown): string {
  if (isSecretPath(path) && value !== undefined && value !== null) {
    const len = typeof value === 'string' ? `${[...value].length} characters, ` : ''
    return `the value (${len}not shown: a secret)`
  }
  // A mapping or a list is named, not printed: it may hold secrets, and it is on the line shown.
  if (Array.isArray(value)) return 'the list'
  if (value !== null && typeof value === 'object') return 'the mapping'
  return redactUrl(JSON.stringify(value) ?? String(value))
}

/** Every secret string in a config: values of secret keys, passwords in URLs. */
export function secretsIn(value: unknown, key?: string | number, out: Set<string> = new Set()): Set<string> {
  if (typeof value === 'string') {
    if (isSecretKey(key) && value.length > 0) out.add(value)
    for (const m of value.matchAll(URL_USERINFO)) {
      const info = m[2] ?? ''
      const colon = info.indexOf(':')
      const pw = colon < 0 ? info : info.slice(colon + 1)
      if (pw.length > 0) out.add(decodeURIComponentSafe(pw)).add(pw)
    }
  } else if (Array.isArray(value)) {
    value.forEach((v) => secretsIn(v, key, out))
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) secretsIn(v, k, out)
  }
  return out
}

/** `text` with every secret replaced by `***` (longest first, so a secret inside another goes too). */
export function scrub(text: string, secrets: Iterable<string>): string {
  let out = redactUrl(text)
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) if (s.length > 0) out = out.split(s).join('***')
  return out
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}
