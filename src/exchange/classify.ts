// What a request is, before anyone asks who sent it: its canonical path, the sensitive route it
// falls on (method overrides included), its query as clamped, the records its path and query
// name, and whether it is a login or logout. Pure and framework-free: the Fastify hook and
// `sluice replay` call this same function, so the proxy and a replay of its log cannot drift.
import type { CompiledRoute, CompiledSessions } from '../config/compile.js'
import { canonicalize, type CanonicalOptions } from '../http/canonicalize.js'
import { asRouted, methodOverride, queryMethodOverrides, resolveRoute, servedAsGet } from '../routes/resolve.js'

/** The request line and headers, as a server or an access log has them. */
export interface RequestLine {
  method: string
  /** The request target: path and query (origin-form), or absolute-form. */
  url: string
  headers: Readonly<Record<string, string | string[] | undefined>>
}

/** What classification needs of a config; built once per config (see Runtime). */
export interface ClassifyContext {
  routes: readonly CompiledRoute[]
  sessions: CompiledSessions | null
  canonical: CanonicalOptions
  /** Global shadow mode: clampQuery only says what it would rewrite (a shadow route's own mode too). */
  shadow?: boolean
}

export type SessionKind = 'login' | 'logout'

export type Classification =
  /** The path cannot be made unambiguous: 400. */
  | { kind: 'rejected'; reason: string }
  /** No sensitive route: forwarded untouched (a login or logout is still watched). */
  | { kind: 'unrouted'; target: string; search: string; override: string | undefined; session: SessionKind | null }
  | RoutedRequest

export interface RoutedRequest {
  kind: 'routed'
  route: CompiledRoute
  params: Readonly<Record<string, string>>
  /** The canonical path and the query as forwarded (clamped): what is matched, forwarded and logged. */
  target: string
  /** The query as forwarded (`?…` or ''). */
  search: string
  /** The method an override header names, when it is a real one. */
  override: string | undefined
  session: SessionKind | null
  /** Records the path and query name; null when they come from the request body (read later). */
  records: string[] | null
  /** Query keys `clampQuery` rewrote (null: none) — or, in shadow mode, would have rewritten. */
  clamped: string[] | null
  /** Shadow mode: the query was left as the client sent it; `clamped` is what enforce would rewrite. */
  clampShadowed: boolean
}

export function canonicalOptions(stripMatrixParams: boolean): CanonicalOptions {
  // Match with case preserved (the pattern regexes carry the case rule), so record ids
  // extracted from the path keep the case the client sent.
  return { caseSensitive: true, stripMatrixParams }
}

export function classify(request: RequestLine, ctx: ClassifyContext): Classification {
  const canonical = canonicalize(request.url, ctx.canonical)
  if (!canonical.ok) return { kind: 'rejected', reason: canonical.reason }
  const override = methodOverride(request.headers)
  // As for routes, the real method and the ones overrides name: whichever the upstream honours.
  const queried = queryMethodOverrides(request.method, canonical.search)
  const overrides = override === undefined ? queried : [override, ...queried]
  const session = sessionKind(ctx.sessions, request.method, overrides, canonical.matchPath)
  const match =
    resolveRoute(ctx.routes, request.method, canonical.matchPath, overrides) ??
    servedAsGet(ctx.routes, request.method, request.headers, canonical.matchPath)
  if (!match)
    return { kind: 'unrouted', target: canonical.path + canonical.search, search: canonical.search, override, session }

  const route = match.route
  // The query is clamped before its records are read: the upstream never sees the original.
  // Shadow serves everything as it came: the clamp is only reported.
  const clamp = route.clamp?.(canonical.search) ?? null
  const shadow = clamp !== null && (ctx.shadow === true || route.policy.shadow)
  const search = clamp && !shadow ? clamp.search : canonical.search
  return {
    kind: 'routed',
    route,
    params: match.params,
    target: canonical.path + search,
    search,
    override,
    session,
    records: route.inspect?.from === 'body' ? null : route.records(match.params, search, request.headers.cookie),
    clamped: clamp ? clamp.clamped : null,
    clampShadowed: shadow,
  }
}

/** Is this request a login or logout, by its method or one an override names? (On the canonical path, like routes.) */
function sessionKind(
  sessions: CompiledSessions | null,
  method: string,
  overrides: readonly string[],
  matchPath: string,
): SessionKind | null {
  if (!sessions) return null
  const { login, logout } = sessions
  const named = (m: string) => m === method || overrides.includes(m)
  // (`/login.json` and `/login.php/x` log in too: see asRouted.)
  return asRouted(matchPath, (path) => {
    if (named(login.method) && login.pattern.regex.test(path)) return 'login'
    if (logout && (logout.method === null || named(logout.method)) && logout.pattern.regex.test(path)) return 'logout'
    return null
  })
}
