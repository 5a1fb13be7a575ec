// Which sensitive route a request belongs to, as the upstream will see it: HEAD counts as GET,
// and a method-override header is matched as the method it names, and the real method too
// (whichever the upstream honours). Shared by the proxy and `sluice replay`.
import type { CompiledRoute } from '../config/compile.js'
import { matchRoute, type RouteMatch } from './table.js'

// Old frameworks honour these on POST; a scraper can use them to dress a GET as something else.
export const METHOD_OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'] as const
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

type Headers = Readonly<Record<string, string | string[] | undefined>>

/** The method named by an override header, if it is a real one. */
export function methodOverride(headers: Headers): string | undefined {
  for (const h of METHOD_OVERRIDE_HEADERS) {
    const v = headers[h]
    if (typeof v === 'string' && v !== '') {
      const m = v.trim().toUpperCase()
      if (KNOWN_METHODS.has(m)) return m
    }
  }
  return undefined
}

export function resolveRoute(
  routes: readonly CompiledRoute[],
  method: string,
  matchPath: string,
  overridden?: string,
): RouteMatch<CompiledRoute> | null {
  const fold = (m: string) => (m === 'HEAD' ? 'GET' : m)
  if (overridden !== undefined) {
    const viaOverride = matchRoute(routes, fold(overridden), matchPath)
    if (viaOverride) return viaOverride
  }
  return matchRoute(routes, fold(method), matchPath)
}
