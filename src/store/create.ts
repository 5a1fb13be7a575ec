// The store a config asks for.
import type { FastifyBaseLogger } from 'fastify'
import type { CompiledConfig } from '../config/compile.js'
import type { Metrics } from '../admin/metrics.js'
import { MemoryStore } from './memory.js'
import { StateKeeper } from './state.js'
import type { Store } from '../engine/store.js'

/** The store, its state restored (a memory store with `state`) before anything is counted. */
/** Said once by `sluice start` and `sluice check` when a memory store keeps no state file. */
export const MEMORY_ONLY =
  'counts and disables are kept in this process only: a restart (a deploy, a crash) forgets them, and disabled accounts are served again. Keep them with store.state (a state file), or use the Redis store'

export async function createStore(
  config: CompiledConfig['store'],
  log: FastifyBaseLogger,
  metrics: Metrics,
): Promise<Store> {
  if (config.type === 'memory') {
    let warned = 0
    const store = new MemoryStore({
      maxAccounts: config.maxAccounts,
      keepKeys: config.state !== undefined,
      onEvict: () => metrics.evictions.inc(),
      onOverflow: (account, key) => {
        metrics.overflow.inc()
        // Once a minute at most: a flood is one line, not millions.
        const now = Date.now()
        if (now - warned < 60_000) return
        warned = now
        log.warn(
          {
            event: 'sluice.store',
            store: 'memory',
            state: 'full',
            maxAccounts: config.maxAccounts,
            account,
            countedAs: key,
          },
          `memory store full (${config.maxAccounts} accounts with open windows): new identities are counted under their client network (raise store.maxAccounts if this is honest traffic)`,
        )
      },
    })
    if (config.state === undefined) {
      log.warn({ event: 'sluice.state', outcome: 'off' }, MEMORY_ONLY)
      return store
    }
    await StateKeeper.open(store, {
      ...config.state,
      log,
      onCorruptFile: () => metrics.stateCorrupt.inc(),
      onWrite: (stats) => {
        metrics.stateWrites.labels(stats ? 'ok' : 'error').inc()
        if (!stats) return
        metrics.stateLastWrite.set(Date.now() / 1000)
        metrics.stateBytes.set(stats.bytes)
        metrics.stateWriteSeconds.set(stats.ms / 1000)
      },
    })
    return store
  }
  // ioredis (and the Redis store) load only for a config that uses Redis: a memory store's
  // process never holds them.
  const { RedisStore } = await import('./redis.js')
  const up = metrics.storeUp.labels('redis', config.onError)
  const errors = metrics.storeErrors.labels('redis')
  up.set(0)
  return new RedisStore({
    ...(config.url !== undefined ? { url: config.url } : {}),
    ...(config.cluster !== undefined ? { cluster: config.cluster } : {}),
    ...(config.sentinels !== undefined ? { sentinels: config.sentinels, name: config.name ?? '' } : {}),
    ...(config.sentinelPassword !== undefined ? { sentinelPassword: config.sentinelPassword } : {}),
    ...(config.password !== undefined ? { password: config.password } : {}),
    keyPrefix: config.keyPrefix,
    ...(config.caFile !== undefined ? { caFile: config.caFile } : {}),
    commandTimeoutMs: config.commandTimeoutMs,
    onError: config.onError,
    maxAccounts: config.maxAccounts,
    onCommandError: () => errors.inc(),
    onStateChange: (state, reason) => {
      up.set(state === 'ok' ? 1 : 0)
      const entry = { event: 'sluice.store', store: 'redis', state, reason, policy: config.onError }
      if (state === 'degraded') log.error(entry, `redis unavailable: ${config.onError} until it returns`)
      else log.info(entry, `redis ${state}`)
    },
  })
}
