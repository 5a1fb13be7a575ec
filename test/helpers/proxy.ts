// Start sluice (the standalone proxy) from inline YAML in front of a given upstream,
// capturing its JSON log lines.
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { compileConfigText } from '../../src/config/index.js'
import { buildProxy } from '../../src/server.js'
import type { Store } from '../../src/engine/store.js'

export interface RunningProxy {
  url: string
  app: FastifyInstance
  logs: Record<string, unknown>[]
  decisions(): Record<string, unknown>[]
  close(): Promise<void>
}

export async function startProxy(
  yaml: string,
  options: { upstream: string; env?: Record<string, string>; clock?: () => number; store?: Store },
): Promise<RunningProxy> {
  const config = compileConfigText(yaml.replaceAll('UPSTREAM', options.upstream), 'test.yaml', {
    env: options.env ?? {},
  })
  config.listen.port = 0
  const logs: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line.trim()) logs.push(JSON.parse(line))
      cb()
    },
  })
  const app = await buildProxy(config, {
    logger: { level: 'info', stream } as never,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.store ? { store: options.store } : {}),
  })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  return {
    url,
    app,
    logs,
    decisions: () => logs.filter((l) => l.event === 'sluice.decision'),
    close: () => app.close(),
  }
}
