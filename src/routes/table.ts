// Which sensitive route, if any, a request belongs to.
import type { PathPattern } from './pattern.js'

export interface MatchableRoute {
  pattern: PathPattern
  /** Upper-case methods, HEAD folded into GET; null: every method. */
  methods: ReadonlySet<string> | null
}

export interface RouteMatch<R> {
  route: R
  params: Record<string, string>
}

/** First route (in config order) whose method and pattern match. */
export function matchRoute<R extends MatchableRoute>(
  routes: readonly R[],
  method: string,
  matchPath: string,
): RouteMatch<R> | null {
  for (const route of routes) {
    if (route.methods !== null && !route.methods.has(method)) continue
    const m = route.pattern.regex.exec(matchPath)
    if (!m) continue
    const params: Record<string, string> = {}
    const names = route.pattern.params
    for (let i = 0; i < names.length; i++) params[names[i] as string] = decodeParam(m[i + 1] as string)
    return { route, params }
  }
  return null
}

/** Percent-decoded text, or the text as it is when it does not decode. */
export function decodeParam(raw: string): string {
  if (!raw.includes('%')) return raw
  try {
    return decodeURIComponent(raw)
  } catch {
    return raw // canonicalization already rejected invalid encodings; keep the raw text regardless
  }
}
