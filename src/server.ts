// The standalone proxy: Fastify, the sluice runtime, and one route that runs the pipeline and
// forwards to the upstream (src/proxy/).
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { LoggerOptions } from 'pino'
import { sendProblem } from './actions/respond.js'
import type { Metrics } from './admin/metrics.js'
import type { CompiledConfig } from './config/compile.js'
import { exposeRuntime } from './plugin.js'
import { Forwarder, type UpstreamError } from './proxy/forward.js'
import { disablePretenuring } from './proxy/pretenuring.js'
import { registerProxyRoute, sendAnswer } from './proxy/route.js'
import { Runtime } from './runtime.js'
import type { Store } from './engine/store.js'
import type { IncidentSink } from './report/reporter.js'

export interface ProxyOptions {
  store?: Store
  /** Where recent incidents go (the admin API's list). */
  incidents?: IncidentSink
  /** A pino logger config, or false for silence (tests). Defaults to JSON lines on stdout. */
  logger?: LoggerOptions | boolean
  clock?: () => number
}

export async function buildProxy(config: CompiledConfig, options: ProxyOptions = {}): Promise<FastifyInstance> {
  disablePretenuring()
  const logger = options.logger === undefined ? { level: config.logLevel } : options.logger
  const app = Fastify({
    logger,
    // One line per decision is what operators read; a line per request would cost more
    // than everything else sluice does.
    logController: new LogController({ disableRequestLogging: true }),
    // …and a child logger a request (pino binds a request id into a new object) is as costly:
    // sluice's lines carry their own context (event, route, account, reference).
    childLoggerFactory: (logger) => logger,
    // Identity and client address are sluice's business (trustedProxies), not Fastify's.
    trustProxy: false,
    // The wildcard proxy route captures whole paths; find-my-way's default (100) would turn
    // long legitimate URLs into 414s.
    routerOptions: { maxParamLength: 8192 },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  })

  const runtime = await Runtime.create(config, {
    log: app.log,
    forwarding: true,
    ...(options.store ? { store: options.store } : {}),
    ...(options.incidents ? { incidents: options.incidents } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  })
  exposeRuntime(app, runtime)

  const metrics = runtime.metrics
  // Request in to response end (blocked, withheld and failed answers included).
  app.addHook('onResponse', (request, reply, done) => {
    metrics.proxyDurationFor(routeOf(request), reply.statusCode).observe(reply.elapsedTime / 1000)
    done()
  })

  const forwarder = new Forwarder(config.upstream, {
    config: () => runtime.live.config,
    answered: (request, status, ms) => metrics.upstreamLatencyFor(routeOf(request), status).observe(ms / 1000),
    send: (request, reply, answer) => sendAnswer(runtime, request, reply, answer),
    failed: (reply, error) => upstreamFailed(reply, error, metrics),
  })
  app.addHook('onClose', () => forwarder.close())
  registerProxyRoute(app, runtime, forwarder)
  return app
}

/** The route label of a request's metrics: its sensitive route's name, `-` for none (never a path). */
function routeOf(request: FastifyRequest): string {
  const ex = request.sluiceExchange
  return ex?.kind === 'routed' ? ex.route.name : '-'
}

function upstreamFailed(reply: FastifyReply, error: UpstreamError, metrics: Metrics): void {
  const route = routeOf(reply.request)
  const status = error.timedOut ? 504 : 502
  metrics.upstreamErrors.labels(route, String(status)).inc()
  // (The route's name and the method say which requests fail; the path may name a record.)
  reply.log.error(
    {
      event: 'sluice.upstream_error',
      route,
      method: reply.request.method,
      code: error.code,
      err: error.message,
      cause: error.cause,
    },
    `upstream failed (${status}): ${error.message}`,
  )
  sendProblem(
    reply,
    error.timedOut
      ? {
          kind: 'upstream-timeout',
          status: 504,
          title: 'Gateway Timeout',
          detail: 'The application did not answer in time.',
        }
      : {
          kind: 'upstream-unavailable',
          status: 502,
          title: 'Bad Gateway',
          detail: 'The application cannot be reached.',
        },
  )
}
