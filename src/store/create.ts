// The store a config asks for.
import type { FastifyBaseLogger } from 'fastify'
import type { CompiledConfig } from '../config/compile.js'
import type { Metrics } from '../admin/metrics.js'
import { MemoryStore } from './memory.js'
import { RedisStore } from './redis.js'
import type { Store } from '../engine/store.js'

export function createStore(config: CompiledConfig['store'], log: FastifyBaseLogger, metrics: Metrics): Store {
  if (config.type === 'memory') {
    let warned = 0
    return new MemoryStore({
      maxAccounts: config.maxAccounts,
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
  }
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
