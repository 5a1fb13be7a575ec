// The admin listener: a separate port, never the public one. /healthz and /readyz answer
// load-balancer probes without a token (they reveal only up/degraded); everything else needs
// `Authorization: Bearer <admin.token>`, compared in constant time.
import { createHash, timingSafeEqual } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Metrics } from './metrics.js'
import type { Store } from '../store/store.js'
import { RedisStore } from '../store/redis.js'

export interface AdminOptions {
  token: string
  metrics: Metrics
  store: Store
  logger?: FastifyInstance['log'] | boolean
}

export interface Readiness {
  status: 'ready' | 'degraded'
  store: { type: string; state: string; policy?: string }
}

export function readiness(store: Store): { code: number; body: Readiness } {
  if (!(store instanceof RedisStore)) return { code: 200, body: { status: 'ready', store: { type: store.kind, state: 'ok' } } }
  const degraded = store.state !== 'ok'
  const body: Readiness = { status: degraded ? 'degraded' : 'ready', store: { type: 'redis', state: store.state, policy: store.policy } }
  // Only fail-closed stops serving sensitive routes; with fail-open or local the instance still
  // serves, and taking every instance out of rotation at once would be the outage itself.
  return { code: degraded && store.policy === 'fail-closed' ? 503 : 200, body }
}

export async function buildAdmin(options: AdminOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  const expected = digest(options.token)

  const authorize = async (request: FastifyRequest, reply: FastifyReply) => {
    const header = request.headers.authorization ?? ''
    const given = header.toLowerCase().startsWith('bearer ') ? header.slice(7).trim() : ''
    if (!timingSafeEqual(digest(given), expected)) {
      return reply.code(401).header('www-authenticate', 'Bearer realm="sluice-admin"').type('application/problem+json').send({ type: 'https://sluice.dev/problems/unauthorized', title: 'Unauthorized', status: 401 })
    }
  }

  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_req, reply) => {
    const r = readiness(options.store)
    return reply.code(r.code).send(r.body)
  })
  app.get('/metrics', { onRequest: authorize }, async (_req, reply) => {
    return reply.type(options.metrics.registry.contentType).send(await options.metrics.registry.metrics())
  })
  return app
}

// Hash both sides first: timingSafeEqual needs equal lengths, and the length of the token
// must not leak either.
function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest()
}
