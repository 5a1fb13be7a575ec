// onRequest: classify, rewrite for forwarding, and on a sensitive route identify the account,
// check challenge passes and solutions, and decide the records the path and query name.
//
// Callback style with a synchronous fast path: a request to a non-sensitive route, and a
// sensitive one decided by the memory store without a JWT or a challenge solution to check,
// passes without a promise or a microtask. Each step hands over to the next directly, or
// through a promise only when its own work is asynchronous.
import type { FastifyReply, FastifyRequest } from 'fastify'
import {
  PASS_COOKIE,
  PASS_HEADER,
  SOLUTION_COOKIE,
  SOLUTION_HEADER,
  type HeldPass,
  type Verdict,
} from '../actions/challenge.js'
import { badRequest, busy, sendProblem } from '../actions/respond.js'
import type { CompiledConfig } from '../config/compile.js'
import type { Decision } from '../engine/engine.js'
import { sessionAccount, type Identity } from '../identity/chain.js'
import { AmbiguousIdentityError, cookieValues } from '../identity/credentials.js'
import { ipAccount, trustedPeer } from '../identity/ip.js'
import { askForWholeAnswer } from '../http/whole-answer.js'
import { formLike, mediaType } from '../records/body.js'
import type { Live } from '../runtime.js'
import type { SessionEvent } from '../sessions/binding.js'
import { METHOD_OVERRIDE_HEADERS } from '../routes/resolve.js'
import { applyOverride } from '../overrides/apply.js'
import { classify, type RoutedRequest, type SessionKind } from './classify.js'
import { clearSolution, setPass, stripSluiceCredentials, tokenFrom } from './credentials.js'
import { block, observe, report } from './decide.js'
import { CONTINUE, REPLIED, type Next, type Pipeline, type RoutedExchange } from './exchange.js'

const NO_PASSES: readonly HeldPass[] = []

/** Classify, rewrite for forwarding; on a sensitive route, identify and go on. */
export function admit(pipe: Pipeline, request: FastifyRequest, reply: FastifyReply): Next | Promise<Next> {
  const raw = request.raw
  const live = pipe.live
  const c = classify({ method: request.method, url: raw.url ?? '/', headers: request.headers }, live.classify)
  if (c.kind === 'rejected') {
    pipe.metrics.rejected.inc({ reason: 'path' })
    request.log.warn({ event: 'sluice.rejected', reason: c.reason, url: raw.url }, 'request path rejected')
    sendProblem(reply, badRequest(`The request path cannot be interpreted unambiguously: ${c.reason}.`))
    return REPLIED
  }
  if (c.kind === 'routed' && c.clamped && c.clampShadowed) {
    request.log.info(
      { event: 'sluice.clamped', route: c.route.name, params: c.clamped, shadow: true },
      'shadow: query would be clamped',
    )
  } else if (c.kind === 'routed' && c.clamped) {
    request.log.info({ event: 'sluice.clamped', route: c.route.name, params: c.clamped }, 'query clamped')
    // Guarding routes of the same app: it reads the query Fastify parsed, so clamp that too.
    const query = request.query
    if (!pipe.forwarding && query && typeof query === 'object') c.route.clamp?.parsed(query as Record<string, unknown>)
  }
  if (live.stripOverride && c.override !== undefined) for (const h of METHOD_OVERRIDE_HEADERS) delete raw.headers[h]
  if (pipe.forwarding) {
    // The upstream receives the path that was matched.
    if (c.target !== raw.url) raw.url = c.target
    for (const h of live.identity.untrustedHeaders(raw)) delete raw.headers[h]
    stripUrlOverrides(raw, live.config)
  }
  if (c.kind === 'unrouted') {
    if (c.session)
      request.sluiceExchange = {
        kind: 'session',
        live,
        raw,
        session: sessionEvent(request, live, c.session, c.search),
        held: 0,
      }
    if (pipe.forwarding) stripSluiceCredentials(request)
    return CONTINUE
  }
  if ((c.route.inspect || c.session === 'login') && pipe.budget.full) {
    pipe.metrics.inspectionBusy.inc()
    request.log.warn(
      { event: 'sluice.busy', route: c.route.name, heldBytes: pipe.budget.used },
      'inspection memory budget in use: refused',
    )
    sendProblem(reply, busy())
    return REPLIED
  }
  const ex: RoutedExchange = {
    kind: 'routed',
    classified: c,
    live,
    raw,
    route: c.route,
    target: c.target,
    account: '',
    source: 'ip',
    passes: NO_PASSES,
    pending: null,
    provisional: null,
    session: c.session ? sessionEvent(request, live, c.session, c.search) : null,
    held: 0,
  }
  request.sluiceExchange = ex
  return identify(pipe, request, reply, ex, c)
}

