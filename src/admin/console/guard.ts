// What keeps the console's pages to its operators: the session cookie, the CSRF checks, and
// the headers every answer carries.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { BASE } from './layout.js'

export const COOKIE = 'sluice_console'

/** Nothing but the console's own script, style and requests; no framing, no other form target. */
export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

export function secureHeaders(reply: FastifyReply): void {
  void reply.headers({
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    // Not no-referrer: with it, Chromium sends `Origin: null` on the console's own form posts.
    'referrer-policy': 'same-origin',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
  })
}

export function sessionId(request: FastifyRequest): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === COOKIE) return part.slice(eq + 1).trim()
  }
  return undefined
}

/** HttpOnly, SameSite=Strict, the console's path only; Secure when the listener speaks TLS. */
export function sessionCookie(request: FastifyRequest, id: string, maxAgeMs: number): string {
  const secure = request.protocol === 'https' ? '; Secure' : ''
  return `${COOKIE}=${id}; Path=${BASE}; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(maxAgeMs / 1000)}${secure}`
}

export function clearedCookie(): string {
  return `${COOKIE}=; Path=${BASE}; HttpOnly; SameSite=Strict; Max-Age=0`
}

/**
 * A state-changing request from this console's own pages: a browser says where it comes from
 * (Sec-Fetch-Site, Origin), and another site's form or script is refused before its CSRF
 * token is even read. A client that sends neither (curl) still needs the token.
 */
export function fromThisOrigin(request: FastifyRequest): boolean {
  const site = request.headers['sec-fetch-site']
  if (site !== undefined && site !== 'same-origin') return false
  const origin = request.headers.origin
  if (origin === undefined) return true
  return origin === `${request.protocol}://${request.host}`
}

/** The form's CSRF token against the session's, in constant time. */
export function csrfMatches(given: unknown, expected: string): boolean {
  if (typeof given !== 'string') return false
  const digest = (s: string) => createHash('sha256').update(s).digest()
  return timingSafeEqual(digest(given), digest(expected))
}
