// Exemptions and scaled limits for legitimate bulk users (`overrides:` in the config): compiled
// once with the config into a route per (override, route) whose policy is already scaled (or
// exempt), so the request path only picks one — no arithmetic per request, and a reload swaps
// them with the rest of the config.
//
// Matching: the first override whose matchers (accounts, networks, claims; each given one must
// match) match the request on one of its routes (all routes without `routes:`) applies.
//   accounts  ids or globs (`*` any run of characters, `?` one). A name with a known prefix
//             (`header:`, `jwt:`, `user:`, `basic:`, `session:`, `ip:`, `net:`, `overflow:`)
//             matches ids as written; a bare name matches it under `header:`, `jwt:` and
//             `user:`, and as the user of `basic:<name>#<fingerprint>`.
//   networks  CIDRs (or addresses) of the client address.
//   claims    claims of a verified JWT identity, equal (an array claim: containing the value).
// exempt: the route's own limits in shadow — counted, decided and logged (as "exempt"), never
// blocked. scale: every per-account threshold × scale (rounded, at least 1); per-network ones
// too when the override matches by networks alone (then every client of those networks gets
// it); per-route thresholds are everyone's and never scaled.
import ipaddr from 'ipaddr.js'
import type { CompiledRoute } from '../config/compile.js'
import type { OverrideConfig } from '../config/schema.js'
import { buildPolicy, type Limit, type LimitSpec, type Part, type RoutePolicy } from '../engine/policy.js'
import type { ConfigIssue } from '../errors.js'

/** What a route carries when an override made it: for logs, audit and `sluice check`. */
export interface OverrideInfo {
  /** Position in `overrides:` (0-based). */
  index: number
  /** `overrides[1] (accounts user:corp-*): ×10` */
  label: string
  exempt: boolean
  /** 1 for an exemption. */
  scale: number
}

export interface CompiledOverride extends OverrideInfo {
  routes: ReadonlySet<string> | null
  accounts: ((account: string) => boolean) | null
  networks: ((address: string) => boolean) | null
  claims: readonly (readonly [string, string | number | boolean])[] | null
  /** The routes as this override makes them, by name (only those it applies to). */
  compiled: ReadonlyMap<string, CompiledRoute>
}

const PREFIXES = ['header:', 'jwt:', 'user:', 'basic:', 'session:', 'ip:', 'net:', 'overflow:']

/** Compile `overrides:` against the compiled routes; problems go to `issues` (code SLUICE_ERR_CONFIG_OVERRIDE). */
export function compileOverrides(
  configs: readonly OverrideConfig[] | undefined,
  routes: readonly CompiledRoute[],
  hasJwt: boolean,
  issues: ConfigIssue[],
): CompiledOverride[] {
  const out: CompiledOverride[] = []
  const byName = new Map(routes.map((r) => [r.name, r]))
  ;(configs ?? []).forEach((o, i) => {
    const at = ['overrides', i]
    const issue = (path: (string | number)[], message: string, hint?: string) =>
      issues.push({ code: 'SLUICE_ERR_CONFIG_OVERRIDE', path: [...at, ...path], message, ...(hint ? { hint } : {}) })
    const before = issues.length
    if (o.accounts === undefined && o.networks === undefined && o.claims === undefined)
      issue([], 'an override needs accounts, networks or claims to match', 'add e.g. accounts: [svc-nightly-report]')
    if (o.exempt === true && o.scale !== undefined)
      issue(['scale'], 'an override is either exempt or scaled, not both', 'remove scale (exempt is never blocked)')
    else if (o.exempt !== true && o.scale === undefined)
      issue([], 'an override without exempt: true or a scale changes nothing', 'add exempt: true or e.g. scale: 10')
    if (o.scale !== undefined && !(Number.isFinite(o.scale) && o.scale > 0))
      issue(['scale'], `scale must be a number above 0, not ${o.scale}`, 'e.g. scale: 10 (ten times), 0.5 (half)')
    if (o.claims !== undefined && !hasJwt)
      issue(['claims'], 'claims match verified JWT identities, but no identity is of type jwt', 'add a jwt identity')
    if (o.claims !== undefined && Object.keys(o.claims).length === 0)
      issue(['claims'], 'claims is empty: it would match every JWT identity', 'name a claim, e.g. { role: staff }')
    const ranges: [ipaddr.IPv4 | ipaddr.IPv6, number][] = []
    o.networks?.forEach((text, j) => {
      const range = parseRange(text)
      if (range === null) issue(['networks', j], `"${text}" is not a CIDR or address`, 'write e.g. 10.20.0.0/16')
      else ranges.push(range)
    })
    o.routes?.forEach((name, j) => {
      if (!byName.has(name))
        issue(
          ['routes', j],
          `no route named "${name}"`,
          `routes: ${routes.map((r) => r.name).join(', ') || '(none configured)'}`,
        )
    })
    if (issues.length > before) return
    const exempt = o.exempt === true
    const scale = exempt ? 1 : (o.scale as number)
    const info: OverrideInfo = { index: i, label: labelOf(i, o, exempt, scale), exempt, scale }
    const networkOnly = o.accounts === undefined && o.claims === undefined
    const compiled = new Map<string, CompiledRoute>()
    for (const r of routes) {
      if (o.routes !== undefined && !o.routes.includes(r.name)) continue
      compiled.set(r.name, { ...r, policy: overridden(r.policy, exempt, scale, networkOnly), override: info })
    }
    out.push({
      ...info,
      routes: o.routes ? new Set(o.routes) : null,
      accounts: o.accounts ? accountMatcher(o.accounts) : null,
      networks: ranges.length > 0 ? networkMatcher(ranges) : null,
      claims: o.claims ? Object.entries(o.claims) : null,
      compiled,
    })
  })
  for (const r of routes) {
    const copies = out.flatMap((o) => {
      const c = o.compiled.get(r.name)
      return c ? [c] : []
    })
    if (copies.length === 0) continue
    const shapes = sameCapacities([r.policy, ...copies.map((c) => c.policy)])
    r.policy = shapes[0] as RoutePolicy
    copies.forEach((c, k) => (c.policy = shapes[k + 1] as RoutePolicy))
  }
  return out
}

