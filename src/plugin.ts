// The Fastify plugin: it registers the request pipeline's hooks and manages the lifecycle. The
// pipeline itself lives in src/exchange/ (framework-free steps over an explicit exchange), the
// running product in src/runtime.ts.
//
// One exchange on a sensitive route goes through up to three hooks:
//   onRequest   classify (canonical path, route, clamp, records of the path and query),
//               identify, check challenge passes and solutions, decide request-side records;
//   preHandler  routes whose records are in the request body (and logins): read it, decide;
//   onSend      routes whose records are in the response: read it before a byte is sent,
//               count its ids, and withhold it if it would cross a limit; logins bind.
// Requests to non-sensitive routes only pay for canonicalization and a route lookup. The
// standalone proxy runs the same steps in its one route instead (src/proxy/route.ts).
import { XHR_SCRIPT, XHR_SCRIPT_PATH } from './actions/xhr-script.js'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Challenges } from './actions/challenge.js'
import type { Metrics } from './admin/metrics.js'
import type { CompiledConfig } from './config/compile.js'
import type { Engine } from './engine/engine.js'
import type { Store } from './engine/store.js'
import { admit } from './exchange/admit.js'
import { answered, needsAnswer } from './exchange/answer.js'
import { needsBody, readRequestBody } from './exchange/body.js'
import { CONTINUE, REPLIED, type Exchange, type Next } from './exchange/exchange.js'
import type { IncidentSink, Reporter } from './report/reporter.js'
import { Runtime, type ReloadResult } from './runtime.js'

export type { ReloadResult } from './runtime.js'

export interface SluiceOptions {
  config: CompiledConfig
  /** Defaults to the store config.store names (memory or Redis). */
  store?: Store
  /**
   * Proxy mode: rewrite the request URL to its canonical form (so the upstream receives the
   * path that was matched) and strip method-override, untrusted identity and sluice's own
   * headers and cookies. Leave false when sluice guards routes of the same Fastify app.
   */
  forwarding?: boolean
  clock?: () => number
  /** Defaults to a fresh registry; `app.sluice.metrics` exposes it. */
  metrics?: Metrics
  /** Where recent incidents go (the admin API's list). */
  incidents?: IncidentSink
  /** An assembled runtime (store, metrics, audit, reporter): the options above are then ignored but `forwarding`. */
  runtime?: Runtime
}

declare module 'fastify' {
  interface FastifyInstance {
    sluice: {
      readonly engine: Engine
      readonly store: Store
      readonly metrics: Metrics
      readonly challenges: Challenges
      readonly config: CompiledConfig
      readonly reporter: Reporter
      readonly runtime: Runtime
      /** Swap in a new config (same store and audit file): unchanged routes keep their counts. */
      reload(config: CompiledConfig): Promise<ReloadResult>
    }
  }
  interface FastifyRequest {
    sluiceExchange: Exchange | null
  }
}

async function sluicePlugin(fastify: FastifyInstance, options: SluiceOptions): Promise<void> {
  const runtime =
    options.runtime ??
    (await Runtime.create(options.config, {
      log: fastify.log,
      forwarding: options.forwarding ?? false,
      ...(options.store ? { store: options.store } : {}),
      ...(options.metrics ? { metrics: options.metrics } : {}),
      ...(options.incidents ? { incidents: options.incidents } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
    }))
  exposeRuntime(fastify, runtime)

  fastify.addHook('onRequest', (request, reply, done) => {
    let next: Next | Promise<Next>
    try {
      next = admit(runtime, request, reply)
    } catch (err) {
      return done(err as Error)
    }
    if (next === CONTINUE) return done()
    if (next === REPLIED) return // a hook that answered does not call done (Fastify's hooks docs)
    next.then((n) => n === CONTINUE && done(), done)
  })

  // Registered whatever the config says (a reload may add body or response routes); a request
  // without an exchange leaves at the first line.
  fastify.addHook('preHandler', (request, reply, done) => {
    const ex = request.sluiceExchange
    if (!ex || !needsBody(ex)) return done()
    readRequestBody(runtime, request, reply, ex).then(() => done(), done)
  })

  fastify.addHook('onSend', (request, reply, payload, done) => {
    const ex = request.sluiceExchange
    if (!ex || !needsAnswer(ex)) return done(null, payload)
    answered(runtime, request, reply, payload, ex).then(
      (p) => done(null, p),
      (err: Error) => done(err),
    )
  })
}

/**
 * What both the plugin and the standalone proxy (which runs the steps in its own route instead
 * of hooks, src/proxy/route.ts) give an app: `app.sluice`, the exchange slot of a request, the
 * runtime's close, and the script legacy AJAX pages include to answer challenges.
 */
export function exposeRuntime(fastify: FastifyInstance, runtime: Runtime): void {
  fastify.decorate('sluice', {
    get engine() {
      return runtime.live.engine
    },
    get challenges() {
      return runtime.live.challenges
    },
    get config() {
      return runtime.live.config
    },
    store: runtime.store,
    metrics: runtime.metrics,
    reporter: runtime.reporter,
    runtime,
    reload: (next: CompiledConfig) => runtime.reload(next),
  })
  fastify.decorateRequest('sluiceExchange', null)
  // After the server stopped accepting and in-flight requests finished.
  fastify.addHook('onClose', () => runtime.close())
  fastify.get(XHR_SCRIPT_PATH, (_request, reply) => {
    void reply
      .header('content-type', 'application/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=3600')
      .send(XHR_SCRIPT)
  })
}

/** Register inside any Fastify app: `app.register(sluice, { config })`. */
export const sluice = fp(sluicePlugin, { name: 'sluice', fastify: '5.x' })
