// Turn a decision (or a rejected request) into the response the client sees. Bodies say what
// happened and when to come back, never which limit or how close the client came to it: that
// would teach a scraper the exact pace to keep. Operators get the details in the logs.
import type { Challenge } from 'altcha-lib'
import type { FastifyReply } from 'fastify'
import { prefersHtml } from '../http/negotiate.js'
import { SOLUTION_HEADER } from './challenge.js'
import { challengePage } from './challenge-page.js'

export type ProblemKind =
  | 'throttled'
  | 'challenge'
  | 'disabled'
  | 'bad-request'
  | 'uninspectable'
  | 'upstream-unavailable'
  | 'upstream-timeout'
  | 'ambiguous-identity'
  | 'store-unavailable'
  | 'busy'

export interface Problem {
  kind: ProblemKind
  status: number
  title: string
  detail: string
  retryAfterSec?: number
  /** A block's reference, what an operator looks up (`sluice incidents show REF`): body, page and a header. */
  reference?: string
  /** A disable's end (ms since the epoch; Infinity: until unlocked): when to come back. */
  until?: number
}

/** The block page's own words (`actions.page`): never which limit, never how close. */
export interface PageOptions {
  /** The service's name, in the page title and heading. */
  title?: string
  /** A paragraph of the operator's own, after what happened. */
  message?: string
  /** Who to ask: an address, a phone number, a URL. */
  contact?: string
  /** The page's `lang`. */
  language?: string
}

export const REFERENCE_HEADER = 'sluice-reference'

export const PROBLEM_TYPE_BASE = 'https://sluice.dev/problems/'

/** A response as data: sent by sendProblem, or swapped in for a withheld upstream response. */
export interface Rendered {
  status: number
  headers: Record<string, string>
  body: string
}

export function renderProblem(
  accept: string | undefined,
  problem: Problem,
  extra?: Record<string, unknown>,
  options?: PageOptions,
): Rendered {
  const headers: Record<string, string> = { 'cache-control': 'no-store' }
  if (problem.retryAfterSec !== undefined) headers['retry-after'] = String(problem.retryAfterSec)
  if (problem.reference !== undefined) headers[REFERENCE_HEADER] = problem.reference
  if (prefersHtml(accept)) {
    headers['content-type'] = 'text/html; charset=utf-8'
    return { status: problem.status, headers, body: page(problem, options ?? {}) }
  }
  const body = {
    type: PROBLEM_TYPE_BASE + problem.kind,
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    ...(problem.retryAfterSec !== undefined ? { retryAfter: problem.retryAfterSec } : {}),
    ...(problem.until !== undefined ? { disabledUntil: untilText(problem.until) } : {}),
    ...(problem.reference !== undefined ? { reference: problem.reference } : {}),
    ...extra,
  }
  headers['content-type'] = 'application/problem+json'
  return { status: problem.status, headers, body: JSON.stringify(body) }
}

export function sendProblem(reply: FastifyReply, problem: Problem, extra?: Record<string, unknown>): FastifyReply {
  return sendRendered(reply, renderProblem(reply.request.headers.accept, problem, extra))
}

export function sendRendered(reply: FastifyReply, r: Rendered): FastifyReply {
  // Refused before its body was read to the end (too large, busy): the rest is still on the
  // connection, where the next request would wait behind it. Close it after this answer.
  if (!reply.request.raw.complete) reply.header('connection', 'close')
  return reply.code(r.status).headers(r.headers).send(r.body)
}

/**
 * The challenge: a page that solves it and retries by itself, or for an API client a problem
 * carrying the challenge and how to answer it. `rejected` says why a submitted solution failed.
 */
export function renderChallenge(
  accept: string | undefined,
  challenge: Challenge,
  rejected?: string,
  reference?: string,
  options?: PageOptions,
): Rendered {
  const problem: Problem = {
    kind: 'challenge',
    status: 429,
    title: 'Proof of work required',
    detail: `Solve the challenge and repeat the request with the solution in the ${SOLUTION_HEADER} header.`,
    ...(reference !== undefined ? { reference } : {}),
  }
  if (prefersHtml(accept)) {
    const headers: Record<string, string> = { 'cache-control': 'no-store', 'content-type': 'text/html; charset=utf-8' }
    if (reference !== undefined) headers[REFERENCE_HEADER] = reference
    return { status: 429, headers, body: challengePage(challenge, { ...options, ...(reference ? { reference } : {}) }) }
  }
  return renderProblem(accept, problem, {
    challenge,
    solution: {
      header: SOLUTION_HEADER,
      format:
        'base64(JSON {"challenge": <challenge>, "solution": {"counter": n, "derivedKey": "<hex>"}}) — the ALTCHA v2 payload; altcha-lib solveChallenge() produces the solution',
    },
    ...(rejected ? { solutionRejected: rejected } : {}),
  })
}

