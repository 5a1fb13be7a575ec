// Calls to a running admin listener, and the policies of an inline config.
import { compileConfigText } from '../../src/config/index.js'
import type { RoutePolicy } from '../../src/engine/policy.js'

export const TOKEN = 'admin-token-0123456789abcdef'

export interface AdminResponse {
  status: number
  type: string
  text: string
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any
}

export async function call(base: string, method: string, path: string, token: string | null = TOKEN, headers: Record<string, string> = {}): Promise<AdminResponse> {
  const res = await fetch(`${base}${path}`, { method, headers: { ...(token !== null ? { authorization: `Bearer ${token}` } : {}), ...headers } })
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
  return compileConfigText(yaml.replaceAll('UPSTREAM', 'http://127.0.0.1:1'), 'test.yaml', { env: {} }).routes.map((r) => r.policy)
}

/** `/accounts/<id>` with the id URL-encoded, as clients must. */
export const accountPath = (account: string, rest = '') => `/accounts/${encodeURIComponent(account)}${rest}`
