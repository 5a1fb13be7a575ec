// onSend: the answer of a `records: { response }` route is read before a byte leaves, its ids
// counted, and it is withheld whole if it would cross a limit; a login's or logout's answer
// binds or is logged. The answer is held once, as the upstream sent it (compressed or not),
// while its chunks stream through decompression and the route's extractor as they arrive: when
// the last byte is in, its ids are (nearly) all counted already.
import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { busy, renderProblem, uninspectable, type Rendered } from '../actions/respond.js'
import type { AnswerExtractor, AnswerIds, AnswerReader } from '../records/answer/index.js'
import { BrokenBodyError } from '../errors.js'
import { contentDecoder, PushedBody, readCapped, UninspectableError, type ContentDecoder } from '../records/body.js'
import { holder, synthetic } from './body.js'
import { isSluiceCookie } from './credentials.js'
import { blockAnswer, countProvisional, observe, report } from './decide.js'
import type { Exchange, Pipeline, RoutedExchange } from './exchange.js'

/** Does this exchange's answer have to be looked at? */
export function needsAnswer(ex: Exchange): boolean {
  return ex.session !== null || (ex.kind === 'routed' && ex.pending?.from === 'response')
}

export async function answered(
  pipe: Pipeline,
  request: FastifyRequest,
  reply: FastifyReply,
  payload: unknown,
  ex: Exchange,
): Promise<unknown> {
  if (ex.session) await sessionAnswered(pipe, request, reply, ex)
  if (ex.kind !== 'routed' || ex.pending?.from !== 'response') return payload
  ex.pending = null
  if (reply.statusCode < 200 || reply.statusCode >= 300 || payload === null || payload === undefined) {
    countProvisional(pipe, ex)
    return payload
  }
  try {
    return await inspectAnswer(pipe, request, reply, payload, ex)
  } finally {
    // Withheld unread (busy, broken off, uninspectable): counted with the request step's decision.
    countProvisional(pipe, ex)
  }
}

async function inspectAnswer(
  pipe: Pipeline,
  request: FastifyRequest,
  reply: FastifyReply,
  payload: unknown,
  ex: RoutedExchange,
): Promise<unknown> {
  const { route } = ex
  const inspect = route.inspect
  if (!inspect) return payload
  let forward: unknown = payload
  let problem: string | null = null
  let found: AnswerIds | null = null
  // Decoded chunk by chunk into the extractor (an unsupported coding or charset: uninspectable at once).
  let reader: AnswerReader | null = null
  let decoder: ContentDecoder | null = null
  try {
    reader = (inspect.answer as AnswerExtractor).begin(headerText(reply.getHeader('content-type')))
    const r = reader
    decoder = contentDecoder(headerText(reply.getHeader('content-encoding')), inspect.maxBytes, (c) => r.write(c))
  } catch (err) {
    if (!(err instanceof UninspectableError)) throw err
    problem = err.message
  }
  try {
    if (problem) {
      // Nothing to read it for: it streams on as it comes, if the policy lets it out at all.
    } else if (payload instanceof Readable || payload instanceof PushedBody) {
      const length = Number(reply.getHeader('content-length'))
      const expected = Number.isSafeInteger(length) && length >= 0 ? length : undefined
      const feed = (decoder as ContentDecoder).write
      const read = await readCapped(payload, inspect.maxBytes, expected, holder(pipe, ex, reply), feed)
      if (read.complete) {
        forward = read.body
        found = await idsOf(decoder as ContentDecoder, reader as AnswerReader)
      } else if (read.busy) {
        decoder?.destroy()
        payload.destroy()
        pipe.metrics.inspectionBusy.inc()
        request.log.warn(
          { event: 'sluice.busy', route: route.name, heldBytes: pipe.budget.used },
          'inspection memory budget in use: answer withheld',
        )
        return replaceResponse(reply, renderProblem(request.headers.accept, busy()))
      } else {
        decoder?.destroy()
        problem = read.problem ?? `response larger than maxInspectBytes (${inspect.maxBytes} bytes)`
        forward = read.rest() // sent on only if the decision allows it (shadow, or counted within limits)
      }
    } else if (typeof payload === 'string' || Buffer.isBuffer(payload)) {
      const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload)
      if (body.length > inspect.maxBytes) problem = `response larger than maxInspectBytes (${inspect.maxBytes} bytes)`
      else {
        ;(decoder as ContentDecoder).write(body)
        found = await idsOf(decoder as ContentDecoder, reader as AnswerReader)
      }
    } else {
      problem = 'response body is not a byte stream'
    }
  } catch (err) {
    if (err instanceof UninspectableError) {
      problem = err.message
      found = null
    } else if (err instanceof BrokenBodyError) {
      // The upstream broke off mid-body: nothing complete can be sent anyway.
      decoder?.destroy()
      request.log.error(
        { event: 'sluice.upstream_error', route: route.name, err: err.message },
        'upstream response failed while being inspected',
      )
      const broken = {
        kind: 'upstream-unavailable',
        status: 502,
        title: 'Bad Gateway',
        detail: "The application's answer broke off.",
      } as const
      return replaceResponse(reply, renderProblem(request.headers.accept, broken))
    } else throw err
  }

  let records: string[] = []
  if (found && !problem) {
    records = found.ids
    if (found.skipped)
      request.log.warn(
        { event: 'sluice.ragged', route: route.name, account: ex.account, rows: found.skipped },
        `${found.skipped} row${found.skipped === 1 ? '' : 's'} of the answer had no id column: not counted`,
      )
    if (records.length > inspect.maxIds) {
      problem = `more than ${inspect.maxIds} record ids (records.maxIds)`
      records = []
    }
  }
  if (problem) {
    pipe.metrics.uninspectable.labels(route.name, 'response').inc()
    request.log.warn(
      {
        event: 'sluice.uninspectable',
        route: route.name,
        account: ex.account,
        reason: problem,
        policy: inspect.uninspectable,
      },
      `response cannot be inspected (${problem})`,
    )
    if (inspect.uninspectable === 'block' && !ex.live.config.shadow && !route.policy.shadow) {
      // Ids that cannot be counted cannot be let out (shadow mode only logs it).
      destroyBody(payload)
      if (forward !== payload) destroyBody(forward)
      pipe.metrics.withheld.labels(route.name).inc()
      return replaceResponse(
        reply,
        renderProblem(
          request.headers.accept,
          uninspectable(
            502,
            `The application's answer cannot be checked for record ids (${problem}), so it is withheld.`,
          ),
        ),
      )
    }
    records = inspect.uninspectable === 'block' ? [] : synthetic(inspect.uninspectable)
  }

  const observed = observe(pipe, ex, records, pipe.clock(), false)
  const decision = observed instanceof Promise ? await observed : observed
  if (decision.kind !== 'allow') report(pipe, request, ex, decision, records, 'response')
  if (!decision.block) {
    // A client that does not read the answer holds its memory: not for longer than sendTimeout.
    if (ex.held > 0) closeIfSlow(reply, ex.live.config.inspection.sendTimeoutMs)
    return forward
  }
  destroyBody(payload)
  pipe.metrics.withheld.labels(route.name).inc()
  return replaceResponse(reply, await blockAnswer(pipe, request, ex, decision, null))
}

