// A JWT names an account only after jose has verified its signature, algorithm (from an
// allow-list: never `none`, never an HS/RS mix that invites key confusion), expiry, and
// issuer/audience when configured. Anything else yields no account and the next extractor runs.
import { createPublicKey, type KeyObject } from 'node:crypto'
import { errors as joseErrors, jwtVerify } from 'jose'
import { boundedLru } from '../store/lru.js'

export interface JwtOptions {
  secret?: string
  publicKey?: string
  algorithms: string[]
  claim: string
  issuer?: string
  audience?: string
}

export type JwtVerifier = (token: string, now: number) => Promise<string | undefined>

// A token longer than this is not one sluice will spend CPU on.
const MAX_TOKEN_LENGTH = 8192

export function jwtKey(options: Pick<JwtOptions, 'secret' | 'publicKey'>): Uint8Array | KeyObject {
  if (options.publicKey) return createPublicKey(options.publicKey)
  return new TextEncoder().encode(options.secret ?? '')
}

export function createJwtVerifier(options: JwtOptions): JwtVerifier {
  const key = jwtKey(options)
  // Verified tokens are cached until they expire (a signature check costs tens of µs and
  // the same token arrives on every request); garbage is cached briefly so it cannot be
  // used to burn CPU either.
  const cache = boundedLru<string, { account: string | undefined; until: number }>(10_000)
  const verifyOptions = {
    algorithms: options.algorithms,
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.audience ? { audience: options.audience } : {}),
  }

  return async (token, now) => {
    if (token.length > MAX_TOKEN_LENGTH) return undefined
    const hit = cache.get(token)
    if (hit && hit.until > now) return hit.account
    try {
      const { payload } = await jwtVerify(token, key, { ...verifyOptions, currentDate: new Date(now) })
      const value = payload[options.claim]
      const account = typeof value === 'string' && value !== '' ? value : typeof value === 'number' ? String(value) : undefined
      const until = typeof payload.exp === 'number' ? payload.exp * 1000 : now + 60_000
      cache.set(token, { account, until })
      return account
    } catch (err) {
      if (!(err instanceof joseErrors.JOSEError) && !(err instanceof TypeError)) throw err
      cache.set(token, { account: undefined, until: now + 5_000 })
      return undefined
    }
  }
}
