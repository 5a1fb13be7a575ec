// Count and decide: one observation of the engine, its metrics, its report, and the answer of
// a block. Synchronous with the memory store: no promise (and no microtask hop) per request on
// the hot path.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { blockResponse } from '../actions/block.js'
import type { Verdict } from '../actions/challenge.js'
import { sendRendered, type Rendered } from '../actions/respond.js'
import type { Metrics } from '../admin/metrics.js'
import type { Decision, ObserveStep } from '../engine/engine.js'
import { networkOf } from '../identity/ip.js'
import type { Pipeline, RoutedExchange } from './exchange.js'

/** Count `records` (and, unless `countRequest` is false, the request) and decide. */
export function observe(
  pipe: Pipeline,
  ex: RoutedExchange,
  records: readonly string[],
  now: number,
  countRequest: boolean,
): Decision | Promise<Decision> {
  if (ex.passes.length === 0) return observeWith(pipe, ex, records, now, countRequest, null)
  // What each pass still pays for is in the store (shared by every instance).
  return ex.live.challenges
    .spend(ex.passes, records.length, countRequest)
    .then((passes) => observeWith(pipe, ex, records, now, countRequest, passes))
}

function observeWith(
  pipe: Pipeline,
  ex: RoutedExchange,
  records: readonly string[],
  now: number,
  countRequest: boolean,
  passes: readonly number[] | null,
): Decision | Promise<Decision> {
  const route = ex.route
  // Asked only when a full memory store has to count the account under its client network.
  // A response-inspected route decides again at the answer's step, when a closed connection's
  // socket may be gone: the client address is read now, while it is at hand.
  if (countRequest && route.inspect?.from === 'response') clientIpOf(ex)
  const overflowKey = () => networkOf(clientIpOf(ex))
  const step: ObserveStep = passes === null ? { countRequest, overflowKey } : { countRequest, passes, overflowKey }
  const net = ex.live.config.network
  if (net.used) step.network = ex.network ??= networkOf(clientIpOf(ex), net.ipv4, net.ipv6)
  const started = pipe.storeLatency ? performance.now() : 0
  const observed = ex.live.engine.observe(ex.account, route.policy, records, now, step)
  if (!(observed instanceof Promise)) return counted(pipe, ex, observed, countRequest)
  return observed.then((d) => {
    pipe.storeLatency?.observe((performance.now() - started) / 1000)
    return counted(pipe, ex, d, countRequest)
  })
}

/** The client address of an exchange, read once. */
function clientIpOf(ex: RoutedExchange): string {
  return (ex.clientIp ??= ex.live.identity.clientIp(ex.raw))
}

function counted(pipe: Pipeline, ex: RoutedExchange, decision: Decision, requestStep: boolean): Decision {
  const metrics = pipe.metrics
  // A per-route limit's episode ends with the first request that finds it back under its max.
  if (ex.route.policy.perRoute && decision.kind === 'allow') pipe.reporter.quiet(decision)
  if (requestStep && !decision.block && ex.route.inspect?.from === 'response') {
    // The answer's step decides this request: it is counted then, once (countProvisional if it never comes).
    ex.provisional = decision
  } else {
    const first = ex.provisional
    ex.provisional = null
    // The final decision: the answer's, unless it allows what the request step already flagged (log, shadow).
    const final = first !== null && decision.kind === 'allow' && first.kind !== 'allow' ? first : decision
    decisionCounter(metrics, final.route, final.kind, final.shadow).inc()
  }
  if (decision.degraded) metrics.storeFallbacks.labels(decision.degraded).inc()
  if (decision.block) metrics.blocks.labels(decision.kind).inc()
  return decision
}

/** Count the request step's decision of an exchange whose answer was not inspected (not a 2xx, no body). */
export function countProvisional(pipe: Pipeline, ex: RoutedExchange): void {
  const d = ex.provisional
  if (d === null) return
  ex.provisional = null
  decisionCounter(pipe.metrics, d.route, d.kind, d.shadow).inc()
}

/** Log, audit, list and notify a decision other than allow. */
export function report(
  pipe: Pipeline,
  request: FastifyRequest,
  ex: RoutedExchange,
  decision: Decision,
  records: readonly string[],
  step: 'request' | 'response',
): void {
  pipe.reporter.decision(decision, {
    log: request.log,
    route: ex.route,
    identity: ex.source,
    clientIp: clientIpOf(ex),
    method: request.method,
    target: ex.target,
    records,
    step,
    now: pipe.clock(),
    retryAfterMs: ex.live.config.actions.throttleRetryAfterMs,
  })
}

/** The answer of a blocking decision (a challenge is issued for the account). */
export function blockAnswer(
  pipe: Pipeline,
  request: FastifyRequest,
  ex: RoutedExchange,
  decision: Decision,
  verdict: Verdict | null,
): Promise<Rendered> {
  return blockResponse(decision, {
    // An AJAX call gets the machine-readable answer its page's script can act on, whatever it accepts.
    accept: isXhr(request.headers) ? 'application/problem+json' : request.headers.accept,
    retryAfterMs: ex.live.config.actions.throttleRetryAfterMs,
    page: ex.live.config.actions.page,
    challenge: (limit) => {
      pipe.metrics.challenges.labels('issued').inc()
      return ex.live.challenges.issue(ex.account, limit, pipe.clock())
    },
    ...(verdict && !verdict.ok ? { rejected: verdict.reason } : {}),
  })
}

export async function block(
  pipe: Pipeline,
  request: FastifyRequest,
  reply: FastifyReply,
  ex: RoutedExchange,
  decision: Decision,
  verdict: Verdict | null,
): Promise<void> {
  sendRendered(reply, await blockAnswer(pipe, request, ex, decision, verdict))
}

// Metric children resolved once per (route, decision, mode): no label lookup, no key string per request.
type Child = ReturnType<Metrics['decisions']['labels']>
const children = new WeakMap<
  Metrics,
  Map<string, [enforce: Partial<Record<string, Child>>, shadow: Partial<Record<string, Child>>]>
>()

function decisionCounter(metrics: Metrics, route: string, kind: string, shadow: boolean): Child {
  let byRoute = children.get(metrics)
  if (!byRoute) children.set(metrics, (byRoute = new Map()))
  let byMode = byRoute.get(route)
  if (!byMode) byRoute.set(route, (byMode = [{}, {}]))
  const byKind = byMode[shadow ? 1 : 0]
  return (byKind[kind] ??= metrics.decisions.labels(route, kind, shadow ? 'true' : 'false'))
}

/** A call from a page's script, not a navigation: jQuery's and most legacy toolkits' header, or fetch metadata. */
function isXhr(headers: FastifyRequest['headers']): boolean {
  const requestedWith = headers['x-requested-with']
  if (typeof requestedWith === 'string' && requestedWith.toLowerCase() === 'xmlhttprequest') return true
  return (
    headers['sec-fetch-mode'] !== undefined &&
    headers['sec-fetch-mode'] !== 'navigate' &&
    headers['sec-fetch-dest'] === 'empty'
  )
}
