// `sluice check`: the effective limits under each override (the last section of describeConfig).
import type { CompiledConfig } from '../config/compile.js'
import { formatMs } from '../engine/policy.js'

export function describeOverrides(c: CompiledConfig): string[] {
  if (c.overrides.length === 0) return []
  const lines = [`  overrides (the first that matches a request applies)`]
  for (const o of c.overrides) {
    lines.push(`    ${o.label}`)
    if (o.exempt) {
      const names = [...o.compiled.keys()]
      lines.push(`      counted and logged as "exempt" on ${names.join(', ')}; never blocked`)
      continue
    }
    for (const [name, route] of o.compiled) {
      const base = c.routes.find((r) => r.name === name)
      lines.push(`      ${name}`)
      route.policy.limits.forEach((l, i) => {
        const was = base?.policy.limits[i]?.max ?? l.max
        const per = l.per === 'account' ? 'per account' : l.per === 'network' ? 'per network' : 'per route'
        const note = was === l.max ? '(unscaled)' : `(was ${was})`
        lines.push(
          `        ${formatMs(l.windowMs).padEnd(5)} ${l.kind.padEnd(16)} ${String(l.max).padStart(6)}  ${per.padEnd(12)} → ${l.action}  ${note}`,
        )
      })
    }
  }
  return lines
}
