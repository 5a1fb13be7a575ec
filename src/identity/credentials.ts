// Small parsers for the places credentials live. They never throw on garbage.
import type { IncomingHttpHeaders } from 'node:http'
import { createHash, createHmac } from 'node:crypto'
import { AmbiguousIdentityError } from '../errors.js'
import { cookieName, cookieValue, credentialValue, eachCookie } from '../http/cookies.js'

/** A token shown once in logs and stored as a key must not be the token: hash it. */
export function fingerprint(value: string, length = 16): string {
  return createHash('sha256').update(value).digest('hex').slice(0, length)
}

/**
 * A keyed fingerprint (HMAC-SHA256, 64 bits): printed in account keys, it cannot be used to
 * search for a colliding input offline without the key, and 2^64 guesses online are out of reach.
 */
export function keyedFingerprint(key: string | Buffer, value: string): string {
  return createHmac('sha256', key).update(value).digest('hex').slice(0, 16)
}

export { AmbiguousIdentityError }

/**
 * Every value of one cookie. A request may carry a name twice (`a=1; a=2`); servers disagree
 * on which one wins, so the caller must not pick one silently. A `credential` (a session id, a
 * token) is read as the most lenient server reads it: pairs split on `,` as well as `;`
 * (eachCookie) and each value as credentialValue cuts it.
 */
export function cookieValues(headers: IncomingHttpHeaders, name: string, credential = false): string[] {
  const raw = headers.cookie
  if (!raw) return []
  const out: string[] = []
  const wanted = cookieName(name)
  eachCookie(raw, credential, (n, v) => {
    // Names compare as the most lenient server compares them (see cookieName).
    if (n.trim() !== name && cookieName(n) !== wanted) return
    const value = credential ? credentialValue(cookieValue(v)) : cookieValue(v)
    if (value !== '') out.push(value)
  })
  return out
}

/** One cookie's value; throws AmbiguousIdentityError when it is sent twice with different values. */
export function singleCookie(headers: IncomingHttpHeaders, name: string, credential = false): string | undefined {
  const values = cookieValues(headers, name, credential)
  if (values.length > 1 && values.some((v) => v !== values[0])) {
    throw new AmbiguousIdentityError(`cookie ${name} sent more than once with different values`)
  }
  return values[0]
}

export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name]
  if (Array.isArray(v)) {
    if (v.length > 1 && v.some((x) => x !== v[0]))
      throw new AmbiguousIdentityError(`header ${name} sent more than once with different values`)
    return v[0]
  }
  return v
}

/** `Authorization: Basic …` → [user, password]; undefined for anything else. */
export function basicCredentials(headers: IncomingHttpHeaders): [string, string] | undefined {
  const auth = headers.authorization
  if (!auth || auth.length < 7 || auth.slice(0, 6).toLowerCase() !== 'basic ') return undefined
  const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon <= 0) return undefined
  return [decoded.slice(0, colon), decoded.slice(colon + 1)]
}

/** A bearer token from a header value (`Bearer x` or bare `x`); never a Basic credential. */
export function bearerToken(value: string | undefined): string | undefined {
  if (!value) return undefined
  const v = value.trim()
  const space = v.indexOf(' ')
  if (space < 0) return v
  return v.slice(0, space).toLowerCase() === 'bearer' ? v.slice(space + 1).trim() : undefined
}
