// sluice's own credentials on a request: the challenge pass and solution (header or cookie).
// They are for sluice only: the upstream never sees them.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { PASS_COOKIE, PASS_HEADER, SOLUTION_COOKIE, SOLUTION_HEADER } from '../actions/challenge.js'
import type { CompiledConfig } from '../config/compile.js'
import { withoutCookies } from '../http/cookies.js'
import { singleCookie } from '../identity/credentials.js'
import { trustedPeer } from '../identity/ip.js'

/** A pass or solution, from its header or its cookie (a cookie sent twice with different values: none). */
export function tokenFrom(request: FastifyRequest, header: string, cookie: string): string | undefined {
  const h = request.headers[header]
  if (typeof h === 'string' && h !== '') return h.trim()
  try {
    return singleCookie(request.headers, cookie)
  } catch {
    return undefined
  }
}

export function setPass(reply: FastifyReply, token: string, config: CompiledConfig): void {
  reply.header(PASS_HEADER, token)
  const maxAge = Math.ceil(config.actions.challenge.validForMs / 1000)
  const secure = isHttps(reply.request, config.trust) ? '; Secure' : ''
  reply.header('set-cookie', `${PASS_COOKIE}=${token}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${secure}`)
}

/** The solution cookie is spent once read. */
export function clearSolution(reply: FastifyReply): void {
  reply.header('set-cookie', `${SOLUTION_COOKIE}=; Path=/; Max-Age=0; SameSite=Strict`)
}

/** Did the client reach us over TLS (directly, or through a trusted proxy that says so)? */
function isHttps(request: FastifyRequest, trust: CompiledConfig['trust']): boolean {
  if ((request.raw.socket as { encrypted?: boolean }).encrypted) return true
  const proto = request.headers['x-forwarded-proto']
  return (
    trustedPeer(request.raw.socket, trust) &&
    typeof proto === 'string' &&
    proto.split(',')[0]?.trim().toLowerCase() === 'https'
  )
}

/** sluice's own headers and cookies are for sluice: the upstream never sees them. */
export function stripSluiceCredentials(request: FastifyRequest): void {
  const headers = request.raw.headers
  if (headers[PASS_HEADER] !== undefined) delete headers[PASS_HEADER]
  if (headers[SOLUTION_HEADER] !== undefined) delete headers[SOLUTION_HEADER]
  const cookie = headers.cookie
  if (typeof cookie === 'string' && cookie.toLowerCase().includes('sluice_')) {
    const kept = withoutCookies(cookie, [PASS_COOKIE, SOLUTION_COOKIE])
    if (kept === undefined) delete headers.cookie
    else headers.cookie = kept
  }
}

/** Is a Set-Cookie header (or all of several) one of sluice's own? */
export function isSluiceCookie(value: unknown): boolean {
  const all = Array.isArray(value) ? value : [value]
  return all.every(
    (v) => typeof v === 'string' && (v.startsWith(`${PASS_COOKIE}=`) || v.startsWith(`${SOLUTION_COOKIE}=`)),
  )
}
