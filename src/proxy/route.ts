// The standalone proxy's one route. The pipeline's steps (src/exchange/) run here, inline, in
// the order the plugin's hooks run them — admit, the request body, forward, the answer —
// because a Fastify hook costs its runner on every request even when it has nothing to do:
// three of them were ~5 µs of the ~70 a request costs.
import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { admit } from '../exchange/admit.js'
import { answered, needsAnswer } from '../exchange/answer.js'
import { needsBody, readRequestBody } from '../exchange/body.js'
import { CONTINUE, REPLIED, type Exchange, type Next } from '../exchange/exchange.js'
import { PushedBody } from '../records/body.js'
import type { Runtime } from '../runtime.js'
import type { Answer, Forwarder } from './forward.js'

/** The methods forwarded (as @fastify/http-proxy did); any other gets Fastify's 404. */
const FORWARDED_METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS']

export function registerProxyRoute(app: FastifyInstance, runtime: Runtime, forwarder: Forwarder): void {
  // Bodies pass through as streams, whatever their type: the upstream parses them, not sluice
  // (readRequestBody reads the ones a route counts records in, and puts them back).
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload))

  // An answer sluice reads goes through the answer step (its body pushed by undici, see
  // upstream-body.ts); any other is written straight into the response.
  const forward = (request: FastifyRequest, reply: FastifyReply): void => {
    const ex = request.sluiceExchange
    if (ex && needsAnswer(ex)) forwarder.forward(request, reply)
    else forwarder.pass(request, reply)
  }
  const afterAdmit = (request: FastifyRequest, reply: FastifyReply): void => {
    const ex = request.sluiceExchange
    if (!ex || !needsBody(ex)) return forward(request, reply)
    readRequestBody(runtime, request, reply, ex).then(
      () => reply.sent || forward(request, reply),
      (err: Error) => reply.send(err),
    )
  }

  app.route({
    method: FORWARDED_METHODS,
    url: '/*',
    handler(request, reply) {
      let next: Next | Promise<Next>
      try {
        next = admit(runtime, request, reply)
      } catch (err) {
        return reply.send(err)
      }
      if (next === CONTINUE) afterAdmit(request, reply)
      else if (next !== REPLIED)
        next.then(
          (n) => n === CONTINUE && afterAdmit(request, reply),
          (err: Error) => reply.send(err),
        )
      return reply
    },
  })
}

/** Pass the upstream's answer on through the answer step (forward() answers, see above). */
export function sendAnswer(runtime: Runtime, request: FastifyRequest, reply: FastifyReply, answer: Answer): void {
  void reply.code(answer.status).headers(answer.headers)
  // (forward() is called only for exchanges that need their answer.)
  const ex = request.sluiceExchange as Exchange
  answered(runtime, request, reply, answer.body, ex).then(
    (payload) => {
      // Not read (not a 2xx, nothing to inspect), or not whole: sent on as a stream.
      if (payload instanceof PushedBody) payload = payload.stream()
      // A body read whole goes out as it came: Fastify would label bytes without a
      // content-type application/octet-stream (a legacy page would turn into a download).
      else if (Buffer.isBuffer(payload) && !reply.hasHeader('content-type')) payload = Readable.from([payload])
      reply.send(payload)
    },
    (err: Error) => {
      answer.body.destroy()
      reply.send(err)
    },
  )
}
