// preHandler: the request body, read once (within the inspection budget) and re-armed for
// forwarding — a login's user names, and the records of a `records: { body }` route.
import { randomUUID } from 'node:crypto'
import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { busy, sendProblem, uninspectable, type Problem } from '../actions/respond.js'
import { decodedRequestBody, mediaType, readCapped, selectBody, UninspectableError } from '../records/body.js'
import { splitIds } from '../records/extract.js'
import type { Selector } from '../records/selector.js'
import { block, observe, report } from './decide.js'
import type { Exchange, Pipeline } from './exchange.js'

/** Login bodies are read up to this many bytes (a login form is small). */
const LOGIN_BODY_BYTES = 64 * 1024

/** Does this exchange need its request body read before forwarding? */
export function needsBody(ex: Exchange): boolean {
  return ex.session?.kind === 'login' || (ex.kind === 'routed' && ex.pending?.from === 'body')
}

export async function readRequestBody(
  pipe: Pipeline,
  request: FastifyRequest,
  reply: FastifyReply,
  ex: Exchange,
): Promise<void> {
  const pending = ex.kind === 'routed' && ex.pending?.from === 'body' ? ex.pending : null
  const body = await requestBody(request, pending?.inspect.maxBytes ?? LOGIN_BODY_BYTES, holder(pipe, ex, reply))
  if (body.busy) {
    pipe.metrics.inspectionBusy.inc()
    request.log.warn(
      { event: 'sluice.busy', heldBytes: pipe.budget.used },
      'inspection memory budget in use: request body not read, refused',
    )
    return void sendProblem(reply, busy())
  }
  const sessions = ex.live.sessions
  if (ex.session?.kind === 'login' && sessions && !body.problem) {
    const names = idsOf(body, request.headers['content-type'], sessions.field, false)
    if (Array.isArray(names)) for (const name of names) sessions.addUsername(name, ex.session.usernames)
  }
  if (ex.kind !== 'routed' || !pending) return

  const { route } = ex
  const inspect = pending.inspect
  let records: string[] = []
  let problem = body.problem
  // A query key in a multipart body past the cap: an upload beside the form's fields, which
  // are not refused for it (the query's ids still count).
  if (problem && inspect.unreadableIsEmpty && problem.status === 413 && isMultipart(request)) problem = undefined
  if (!problem) {
    let ids = idsOf(body, request.headers['content-type'], inspect.select, inspect.unreadableIsEmpty === true)
    if (Array.isArray(ids) && inspect.split !== undefined) ids = splitIds(ids, inspect.split)
    if (!Array.isArray(ids)) problem = ids
    else if (ids.length > inspect.maxIds)
      problem = uninspectable(
        413,
        `The request names more than ${inspect.maxIds} records, the most this route counts in one request.`,
      )
    else records = ids
  }
  if (problem) {
    const shadow = ex.live.config.shadow || route.policy.shadow
    if (inspect.uninspectable === 'block') {
      pipe.metrics.uninspectable.labels(route.name, 'request').inc()
      request.log.warn(
        { event: 'sluice.uninspectable', route: route.name, account: ex.account, reason: problem.detail, shadow },
        shadow
          ? 'shadow: request body cannot be inspected: would be refused'
          : 'request body cannot be inspected: refused',
      )
      // Shadow serves everything as it came: the body (re-armed by requestBody) goes on, uncounted.
      if (!shadow) return void sendProblem(reply, problem)
    } else records = synthetic(inspect.uninspectable)
  }
  ex.pending = null
  if (pending.named) records = records.length === 0 ? pending.named : [...new Set([...pending.named, ...records])]
  const observed = observe(pipe, ex, records, pipe.clock(), true)
  const decision = observed instanceof Promise ? await observed : observed
  if (decision.kind !== 'allow') report(pipe, request, ex, decision, records, 'request')
  if (decision.block) await block(pipe, request, reply, ex, decision, null)
}

interface RequestBody {
  bytes?: Buffer
  /** The bytes with their Content-Encoding undone, when they have one that could be undone. */
  decoded?: Buffer
  /** Plugin mode: what the app's own parser made of the body. */
  parsed?: unknown
  problem?: Problem
  busy?: true
}

/** The ids a selector finds in a body (every reading of it), or why it cannot be read. */
function idsOf(
  body: RequestBody,
  contentType: string | undefined,
  selector: Selector,
  unreadableIsEmpty: boolean,
): string[] | Problem {
  if (body.parsed !== undefined) return selector(body.parsed)
  if (!body.bytes) return []
  try {
    return selectBody(body.bytes, contentType, selector, body.decoded ?? null)
  } catch (err) {
    if (!(err instanceof UninspectableError)) throw err
    // A query record's key in a body no reader takes as a form or JSON: no ids there. But one in
    // a charset sluice cannot decode may name them to a server that can: refused.
    if (unreadableIsEmpty && !err.hides) return []
    return uninspectable(
      err.message.startsWith('content-type') || err.hides ? 415 : 400,
      `The request body cannot be read for record ids: ${err.message}.`,
    )
  }
}

/** Read (and re-arm for forwarding) the request body: its bytes, or (plugin mode) what the app's parser made of it. */
async function requestBody(request: FastifyRequest, cap: number, take: (n: number) => boolean): Promise<RequestBody> {
  const body: unknown = request.body
  if (body === undefined || body === null) return {}
  if (!(body instanceof Readable)) {
    // Guarding routes of the same app: Fastify's own parsers already ran, and the app reads what they made.
    if (Buffer.isBuffer(body)) return { bytes: body }
    if (typeof body === 'string') return { bytes: Buffer.from(body) }
    return { parsed: body }
  }
  const declared = Number(request.headers['content-length'])
  let read
  try {
    read = await readCapped(body, cap, Number.isSafeInteger(declared) && declared >= 0 ? declared : undefined, take)
  } catch {
    return { problem: uninspectable(400, 'The request body could not be read.') }
  }
  if (!read.complete && read.busy) return { busy: true }
  if (!read.complete) {
    request.body = read.rest()
    return {
      problem: uninspectable(413, `The request body is larger than ${cap} bytes, the most this route inspects.`),
    }
  }
  // The upstream receives exactly the bytes the client sent (headers untouched).
  request.body = Readable.from([read.body])
  try {
    const decoded = await decodedRequestBody(read.body, request.headers['content-encoding'], cap)
    return decoded === null ? { bytes: read.body } : { bytes: read.body, decoded }
  } catch (err) {
    if (!(err instanceof UninspectableError)) throw err
    return {
      problem: uninspectable(
        err.message.startsWith('body larger') ? 413 : 415,
        `The request body cannot be read for record ids: ${err.message}.`,
      ),
    }
  }
}

/**
 * Account bytes an exchange holds; the first take arranges for all of them to be given back
 * when its response closes.
 */
export function holder(pipe: Pipeline, ex: Exchange, reply: FastifyReply): (n: number) => boolean {
  return (n) => {
    if (!pipe.budget.take(n)) return false
    if (ex.held === 0) {
      reply.raw.once('close', () => {
        pipe.budget.give(ex.held)
        ex.held = 0
      })
    }
    ex.held += n
    return true
  }
}

/** `n` records nobody else can name: an uninspectable body counted as its worst case. */
function isMultipart(request: FastifyRequest): boolean {
  return mediaType(request.headers['content-type']).startsWith('multipart/')
}

export function synthetic(n: number): string[] {
  const id = randomUUID()
  return Array.from({ length: n }, (_, i) => `\0uninspectable:${id}:${i}`)
}
