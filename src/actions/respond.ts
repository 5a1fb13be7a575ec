// Turn a decision (or a rejected request) into the response the client sees. Bodies say what
// happened and when to come back, never which limit or how close the client came to it: that
// would teach a scraper the exact pace to keep. Operators get the details in the logs.
import type { FastifyReply } from 'fastify'
import { prefersHtml } from '../http/negotiate.js'

export type ProblemKind = 'throttled' | 'challenge' | 'disabled' | 'bad-request' | 'upstream-unavailable' | 'upstream-timeout' | 'ambiguous-identity' | 'store-unavailable'

export interface Problem {
  kind: ProblemKind
  status: number
  title: string
  detail: string
  retryAfterSec?: number
}

export const PROBLEM_TYPE_BASE = 'https://sluice.dev/problems/'

export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  reply.code(problem.status).header('cache-control', 'no-store')
  if (problem.retryAfterSec !== undefined) reply.header('retry-after', String(problem.retryAfterSec))
  if (prefersHtml(reply.request.headers.accept)) {
    return reply.type('text/html; charset=utf-8').send(page(problem))
  }
  const body = {
    type: PROBLEM_TYPE_BASE + problem.kind,
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    ...(problem.retryAfterSec !== undefined ? { retryAfter: problem.retryAfterSec } : {}),
  }
  return reply.type('application/problem+json').send(JSON.stringify(body))
}

export function throttled(retryAfterMs: number, kind: 'throttled' | 'challenge' = 'throttled'): Problem {
  const retryAfterSec = Math.max(1, Math.ceil(retryAfterMs / 1000))
  return { kind, status: 429, title: 'Too Many Requests', detail: `Too many requests from this account. Try again in ${retryAfterSec} seconds.`, retryAfterSec }
}

export function disabled(): Problem {
  return { kind: 'disabled', status: 403, title: 'Account disabled', detail: 'This account has been disabled for unusual activity. Contact the service operator.' }
}

export function unavailable(): Problem {
  return { kind: 'store-unavailable', status: 503, title: 'Service Unavailable', detail: 'This part of the service is temporarily unavailable. Try again shortly.', retryAfterSec: 5 }
}

export function badRequest(detail: string): Problem {
  return { kind: 'bad-request', status: 400, title: 'Bad Request', detail }
}

function page(p: Problem): string {
  const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${p.status} ${esc(p.title)}</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}</style></head><body><h1>${esc(p.title)}</h1><p>${esc(p.detail)}</p></body></html>`
}