async function sessionAnswered(
  pipe: Pipeline,
  request: FastifyRequest,
  reply: FastifyReply,
  ex: Exchange,
): Promise<void> {
  const sessions = ex.live.sessions
  const event = ex.session
  if (!sessions || !event) return
  if (event.kind === 'login') {
    const account = await sessions.loginAnswered(event, reply.statusCode, reply.getHeader('set-cookie'), pipe.clock())
    // (An ambiguous login is logged by the binder: its session counts against the client address.)
    if (account?.startsWith('user:'))
      request.log.info({ event: 'sluice.session', outcome: 'bound', account }, 'session bound to account')
  } else {
    // The binding stays: a logout the upstream ignores must not give the session a fresh budget.
    request.log.info(
      { event: 'sluice.session', outcome: 'logout', status: reply.statusCode },
      'logout seen (the session keeps counting against its account)',
    )
  }
}

/** An answer's body not sent on: a stream destroyed, an upstream answer aborted. */
function destroyBody(body: unknown): void {
  if (body instanceof Readable || body instanceof PushedBody) body.destroy()
}

/** A withheld response replaces the upstream's status and headers (nothing of it may leak). */
function replaceResponse(reply: FastifyReply, r: Rendered): string {
  for (const name of Object.keys(reply.getHeaders()))
    if (name !== 'set-cookie' || !isSluiceCookie(reply.getHeader(name))) reply.removeHeader(name)
  reply.code(r.status).headers(r.headers)
  return r.body
}

/** Close the connection of a client that has not read its whole answer within `ms`. */
function closeIfSlow(reply: FastifyReply, ms: number): void {
  const res = reply.raw
  const timer = setTimeout(() => {
    if (!res.writableFinished) res.destroy()
  }, ms)
  timer.unref()
  res.once('close', () => clearTimeout(timer))
}

/** The last decoded bytes through the extractor, and its ids. */
async function idsOf(decoder: ContentDecoder, reader: AnswerReader): Promise<AnswerIds> {
  await decoder.end()
  return reader.end()
}

function headerText(v: unknown): string | undefined {
  return typeof v === 'string' ? v : Array.isArray(v) ? String(v[0]) : typeof v === 'number' ? String(v) : undefined
}
