// A JWT names an account only after jose has verified its signature and algorithm (from an
// allow-list: never `none`, never an HS/RS mix that invites key confusion), and issuer/audience
// when configured. Anything else yields no account and the next extractor runs.
//
// Time is different: upstream servers accept tokens a few minutes past `exp` (clock leeway),
// so a token out of time by less than `clockTolerance` is simply valid, and one out of time by
// more still names its subject — it is correctly signed, and dropping it would hand its bearer
// a fresh identity (the client address) the upstream does not see.
import { createPublicKey, type KeyObject } from 'node:crypto'
import { boundedLru } from '../store/lru.js'

export interface JwtOptions {
  secret?: string
  publicKey?: string
  algorithms: string[]
  claim: string
  issuer?: string
  audience?: string
  /** Leeway for exp/nbf in ms. */
  clockToleranceMs?: number
}

/** A verified token: its subject (the account's id) and, when it is valid in time, its claims. */
export interface VerifiedJwt {
  subject: string
  /** The verified payload; absent for a token out of time by more than the tolerance (see above). */
  claims?: Readonly<Record<string, unknown>>
}

export type JwtVerifier = (token: string, now: number) => Promise<VerifiedJwt | undefined>

const TIME_CLAIMS = new Set(['exp', 'nbf', 'iat'])

// A token longer than this is not one sluice will spend CPU on.
const MAX_TOKEN_LENGTH = 8192

export function jwtKey(options: Pick<JwtOptions, 'secret' | 'publicKey'>): Uint8Array | KeyObject {
  if (options.publicKey) return createPublicKey(options.publicKey)
  return new TextEncoder().encode(options.secret ?? '')
}

// jose loads when a config has a jwt extractor (its compile), not with every process.
type Jose = typeof import('jose')
let jose: Jose | undefined
let loading: Promise<Jose> | undefined
function loadJose(): Promise<Jose> {
  return (loading ??= import('jose').then((m) => (jose = m)))
}

export function createJwtVerifier(options: JwtOptions): JwtVerifier {
  // Started when the config is compiled; settled long before a request arrives (the first
  // token awaits it if not).
  void loadJose()
  const key = jwtKey(options)
  // Verified tokens are cached until they expire (a signature check costs tens of µs and
  // the same token arrives on every request); garbage is cached briefly so it cannot be
  // used to burn CPU either.
  const cache = boundedLru<string, { account: VerifiedJwt | undefined; until: number }>(10_000)
  const verifyOptions = {
    algorithms: options.algorithms,
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.audience ? { audience: options.audience } : {}),
    clockTolerance: Math.floor((options.clockToleranceMs ?? 300_000) / 1000),
  }
  const accountOf = (payload: Record<string, unknown>): string | undefined => {
    const value = payload[options.claim]
    return typeof value === 'string' && value !== '' ? value : typeof value === 'number' ? String(value) : undefined
  }

  return async (token, now) => {
    if (token.length > MAX_TOKEN_LENGTH) return undefined
    const hit = cache.get(token)
    if (hit && hit.until > now) return hit.account
    const { jwtVerify, errors: joseErrors } = jose ?? (await loadJose())
    try {
      const { payload } = await jwtVerify(token, key, { ...verifyOptions, currentDate: new Date(now) })
      const subject = accountOf(payload)
      const account = subject === undefined ? undefined : { subject, claims: payload }
      const until =
        typeof payload.exp === 'number' ? payload.exp * 1000 + verifyOptions.clockTolerance * 1000 : now + 60_000
      cache.set(token, { account, until: Math.min(until, now + 3_600_000) })
      return account
    } catch (err) {
      if (!(err instanceof joseErrors.JOSEError) && !(err instanceof TypeError)) throw err
      if (
        (err instanceof joseErrors.JWTExpired || err instanceof joseErrors.JWTClaimValidationFailed) &&
        TIME_CLAIMS.has(err.claim)
      ) {
        // Signature verified (jose checks claims after it): only its time is out. Its subject
        // still counts; its claims grant nothing (no override matches a stale token's claims).
        const subject = accountOf(err.payload)
        const account = subject === undefined ? undefined : { subject }
        cache.set(token, { account, until: now + 60_000 })
        return account
      }
      cache.set(token, { account: undefined, until: now + 5_000 })
      return undefined
    }
  }
}