/** Who is asking: the identity chain, and the account a session cookie was bound to at login. */
function identify(
  pipe: Pipeline,
  request: FastifyRequest,
  reply: FastifyReply,
  ex: RoutedExchange,
  c: RoutedRequest,
): Next | Promise<Next> {
  const now = pipe.clock()
  let who: Identity | Promise<Identity>
  try {
    who = ex.live.identity.identify(ex.raw, now)
  } catch (err) {
    return ambiguous(pipe, request, reply, ex, err)
  }
  if (who instanceof Promise) {
    return who.then(
      (w) => bindSession(pipe, request, reply, ex, w, c.records, now),
      (err: unknown) => ambiguous(pipe, request, reply, ex, err),
    )
  }
  return bindSession(pipe, request, reply, ex, who, c.records, now)
}

/** A session cookie counts as the account it was bound to at login. */
function bindSession(
  pipe: Pipeline,
  request: FastifyRequest,
  reply: FastifyReply,
  ex: RoutedExchange,
  who: Identity,
  records: string[] | null,
  now: number,
): Next | Promise<Next> {
  ex.source = who.source
  if (who.claims !== undefined) ex.claims = who.claims
  const sessions = ex.live.sessions
  if (!sessions || who.source !== 'cookie') return checkChallenge(pipe, request, reply, ex, who.account, records, now)
  const account = sessions.resolve(who.account)
  if (account instanceof Promise) {
    return account.then((a) => checkChallenge(pipe, request, reply, ex, a ?? who.account, records, now))
  }
  return checkChallenge(pipe, request, reply, ex, account ?? who.account, records, now)
}

function ambiguous(
  pipe: Pipeline,
  request: FastifyRequest,
  reply: FastifyReply,
  ex: RoutedExchange,
  err: unknown,
): Next {
  if (!(err instanceof AmbiguousIdentityError)) throw err
  pipe.metrics.rejected.inc({ reason: 'identity' })
  request.log.warn({ event: 'sluice.rejected', reason: err.message, route: ex.route.name }, 'ambiguous identity')
  sendProblem(reply, { ...badRequest(`${err.message}.`), kind: 'ambiguous-identity' })
  return REPLIED
}

/** Challenge passes and solutions (only on routes that can challenge: the common case pays nothing). */
function checkChallenge(
  pipe: Pipeline,
  request: FastifyRequest,
  reply: FastifyReply,
  ex: RoutedExchange,
  account: string,
  records: string[] | null,
  now: number,
): Next | Promise<Next> {
  ex.account = account
  applyOverride(ex)
  const policy = ex.route.policy
  if (!policy.challengeable) {
    if (pipe.forwarding) stripSluiceCredentials(request)
    return decideRequest(pipe, request, reply, ex, records, now, null, undefined)
  }
  const challenges = ex.live.challenges
  const passToken = tokenFrom(request, PASS_HEADER, PASS_COOKIE)
  ex.passes = challenges.passes(passToken, account, policy, now)
  const solution = tokenFrom(request, SOLUTION_HEADER, SOLUTION_COOKIE)
  if (pipe.forwarding) stripSluiceCredentials(request)
  if (!solution) return decideRequest(pipe, request, reply, ex, records, now, null, undefined)
  return challenges.verify(solution, account, policy, now).then((verdict) => {
    pipe.metrics.challenges.labels(verdict.ok ? 'solved' : verdict.reason).inc()
    let grant: string | undefined
    if (verdict.ok) {
      const granted = challenges.grant(passToken, account, verdict.limit, now)
      ex.passes = [...ex.passes.filter((p) => p.index !== verdict.limit.index), granted.pass]
      grant = granted.token
      request.log.info(
        { event: 'sluice.challenge', outcome: 'solved', account, route: ex.route.name, limit: verdict.limit.label },
        'challenge solved',
      )
    } else {
      request.log.warn(
        { event: 'sluice.challenge', outcome: 'rejected', reason: verdict.reason, account, route: ex.route.name },
        `challenge solution rejected: ${verdict.reason}`,
      )
    }
    clearSolution(reply)
    return decideRequest(pipe, request, reply, ex, records, now, verdict, grant)
  })
}

