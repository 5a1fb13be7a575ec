// Calls to a running admin listener, and the policies of an inline config.
import { compileConfigText } from '../../src/config/index.js'
import { send } from '../helpers/http.js'
import type { RoutePolicy } from '../../src/engine/policy.js'

export const TOKEN = 'admin-token-0123456789abcdef'

export interface AdminResponse {
  status: number
  type: string
  text: string
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any
}

export async function call(
  base: string,
  method: string,
  path: string,
  token: string | null = TOKEN,
  headers: Record<string, string> = {},
): Promise<AdminResponse> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(token !== null ? { authorization: `Bearer ${token}` } : {}), ...headers },
  })
  const text = await res.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.status, type: res.headers.get('content-type') ?? '', text, json }
}

export function policiesOf(yaml: string): RoutePolicy[] {
  return compileConfigText(yaml.replaceAll('UPSTREAM', 'http://127.0.0.1:1'), 'test.yaml', { env: {} }).routes.map(
    (r) => r.policy,
  )
}

/** `/accounts/<id>` with the id URL-encoded, as clients must. */
export const accountPath = (account: string, rest = '') => `/accounts/${encodeURIComponent(account)}${rest}`

/**
 * The guarded app of the admin tests: accounts named by a trusted `x-user` header; `contact`
 * disables at 5 distinct records in 10 minutes, `invoice` throttles at 10.
 */
export function adminConfig(options: { store?: string; identity?: string; disable?: string } = {}): string {
  return `
version: 1
upstream: { url: UPSTREAM, timeout: 5s }
store: ${options.store ?? '{ type: memory }'}
identity: ${options.identity ?? '[ { type: header, name: x-user, trusted: true } ]'}
actions: { disable: { duration: ${options.disable ?? 'forever'} } }
routes:
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 10m, distinctRecords: 5, action: disable }
      - { window: 1m, requests: 50, action: throttle }
  - name: invoice
    methods: [GET]
    path: /api/invoices/:id
    records: { param: id }
    limits: [ { window: 10m, distinctRecords: 10, action: throttle } ]
`
}

/** GET /api/<route>/<id> for each id as `user` (the x-user header), one after another: the statuses. */
export async function readAs(proxyUrl: string, user: string, route: string, ids: number[]): Promise<number[]> {
  const statuses: number[] = []
  for (const id of ids)
    statuses.push(
      (await send(proxyUrl, `/api/${route}/${id}`, { headers: { 'x-user': user.replace(/^header:/, '') } })).status,
    )
  return statuses
}
