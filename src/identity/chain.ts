// Who is asking: the first extractor that yields an account wins; the client IP is the
// fallback. Each source is as hard to spoof as we can make it, and keys its accounts in its
// own namespace (`jwt:`, `header:`, `basic:`, `session:`, `ip:`; `user:` for logins), so no
// value of one can name another's account:
//   jwt    verified (see jwt.ts)
//   header believed only from a trusted proxy, or when declared `trusted: true`
//   basic  the user name as the upstream compares it, with a keyed fingerprint of the
//          password: a wrong password is another account, so it cannot spend (or disable)
//          somebody else's budget; the upstream still checks the password
//   cookie hashed; one account per session; read as servers read it (percent-decoded, from
//          a `;name=` path parameter too); sent twice with different values → 400
//   ip     the socket peer, or X-Forwarded-For only through trusted proxies; IPv6 by /64
import type { IncomingMessage } from 'node:http'
import { randomBytes } from 'node:crypto'
import { cookieName, cookieValue, credentialValue } from '../http/cookies.js'
import {
  AmbiguousIdentityError,
  basicCredentials,
  bearerToken,
  cookieValues,
  fingerprint,
  headerValue,
  keyedFingerprint,
  singleCookie,
} from './credentials.js'
import { clientAddress, ipAccount, trustedPeer, type TrustFn } from './ip.js'
import { createJwtVerifier } from './jwt.js'
import { normalizeUsername } from './usernames.js'
import { parseDuration } from '../config/duration.js'
import { pairs } from '../records/keys.js'
import type { IdentityConfig } from '../config/schema.js'

export type IdentitySource = 'jwt' | 'header' | 'basic' | 'cookie' | 'ip'

export interface Identity {
  account: string
  source: IdentitySource
  /** The claims of a verified JWT (valid in time): what `overrides[].claims` match. Never from an unverified token. */
  claims?: Readonly<Record<string, unknown>>
}

/** An account, or an account with the claims of its verified token. */
type Found = string | { account: string; claims?: Readonly<Record<string, unknown>> }

type Extractor = (
  req: IncomingMessage,
  fromTrustedProxy: boolean,
  now: number,
) => Found | undefined | Promise<Found | undefined>

export interface IdentityChain {
  /** Synchronous unless a JWT must be verified (saves a promise per request on the hot path). */
  identify(req: IncomingMessage, now: number): Identity | Promise<Identity>
  /** The client address (trusted X-Forwarded-For hops resolved); computed on demand, it is not free. */
  clientIp(req: IncomingMessage): string
  /**
   * Identity headers the upstream must not see from this request (believed or not by us, spoofed
   * ones must not reach it).
   */
  untrustedHeaders(req: IncomingMessage): readonly string[]
}

const NONE: readonly string[] = []

export interface IdentityOptions {
  /** Key of Basic password fingerprints; undefined: random per process. */
  key?: string | undefined
}

export function buildIdentityChain(
  configs: readonly IdentityConfig[],
  trust: TrustFn,
  options: IdentityOptions = {},
): IdentityChain {
  const key = `sluice basic\0${options.key ?? randomBytes(32).toString('base64')}`
  const steps: { source: IdentitySource; extract: Extractor }[] = configs.map((c) => ({
    source: c.type,
    extract: extractor(c, key),
  }))
  const headerIdentities = configs
    .filter((c): c is Extract<IdentityConfig, { type: 'header' }> => c.type === 'header' && !c.trusted)
    .map((c) => c.name)

  const peerTrusted = (req: IncomingMessage) => trustedPeer(req.socket, trust)

  // Tries extractors from `first` on; stays synchronous until one returns a promise (JWT).
  const identifyFrom = (
    first: number,
    req: IncomingMessage,
    fromTrustedProxy: boolean,
    now: number,
  ): Identity | Promise<Identity> => {
    for (let i = first; i < steps.length; i++) {
      const step = steps[i] as (typeof steps)[number]
      const found = step.extract(req, fromTrustedProxy, now)
      if (found instanceof Promise) {
        return found.then((f) =>
          f !== undefined ? identity(f, step.source) : identifyFrom(i + 1, req, fromTrustedProxy, now),
        )
      }
      if (found !== undefined) return identity(found, step.source)
    }
    return { account: ipAccount(clientAddress(req, trust)), source: 'ip' }
  }

  return {
    identify(req, now) {
      return identifyFrom(0, req, peerTrusted(req), now)
    },
    clientIp(req) {
      return clientAddress(req, trust)
    },
    untrustedHeaders(req) {
      return headerIdentities.length > 0 && !peerTrusted(req) ? headerIdentities : NONE
    },
  }
}

