// Which sensitive route a request belongs to, as the upstream will see it: HEAD counts as GET,
// and a method override (a header, or a POST's `_method` query key) is matched as the method
// it names, and the real method too (whichever the upstream honours). Shared by the proxy and
// `sluice replay`.
import type { CompiledRoute } from '../config/compile.js'
import { formLike } from '../records/body.js'
import { namesKey, pairs } from '../records/keys.js'
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

const METHOD_KEY = ['_method']
const NO_OVERRIDES: readonly string[] = []

/**
 * The methods a POST's query names with `_method` (`?_method=GET`): Express's method-override
 * set up as `methodOverride('_method')`, Laravel and Symfony (`_method` in the query or the
 * form) serve the POST as that method. Every value, in every reading of the key (`_method[]`,
 * `%5Fmethod`, `_METHOD` for servers that fold case): whichever one the upstream takes. Empty
 * for other methods (no framework overrides them) and for queries without the key.
 */
export function queryMethodOverrides(method: string, search: string): readonly string[] {
  if (method !== 'POST' || search.length < 2 || !(search.includes('%') || /_method/i.test(search))) return NO_OVERRIDES
  const out: string[] = []
  for (const [key, value] of pairs(search.slice(1))) {
    const m = value.trim().toUpperCase()
    if (KNOWN_METHODS.has(m) && namesKey(key, METHOD_KEY) && !out.includes(m)) out.push(m)
  }
  return out
}

export function resolveRoute(
  routes: readonly CompiledRoute[],
  method: string,
  matchPath: string,
  overrides: readonly string[] = NO_OVERRIDES,
): RouteMatch<CompiledRoute> | null {
  const fold = (m: string) => (m === 'HEAD' ? 'GET' : m)
  return asRouted(matchPath, (path) => {
    for (const m of overrides) {
      const found = matchRoute(routes, fold(m), path)
      if (found) return found
    }
    return matchRoute(routes, fold(method), path)
  })
}

/**
 * The GET route a legacy upstream serves this request as, when no route takes its own method.
 * PHP scripts run whatever the method and body (`DELETE /contact.php?id=5`, or a JSON POST to
 * it, prints contact 5 from `$_GET`), as do Spring's `@RequestMapping` without a method, JSPs
 * before JSP 2.3 and Express's `app.all`; servlets (`doPost` calling `doGet`, Struts actions)
 * and ASP.NET WebForms serve a form POST as the page; Rails and Laravel forms with
 * `_method=get` too. So a request of any method but GET and HEAD on a path only a GET route
 * covers is counted as that route: a form that writes back to the page it was read from counts
 * one more request there, its record already counted; a DELETE of a record just read is a
 * re-read. But where the GET route reads its records from the answer, only with a form,
 * multipart, plain-text or no body: the answer to a JSON or XML API call (a REST create or
 * update) is not the page.
 */
export function servedAsGet(
  routes: readonly CompiledRoute[],
  method: string,
  headers: Headers,
  matchPath: string,
): RouteMatch<CompiledRoute> | null {
  if (method === 'GET' || method === 'HEAD') return null
  const get = resolveRoute(routes, 'GET', matchPath)
  if (get === null || get.route.inspect?.from !== 'response') return get
  const type = headers['content-type']
  return formLike(typeof type === 'string' ? type : undefined) ? get : null
}

/**
 * `find` of the path, or else of the path as a server may route it: without a format suffix
 * (withoutFormat), then up to its script segment (withoutPathInfo). Each is worked out only
 * when the one before found nothing.
 */
export function asRouted<T>(matchPath: string, find: (path: string) => T | null): T | null {
  const found = find(matchPath)
  if (found !== null) return found
  const bare = withoutFormat(matchPath)
  const byFormat = bare === null ? null : find(bare)
  if (byFormat !== null) return byFormat
  const script = withoutPathInfo(matchPath)
  return script === null ? null : find(script)
}

/**
 * The path up to its first script segment when more segments follow (`/contact.php/x/y` →
 * `/contact.php`), or null: Apache runs `contact.php` for it with the rest as PATH_INFO, as
 * IIS does `Contact.aspx/x`, CGI scripts, ColdFusion pages and ISAPI DLLs. A path no route
 * matches (nor without a format suffix) is matched again so.
 */
export function withoutPathInfo(matchPath: string): string | null {
  // (Most paths have no dot before their last segment: no regular expression for them.)
  const dot = matchPath.indexOf('.')
  if (dot < 0 || dot > matchPath.lastIndexOf('/')) return null
  const m = SCRIPT_SEGMENT.exec(matchPath)
  return m === null ? null : (m[1] as string)
}
const SCRIPT_SEGMENT =
  /^(\/(?:[^/]*\/)*?[^/]*\.(?:php\d?|phtml|aspx?|ash[xd]|asmx|axd|svc|cgi|pl|cfml?|cfc|dll|exe))\/./i

/**
 * The path without a format suffix on its last segment (`/api/contacts.json` →
 * `/api/contacts`), or null when it has none: Rails routes `(.:format)` and older Spring MVC's
 * suffix pattern matching serve `/contacts.json`, `.xml`, `.csv` from the `/contacts`
 * handler. A path no route matches is matched again without it.
 */
export function withoutFormat(matchPath: string): string | null {
  // (Most paths have no dot in their last segment: no regular expression for them.)
  const dot = matchPath.lastIndexOf('.')
  if (dot <= matchPath.lastIndexOf('/') + 1 || !FORMAT.test(matchPath.slice(dot + 1))) return null
  return matchPath.slice(0, dot)
}
const FORMAT = /^[A-Za-z0-9]{1,10}$/
