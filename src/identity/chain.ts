// Who is asking: the first extractor that yields an account wins; the client IP is the
// fallback. Each source is as hard to spoof as we can make it:
//   jwt    verified (see jwt.ts)
//   header believed only from a trusted proxy, or when declared `trusted: true`
//   basic  keyed with a fingerprint of the password, so a wrong password cannot spend (or
//          disable) somebody else's budget; the upstream still checks the password
//   cookie hashed; one account per session; sent twice with different values → 400
//   ip     the socket peer, or X-Forwarded-For only through trusted proxies; IPv6 by /64
import type { IncomingMessage } from 'node:http'
import { basicCredentials, bearerToken, fingerprint, headerValue, singleCookie } from './credentials.js'
import { clientAddress, ipAccount, trustedPeer, type TrustFn } from './ip.js'
import { createJwtVerifier } from './jwt.js'
import type { IdentityConfig } from '../config/schema.js'

export type IdentitySource = 'jwt' | 'header' | 'basic' | 'cookie' | 'ip'

export interface Identity {
  account: string
  source: IdentitySource
}

type Extractor = (req: IncomingMessage, fromTrustedProxy: boolean, now: number) => string | undefined | Promise<string | undefined>

export interface IdentityChain {
  /** Synchronous unless a JWT must be verified (saves a promise per request on the hot path). */
  identify(req: IncomingMessage, now: number): Identity | Promise<Identity>
  /** The client address (trusted X-Forwarded-For hops resolved); computed on demand, it is not free. */
  clientIp(req: IncomingMessage): string
  /** Identity headers the upstream must not see from this request (believed or not by us, spoofed ones must not reach it). */
  untrustedHeaders(req: IncomingMessage): readonly string[]
}

const NONE: readonly string[] = []

export function buildIdentityChain(configs: readonly IdentityConfig[], trust: TrustFn): IdentityChain {
  const steps: { source: IdentitySource; extract: Extractor }[] = configs.map((c) => ({ source: c.type, extract: extractor(c) }))
  const headerIdentities = configs.filter((c): c is Extract<IdentityConfig, { type: 'header' }> => c.type === 'header' && !c.trusted).map((c) => c.name)

  const peerTrusted = (req: IncomingMessage) => trustedPeer(req.socket, trust)

  // Tries extractors from `first` on; stays synchronous until one returns a promise (JWT).
  const identifyFrom = (first: number, req: IncomingMessage, fromTrustedProxy: boolean, now: number): Identity | Promise<Identity> => {
    for (let i = first; i < steps.length; i++) {
      const step = steps[i] as (typeof steps)[number]
      const found = step.extract(req, fromTrustedProxy, now)
      if (found instanceof Promise) {
        return found.then((account) => (account !== undefined ? { account, source: step.source } : identifyFrom(i + 1, req, fromTrustedProxy, now)))
      }
      if (found !== undefined) return { account: found, source: step.source }
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

function extractor(c: IdentityConfig): Extractor {
  switch (c.type) {
    case 'jwt': {
      const verify = createJwtVerifier(c)
      return (req, _trusted, now) => {
        const token = c.cookie ? singleCookie(req.headers, c.cookie) : bearerToken(headerValue(req.headers, c.header.toLowerCase()))
        return token ? verify(token, now) : undefined
      }
    }
    case 'header': {
      const name = c.name.toLowerCase()
      return (req, fromTrustedProxy) => {
        if (!c.trusted && !fromTrustedProxy) return undefined
        const value = headerValue(req.headers, name)?.trim()
        return value ? value : undefined
      }
    }
    case 'basic':
      return (req) => {
        const creds = basicCredentials(req.headers)
        return creds ? `basic:${creds[0]}#${fingerprint(`${creds[0]}\0${creds[1]}`, 6)}` : undefined
      }
    case 'cookie':
      return (req) => {
        const value = singleCookie(req.headers, c.name)
        return value ? `session:${fingerprint(value)}` : undefined
      }
  }
}