export function throttled(retryAfterMs: number): Problem {
  const retryAfterSec = Math.max(1, Math.ceil(retryAfterMs / 1000))
  return {
    kind: 'throttled',
    status: 429,
    title: 'Too Many Requests',
    detail: `Too many requests from this account. Try again in ${retryAfterSec} seconds.`,
    retryAfterSec,
  }
}

export function disabled(until?: number | null): Problem {
  return {
    kind: 'disabled',
    status: 403,
    title: 'Account disabled',
    detail: 'This account has been disabled for unusual activity. Contact the service operator.',
    ...(until !== undefined && until !== null ? { until } : {}),
  }
}

export function unavailable(): Problem {
  return {
    kind: 'store-unavailable',
    status: 503,
    title: 'Service Unavailable',
    detail: 'This part of the service is temporarily unavailable. Try again shortly.',
    retryAfterSec: 5,
  }
}

/** The inspection memory budget is in use: nothing was decided, come back in a moment. */
export function busy(): Problem {
  return {
    kind: 'busy',
    status: 503,
    title: 'Service Unavailable',
    detail: 'The service is busy. Try again in a moment.',
    retryAfterSec: 1,
  }
}

export function badRequest(detail: string): Problem {
  return { kind: 'bad-request', status: 400, title: 'Bad Request', detail }
}

export function uninspectable(status: 413 | 415 | 400 | 502, detail: string): Problem {
  const titles = { 400: 'Bad Request', 413: 'Content Too Large', 415: 'Unsupported Media Type', 502: 'Bad Gateway' }
  return { kind: 'uninspectable', status, title: titles[status], detail }
}

/** Escaped for HTML text and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function untilText(until: number): string {
  return Number.isFinite(until) ? new Date(until).toISOString() : 'forever'
}

/** When a disable ends, in words (a throttle's detail already says when: its Retry-After). */
function comeBack(p: Problem): string | null {
  if (p.until === undefined) return null
  return Number.isFinite(p.until)
    ? `You can try again after ${new Date(p.until).toISOString().replace('T', ' ').slice(0, 16)} UTC.`
    : 'It stays disabled until the service operator lifts it.'
}

/** The operator's title, message and contact, the reference and when to come back: shared with the challenge page. */
export function pageParts(options: PageOptions & { reference?: string }): { head: string; foot: string } {
  const head = options.title !== undefined ? `<p class="sluice-site">${escapeHtml(options.title)}</p>` : ''
  const foot = [
    options.message !== undefined ? `<p>${escapeHtml(options.message)}</p>` : '',
    options.contact !== undefined ? `<p class="sluice-contact">${escapeHtml(options.contact)}</p>` : '',
    options.reference !== undefined
      ? `<p class="sluice-reference">Reference: <code>${escapeHtml(options.reference)}</code> (quote it when you ask for help)</p>`
      : '',
  ].join('')
  return { head, foot }
}

export const PAGE_STYLE =
  'body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}.sluice-site{color:#555}code{font-size:1.1em}'

function page(p: Problem, options: PageOptions): string {
  const esc = escapeHtml
  const lang = esc(options.language ?? 'en')
  const title = options.title !== undefined ? `${p.title} — ${options.title}` : `${p.status} ${p.title}`
  const { head, foot } = pageParts({ ...options, ...(p.reference !== undefined ? { reference: p.reference } : {}) })
  const back = comeBack(p)
  return `<!doctype html><html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex"><title>${esc(title)}</title><style>${PAGE_STYLE}</style></head><body>${head}<h1>${esc(p.title)}</h1><p>${esc(p.detail)}</p>${back !== null ? `<p class="sluice-retry">${esc(back)}</p>` : ''}${foot}</body></html>`
}
