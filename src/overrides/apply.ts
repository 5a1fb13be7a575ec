// The request path's side of overrides: the route an exchange is decided with.
import type { RoutedExchange } from '../exchange/exchange.js'
import { overrideFor } from './overrides.js'

/** Decide the exchange with the route of the first override that applies to it (if any). */
export function applyOverride(ex: RoutedExchange): void {
  const list = ex.live.config.overrides
  if (list.length === 0) return
  const base = ex.route.override === undefined ? ex.route : ex.live.config.routes.find((r) => r.name === ex.route.name)
  if (base === undefined) return
  const o = overrideFor(list, base.name, ex.account, () => ex.live.identity.clientIp(ex.raw), ex.claims)
  const route = o?.compiled.get(base.name)
  ex.route = route ?? base
}