/**
 * The shapes of one route (its own policy, and each override's) with the same capacities: the
 * largest any of them needs. The windows of an account that is sometimes under an override and
 * sometimes not (a network override and a roaming client) then keep the history of the largest
 * shape: the memory store holds one section per route and capacities, and carrying it into a
 * smaller one would drop what the scaled shape still counts; Redis trims by the capacity of
 * each hit alike. An ordinary account is stopped at its own max, so it never fills the room.
 */
function sameCapacities(shapes: readonly RoutePolicy[]): RoutePolicy[] {
  const widen = (ps: readonly RoutePolicy[]): RoutePolicy[] => {
    const req = Math.max(...ps.map((p) => p.requestCapacity))
    const dist = Math.max(...ps.map((p) => p.distinctCapacity))
    return ps.map((p) => ({ ...p, requestCapacity: req, distinctCapacity: dist }))
  }
  const tops = widen(shapes)
  const first = shapes[0] as RoutePolicy
  if (first.parts === null) return tops
  // Every shape has the same limits, so the same parts in the same order.
  const parts = first.parts.map((_, k) => widen(shapes.map((p) => (p.parts as readonly Part[])[k]!.policy)))
  return tops.map((p, i) => ({
    ...p,
    parts: (p.parts as readonly Part[]).map((part, k) => ({ ...part, policy: parts[k]![i] as RoutePolicy })),
  }))
}

/** The first override that applies to this request on `route`, or null. `address` is asked only if needed. */
export function overrideFor(
  list: readonly CompiledOverride[],
  route: string,
  account: string,
  address: () => string,
  claims: Readonly<Record<string, unknown>> | undefined,
): CompiledOverride | null {
  let ip: string | undefined
  for (const o of list) {
    if (o.routes !== null && !o.routes.has(route)) continue
    if (o.accounts !== null && !o.accounts(account)) continue
    if (o.claims !== null && (claims === undefined || !claimsMatch(o.claims, claims))) continue
    if (o.networks !== null && !o.networks((ip ??= address()))) continue
    return o
  }
  return null
}

/** The limit's threshold under a scale (rounded, at least 1). */
export function scaledMax(max: number, scale: number): number {
  return scale === 1 ? max : Math.max(1, Math.round(max * scale))
}

/** Does this override scale this limit (per-route limits never; per-network ones only for a networks-only override)? */
export function scales(limit: Pick<Limit, 'per'>, networkOnly: boolean): boolean {
  return limit.per === 'account' || (limit.per === 'network' && networkOnly)
}

function overridden(policy: RoutePolicy, exempt: boolean, scale: number, networkOnly: boolean): RoutePolicy {
  const specs: LimitSpec[] = policy.limits.map((l) => ({
    kind: l.kind,
    per: l.per,
    windowMs: l.windowMs,
    max: !exempt && scales(l, networkOnly) ? scaledMax(l.max, scale) : l.max,
    action: l.action,
  }))
  // The same name: the windows are the account's on this route whatever override applies (the
  // stores carry them over between shapes: a scaled policy only holds more history).
  return buildPolicy(policy.name, specs, exempt || policy.shadow)
}

function labelOf(i: number, o: OverrideConfig, exempt: boolean, scale: number): string {
  const by = [
    o.accounts ? `accounts ${o.accounts.join(', ')}` : '',
    o.networks ? `networks ${o.networks.join(', ')}` : '',
    o.claims
      ? `claims ${Object.entries(o.claims)
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(', ')}`
      : '',
  ].filter((s) => s !== '')
  return `overrides[${i}] (${by.join('; ')}${o.routes ? ` on ${o.routes.join(', ')}` : ''}): ${exempt ? 'exempt' : `×${scale}`}`
}

function globRegExp(glob: string): string {
  return glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.')
}

/** One matcher for all of an override's account patterns (a single regular expression). */
export function accountMatcher(patterns: readonly string[]): (account: string) => boolean {
  const alternatives = patterns.map((p) => {
    const re = globRegExp(p)
    if (PREFIXES.some((prefix) => p.startsWith(prefix))) return re
    return `(?:header:|jwt:|user:)${re}|basic:${re}#[^#]*`
  })
  const regex = new RegExp(`^(?:${alternatives.join('|')})$`, 's')
  return (account) => regex.test(account)
}

function parseRange(text: string): [ipaddr.IPv4 | ipaddr.IPv6, number] | null {
  try {
    if (text.includes('/')) {
      const [addr, bits] = ipaddr.parseCIDR(text)
      return [addr, bits]
    }
    const addr = ipaddr.parse(text)
    return [addr, addr.kind() === 'ipv4' ? 32 : 128]
  } catch {
    return null
  }
}

function networkMatcher(ranges: readonly [ipaddr.IPv4 | ipaddr.IPv6, number][]): (address: string) => boolean {
  return (address) => {
    if (!ipaddr.isValid(address)) return false
    let ip = ipaddr.parse(address)
    if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address()
    return ranges.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits))
  }
}

function claimsMatch(
  wanted: readonly (readonly [string, string | number | boolean])[],
  claims: Readonly<Record<string, unknown>>,
): boolean {
  return wanted.every(([name, value]) => {
    const got = claims[name]
    return Array.isArray(got) ? got.includes(value) : got === value
  })
}
