// sluice as an operator runs it: the standalone proxy in front of a loopback upstream, and its
// admin listener (with the console) started by the runtime from the same config.
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { adminConfig, TOKEN } from '../admin/helpers.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

export { TOKEN }

export interface RunningConsole {
  proxy: RunningProxy
  upstream: Upstream
  admin: FastifyInstance
  /** The admin listener's base URL (the console is at /console). */
  url: string
  close(): Promise<void>
}

export async function startConsole(options: { sessionTtl?: string; console?: string } = {}): Promise<RunningConsole> {
  const upstream = await startUpstream()
  const yaml = `${adminConfig({ disable: '1h' })}
admin:
  listen: { host: 127.0.0.1, port: 0 }
  token: ${TOKEN}
  tokens: [ { name: alice, token: alice-token-0123456789 } ]
  console: ${options.console ?? `{ sessionTtl: ${options.sessionTtl ?? '1h'} }`}
`
  const proxy = await startProxy(yaml, { upstream: upstream.url })
  const admin = (await proxy.app.sluice.runtime.startAdmin(async () => ({ ok: true }))) as FastifyInstance
  const { port } = admin.server.address() as AddressInfo
  return {
    proxy,
    upstream,
    admin,
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await admin.close()
      await proxy.close()
      await upstream.close()
    },
  }
}

/** Signs in with fetch: the session cookie and the CSRF token of its forms. */
export async function signIn(
  url: string,
  token = TOKEN,
  operator = 'carol',
): Promise<{ cookie: string; csrf: string }> {
  const res = await fetch(`${url}/console/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: url },
    body: new URLSearchParams({ token, operator }).toString(),
  })
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0] as string
  const page = await (await fetch(`${url}/console`, { headers: { cookie } })).text()
  const csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1] ?? ''
  return { cookie, csrf }
}