function extractor(c: IdentityConfig, basicKey: string): Extractor {
  switch (c.type) {
    case 'jwt': {
      const tolerance = parseDuration(c.clockTolerance ?? '5m') ?? 300_000
      const verify = createJwtVerifier({ ...c, clockToleranceMs: tolerance })
      return (req, _trusted, now) => {
        const token = c.cookie ? singleCookie(req.headers, c.cookie, true) : bearerOf(req, c.header.toLowerCase())
        if (!token) return undefined
        return verify(token, now).then((v) =>
          v === undefined
            ? undefined
            : v.claims === undefined
              ? `jwt:${v.subject}`
              : { account: `jwt:${v.subject}`, claims: v.claims },
        )
      }
    }
    case 'header': {
      const name = c.name.toLowerCase()
      return (req, fromTrustedProxy) => {
        if (!c.trusted && !fromTrustedProxy) return undefined
        const value = headerValue(req.headers, name)?.trim()
        return value ? `header:${value}` : undefined
      }
    }
    case 'basic': {
      const mode = c.usernames ?? 'case-insensitive'
      return (req) => {
        const creds = basicCredentials(req.headers)
        if (!creds) return undefined
        const user = normalizeUsername(creds[0], mode)
        return user === '' ? undefined : `basic:${user}#${keyedFingerprint(basicKey, `${user}\0${creds[1]}`)}`
      }
    }
    case 'cookie':
      return (req) => {
        const value = sessionValue(req, c.name)
        return value ? sessionAccount(value) : undefined
      }
  }
}

function identity(found: Found, source: IdentitySource): Identity {
  if (typeof found === 'string') return { account: found, source }
  return found.claims === undefined
    ? { account: found.account, source }
    : { account: found.account, source, claims: found.claims }
}

/** The account of a session id, read as a credential is (cookieValue, then credentialValue). */
export function sessionAccount(value: string): string {
  return `session:${fingerprint(value)}`
}

/**
 * The session a request carries: its cookie, or a `;name=value` path parameter (servlet
 * containers honour `;jsessionid=` when cookies are off). Both with different values: the
 * upstream could pick either, so the request is ambiguous (400).
 */
function sessionValue(req: IncomingMessage, name: string): string | undefined {
  const cookies = cookieValues(req.headers, name, true)
  const url = req.url ?? ''
  const semi = url.indexOf(';')
  const q = url.indexOf('?')
  let values = cookies
  if (semi >= 0 && (q < 0 || semi < q))
    values = [...values, ...matrixValues(url.slice(semi, q < 0 ? url.length : q), name)]
  // PHP with session.use_trans_sid reads the session id from the query (`?PHPSESSID=…`).
  if (q >= 0 && q + 1 < url.length) values = [...values, ...queryValues(url.slice(q + 1), name)]
  if (values.length > 1 && values.some((v) => v !== values[0])) {
    throw new AmbiguousIdentityError(`session ${name} sent more than once with different values`)
  }
  return values[0]
}

/**
 * The bearer token of the header, or else of an `access_token` query parameter (RFC 6750
 * §2.3): passport-http-bearer and other resource servers take it from there, so a token sent
 * that way is the same account. Two different ones: ambiguous (passport refuses them, 400).
 */
function bearerOf(req: IncomingMessage, header: string): string | undefined {
  const fromHeader = bearerToken(headerValue(req.headers, header))
  const url = req.url ?? ''
  const q = url.indexOf('?')
  if (q < 0 || !url.includes('access_token', q)) return fromHeader
  const tokens = new Set<string>(fromHeader ? [fromHeader] : [])
  for (const [k, v] of pairs(url.slice(q + 1))) if (k === 'access_token' && v.trim() !== '') tokens.add(v.trim())
  if (tokens.size > 1) throw new AmbiguousIdentityError('more than one bearer token (header and access_token)')
  return tokens.values().next().value
}

/** Values of a query parameter named like the session cookie (names compared as cookie names). */
function queryValues(query: string, name: string): string[] {
  const wanted = cookieName(name)
  const out: string[] = []
  for (const [k, v] of pairs(query)) {
    if (cookieName(k) !== wanted) continue
    const value = credentialValue(cookieValue(v))
    if (value !== '') out.push(value)
  }
  return out
}

/** Values of `;name=value` parameters in a path (any segment), names compared as cookie names. */
function matrixValues(path: string, name: string): string[] {
  const wanted = cookieName(name)
  const out: string[] = []
  for (const segment of path.split('/')) {
    const params = segment.split(';')
    for (let i = 1; i < params.length; i++) {
      const p = params[i] as string
      const eq = p.indexOf('=')
      if (eq > 0 && cookieName(p.slice(0, eq)) === wanted) {
        const v = credentialValue(cookieValue(p.slice(eq + 1)))
        if (v !== '') out.push(v)
      }
    }
  }
  return out
}
