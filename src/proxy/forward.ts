// Forwarding to the upstream: one undici Pool, called from the proxy's route.
//
// @fastify/reply-from (under @fastify/http-proxy) costs ~30 µs of CPU a request on top of the
// same undici pool (measured: 81 vs 49 µs a request for a Fastify app that calls the pool
// itself): it builds a URL object, copies and re-copies headers, wraps the response in a retry
// loop and maps errors through error classes. sluice needs none of that: the path is already
// canonical (admit rewrote it), the upstream is one origin, and a request is sent exactly once.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Pool, util, type Dispatcher } from 'undici'
import type { CompiledConfig } from '../config/compile.js'
import { trustedPeer } from '../identity/ip.js'
import { UpstreamBody } from './upstream-body.js'

export interface UpstreamError {
  /** No answer (or no connection) in time: 504, as nginx answers; anything else is a 502. */
  timedOut: boolean
  code: string | undefined
  message: string
  cause: string | undefined
}

export interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: UpstreamBody
}

export interface ForwardHooks {
  /** The live config (a reload may change trustedProxies). */
  config(): CompiledConfig
  /** The upstream's status line arrived, `ms` after the request was sent. */
  answered(request: FastifyRequest, status: number, ms: number): void
  /** The answer of forward() (the client is still there): for the caller to send. */
  send(request: FastifyRequest, reply: FastifyReply, answer: Answer): void
  /** The upstream could not be reached or did not answer in time; the reply is not yet sent. */
  failed(reply: FastifyReply, error: UpstreamError): void
}

export class Forwarder {
  readonly #pool: Pool
  readonly #host: string
  readonly #hooks: ForwardHooks

  constructor(upstream: CompiledConfig['upstream'], hooks: ForwardHooks) {
    const origin = new URL(upstream.url)
    this.#host = origin.host
    this.#hooks = hooks
    this.#pool = new Pool(origin.origin, {
      connections: 128,
      connect: { timeout: upstream.connectTimeoutMs },
      headersTimeout: upstream.timeoutMs,
      bodyTimeout: upstream.timeoutMs,
    })
  }

  /**
   * Send the request on (with the body stream `request.body` holds) and hand the answer to
   * hooks.send as soon as its headers are in, its body an UpstreamBody that undici's chunks
   * go into (no Readable unless it is sent on unread).
   */
  forward(request: FastifyRequest, reply: FastifyReply): void {
    const raw = request.raw
    const hooks = this.#hooks
    const sent = performance.now()
    const body = new UpstreamBody()
    let started = false
    this.#pool.dispatch(this.#requestOf(request), {
      onConnect(abort) {
        body.abortUpstream = () => abort()
        // The client left while the upstream thought: drop the answer, free the connection.
        if (reply.raw.destroyed) abort()
      },
      onHeaders(status, rawHeaders, resume) {
        // An informational answer (102, 103 Early Hints): not passed on, as in pass().
        if (status < 200) return true
        hooks.answered(request, status, performance.now() - sent)
        if (reply.raw.destroyed) {
          body.destroy()
          return false
        }
        body.resumeUpstream = resume
        // An HTTP/1 connection cannot be reused until the request body was read: the upstream
        // answered early, so close ours after this answer.
        if (!raw.complete) void reply.header('connection', 'close')
        started = true
        try {
          hooks.send(request, reply, {
            status,
            headers: copyWithout(util.parseHeaders(rawHeaders) as IncomingHttpHeaders, HOP_BY_HOP),
            body,
          })
        } catch (error) {
          // A status or header Node will not send (undici's parser lets through what HTTP
          // allows, Node's writer is stricter): the answer cannot be passed on as it is.
          body.destroy()
          if (!reply.sent) hooks.failed(reply, upstreamError(error as Error))
          return false
        }
        return true
      },
      onData(chunk) {
        return body.push(chunk)
      },
      onComplete() {
        body.end()
      },
      onError(err) {
        if (started) body.fail(err)
        else if (!reply.sent) hooks.failed(reply, upstreamError(err))
      },
    })
  }

  /** The request as the upstream gets it (the path is canonical already: admit rewrote it). */
  #requestOf(request: FastifyRequest): Dispatcher.DispatchOptions {
    const raw = request.raw
    const method = request.method
    const body = request.body as Readable | undefined
    return {
      method: method as Dispatcher.HttpMethod,
      path: raw.url ?? '/',
      headers: forwardedFor(raw, requestHeaders(raw.headers, this.#host), this.#hooks.config()),
      // GET and HEAD bodies are not forwarded (Fastify does not read them either): what a
      // server does with one differs, so the upstream never sees one.
      body: body === undefined || method === 'GET' || method === 'HEAD' ? null : body,
    }
  }

  /**
   * Forward and write the answer straight into the client's response, chunk by chunk as undici
   * parses it: no stream between the two (undici's body Readable, a pipe, Fastify's stream
   * send with its end-of-stream watchers cost ~8 µs a request, measured). For exchanges whose
   * answer sluice does not read.
   */
  pass(request: FastifyRequest, reply: FastifyReply): void {
    const raw = request.raw
    const res = reply.raw
    const hooks = this.#hooks
    const sent = performance.now()
    let abort: ((err?: Error) => void) | null = null
    let started = false
    this.#pool.dispatch(this.#requestOf(request), {
      onConnect(abortRequest) {
        abort = abortRequest
        // The client left while the upstream thought: drop the answer, free the connection.
        if (res.destroyed) abortRequest()
      },
      onHeaders(status, rawHeaders, resume) {
        // An informational answer (102, 103 Early Hints) before the real one: not passed on
        // (the final answer's headers are what the client acts on), as undici's request() does.
        if (status < 200) return true
        hooks.answered(request, status, performance.now() - sent)
        if (res.destroyed) {
          abort?.()
          return false
        }
        const headers = answerHeaders(rawHeaders, reply)
        // An HTTP/1 connection cannot be reused until the request body was read: the
        // upstream answered early, so close ours after this answer.
        if (!raw.complete) headers.push('connection', 'close')
        try {
          res.writeHead(status, headers)
        } catch (err) {
          // A status or header Node will not write (undici's parser lets through what HTTP
          // allows, Node's writer is stricter): nothing went out; answer 502 instead.
          for (const name of res.getHeaderNames()) res.removeHeader(name)
          abort?.()
          hooks.failed(reply, upstreamError(err as Error))
          return false
        }
        started = true
        reply.hijack()
        res.on('drain', () => resume())
        res.once('close', () => {
          if (!res.writableFinished) abort?.()
        })
        return true
      },
      onData(chunk) {
        return res.write(chunk)
      },
      onComplete() {
        res.end()
      },
      onError(err) {
        if (!started) {
          if (!reply.sent) hooks.failed(reply, upstreamError(err))
          return
        }
        // The answer broke off mid-body: the client must not take a part for the whole.
        reply.log.warn({ event: 'sluice.upstream_error', err: err.message }, 'upstream answer broke off')
        res.destroy()
      },
    })
  }

  close(): Promise<void> {
    return this.#pool.destroy()
  }
}