/** Count and decide request-side records; a body's wait for preHandler (records null). */
function decideRequest(
  pipe: Pipeline,
  request: FastifyRequest,
  reply: FastifyReply,
  ex: RoutedExchange,
  records: string[] | null,
  now: number,
  verdict: Verdict | null,
  grant: string | undefined,
): Next | Promise<Next> {
  const inspect = ex.route.inspect
  if (records === null && inspect) {
    ex.pending = { from: 'body', inspect }
    if (grant) setPass(reply, grant, ex.live.config)
    return CONTINUE
  }
  const inBody = ex.route.keyInBody
  if (inBody !== null && records !== null && carriesBody(ex.raw)) {
    // The record's key in a form or JSON body counts too: decided once the body is read.
    ex.pending = { from: 'body', inspect: inBody, named: records }
    if (grant) setPass(reply, grant, ex.live.config)
    return CONTINUE
  }
  const seen = records ?? []
  const observed = observe(pipe, ex, seen, now, true)
  if (observed instanceof Promise)
    return observed.then((d) => decided(pipe, request, reply, ex, seen, d, verdict, grant))
  return decided(pipe, request, reply, ex, seen, observed, verdict, grant)
}

/**
 * Old Symfony and Zend Framework (and IIS's URL Rewrite behind them) serve the path an
 * `X-Original-URL` or `X-Rewrite-URL` header names instead of the request's: `GET /` with
 * `X-Original-URL: /api/contacts/5` is record 5 to them and no route to sluice. Only a proxy in
 * front of sluice may set them (trustedProxies); a client's are dropped.
 */
function stripUrlOverrides(raw: FastifyRequest['raw'], config: CompiledConfig): void {
  const headers = raw.headers
  // (Deleted only when there: a delete turns the headers object into a slower dictionary.)
  if (headers['x-original-url'] === undefined && headers['x-rewrite-url'] === undefined) return
  if (trustedPeer(raw.socket, config.trust)) return
  delete headers['x-original-url']
  delete headers['x-rewrite-url']
}

/**
 * A request with a body (GET and HEAD bodies are not forwarded) of a kind servers take
 * parameters from: a form, multipart form data, JSON, text or no type. An upload of another
 * type names no query key.
 */
function carriesBody(raw: FastifyRequest['raw']): boolean {
  if (raw.method === 'GET' || raw.method === 'HEAD') return false
  const length = raw.headers['content-length']
  if (raw.headers['transfer-encoding'] === undefined && (length === undefined || length === '0')) return false
  const type = mediaType(raw.headers['content-type'])
  return formLike(raw.headers['content-type']) || type.endsWith('/json') || type.endsWith('+json')
}

/** Block, or go on to the upstream (with a granted pass, and the answer still to count). */
function decided(
  pipe: Pipeline,
  request: FastifyRequest,
  reply: FastifyReply,
  ex: RoutedExchange,
  records: readonly string[],
  decision: Decision,
  verdict: Verdict | null,
  grant: string | undefined,
): Next | Promise<Next> {
  if (decision.kind !== 'allow') report(pipe, request, ex, decision, records, 'request')
  if (decision.block) return block(pipe, request, reply, ex, decision, verdict).then(() => REPLIED)
  if (grant) setPass(reply, grant, ex.live.config)
  const inspect = ex.route.inspect
  if (inspect?.from === 'response') {
    ex.pending = { from: 'response', inspect }
    askForWholeAnswer(ex.raw.headers)
  }
  return CONTINUE
}

/** A login (its user names in the query, its session, where an ambiguous one counts) or a logout. */
function sessionEvent(request: FastifyRequest, live: Live, kind: SessionKind, search: string): SessionEvent {
  const sessions = live.sessions
  if (kind === 'logout' || !sessions) return { kind: 'logout' }
  const usernames = new Set<string>()
  sessions.queryUsernames(search, usernames)
  const value = cookieValues(request.headers, sessions.config.login.cookie, true)[0]
  return {
    kind: 'login',
    usernames,
    session: value !== undefined ? sessionAccount(value) : undefined,
    fallback: ipAccount(live.identity.clientIp(request.raw)),
  }
}