function upstreamError(err: Error & { code?: string }): UpstreamError {
  const code = err.code
  return {
    timedOut:
      code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT',
    code,
    message: err.message,
    cause: (err.cause as Error | undefined)?.message,
  }
}

// RFC 9110 §7.6.1: connection-specific headers describe one hop, not the next.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
])
// Besides: `host` is the upstream's (the client's goes in X-Forwarded-Host); `expect` was
// the server's to answer (Node answers 100-continue itself).
const NOT_FORWARDED = new Set([...HOP_BY_HOP, 'host', 'expect'])

/** The client's headers as the upstream gets them. */
function requestHeaders(headers: IncomingHttpHeaders, host: string): IncomingHttpHeaders {
  const out = copyWithout(headers, NOT_FORWARDED)
  out.host = host
  return out
}

/**
 * The upstream's raw header lines as Node's writeHead takes them (a flat name, value list),
 * without hop-by-hop headers, with headers sluice set on the reply before forwarding (a
 * challenge pass, its cookie) added — the upstream's own win, cookies are both sent.
 */
function answerHeaders(rawHeaders: Buffer[], reply: FastifyReply): string[] {
  const out: string[] = []
  let named: string[] | null = null
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as Buffer).toString('latin1')
    const lower = name.toLowerCase()
    if (lower === 'connection') named = namedBy((rawHeaders[i + 1] as Buffer).toString('latin1'))
    if (HOP_BY_HOP.has(lower)) continue
    out.push(name, (rawHeaders[i + 1] as Buffer).toString('latin1'))
  }
  if (named !== null) {
    const drop = named
    for (let i = out.length - 2; i >= 0; i -= 2) if (drop.includes((out[i] as string).toLowerCase())) out.splice(i, 2)
  }
  const own = reply.getHeaders()
  for (const name in own) {
    const value = own[name]
    if (value === undefined) continue
    if (name !== 'set-cookie' && out.some((h, i) => i % 2 === 0 && h.toLowerCase() === name)) continue
    for (const v of Array.isArray(value) ? value : [value]) out.push(name, String(v))
  }
  return out
}

/**
 * A copy without `drop` and without the headers the message's Connection names. Copying is
 * cheaper than `delete`: deleting a property turns the headers object into a slow dictionary
 * for everything that reads it afterwards (measured: 0.75 µs vs 0.14 µs a response).
 */
function copyWithout(headers: IncomingHttpHeaders, drop: ReadonlySet<string>): IncomingHttpHeaders {
  const connection = headers.connection
  const named = typeof connection === 'string' ? namedBy(connection) : null
  const out: IncomingHttpHeaders = {}
  for (const name in headers) {
    if (drop.has(name) || (named !== null && named.includes(name))) continue
    out[name] = headers[name]
  }
  return out
}

/** The headers a Connection header names: they describe this hop only (RFC 9110 §7.6.1). */
function namedBy(connection: string): string[] | null {
  // `keep-alive` and `close`, by far the usual values, name nothing beyond the hop-by-hop set.
  if (connection === 'keep-alive' || connection === 'close') return null
  return connection
    .toLowerCase()
    .split(',')
    .map((h) => h.trim())
}

/**
 * Tell the upstream who the client is, as nginx's $proxy_add_x_forwarded_for does — but a chain
 * sent by an untrusted client is replaced, not extended: the legacy app must not log (or trust)
 * an address the client made up.
 */
function forwardedFor(req: IncomingMessage, headers: IncomingHttpHeaders, config: CompiledConfig): IncomingHttpHeaders {
  const peer = req.socket.remoteAddress ?? ''
  const trusted = trustedPeer(req.socket, config.trust)
  const prior = trusted ? headers['x-forwarded-for'] : undefined
  headers['x-forwarded-for'] = prior ? `${String(prior)}, ${peer}` : peer
  if (!trusted || !headers['x-forwarded-proto']) headers['x-forwarded-proto'] = 'http'
  if ((!trusted || !headers['x-forwarded-host']) && req.headers.host) headers['x-forwarded-host'] = req.headers.host
  return headers
}
