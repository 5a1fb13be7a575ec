// `sluice check` prints what a config will actually do, defaults included.
import { accessSync, constants, existsSync } from 'node:fs'
import type { CompiledConfig } from '../config/compile.js'
import { MEMORY_ONLY } from '../store/create.js'
import { stateDirProblem } from '../store/state.js'
import { describeOverrides } from '../overrides/describe.js'
import { humanBytes, humanMs } from '../units.js'

/** What `sluice start` would refuse about the state file's place on this machine (checked where it runs). */
export function statePathProblem(c: CompiledConfig): string | null {
  const state = c.store.type === 'memory' ? c.store.state : undefined
  const problem = state ? stateDirProblem(state.path) : null
  return (
    problem && `store.state.path ${state?.path}: ${problem}; sluice start would refuse here (SLUICE_ERR_STATE_PATH)`
  )
}

/** What `sluice start` would refuse about the audit file's place on this machine (as statePathProblem). */
export function auditPathProblem(c: CompiledConfig): string | null {
  const file = c.source.audit?.file
  if (file === undefined) return null
  const dirProblem = stateDirProblem(file)
  if (dirProblem) return `audit.file ${file}: ${dirProblem}; sluice start would refuse here (SLUICE_ERR_AUDIT_OPEN)`
  if (!existsSync(file)) return null
  try {
    accessSync(file, constants.R_OK | constants.W_OK)
  } catch {
    return `audit.file ${file}: not readable and writable by this user; sluice start would refuse here (SLUICE_ERR_AUDIT_OPEN)`
  }
  return null
}

/** Everything `sluice check` can tell about the machine it runs on that `start` needs, like `nginx -t`. */
export function startProblems(c: CompiledConfig): string[] {
  return [statePathProblem(c), auditPathProblem(c)].filter((p): p is string => p !== null)
}

export function describeConfig(c: CompiledConfig): string {
  const lines: string[] = []
  const s = c.source
  lines.push(
    `  listen    http://${c.listen.host}:${c.listen.port}  →  upstream ${c.upstream.url} (timeout ${humanMs(c.upstream.timeoutMs)})`,
  )
  const state = c.store.type === 'memory' ? c.store.state : undefined
  const store =
    c.store.type === 'memory'
      ? `memory (max ${c.store.maxAccounts} accounts${state ? `; state file ${state.path}, written every ${humanMs(state.everyMs)} and on stop, onCorrupt: ${state.onCorrupt}` : ''})`
      : `redis ${c.store.url ?? `cluster ${c.store.cluster?.join(',')}`} (timeout ${humanMs(c.store.commandTimeoutMs)}, on error: ${c.store.onError})`
  lines.push(`  mode      ${c.shadow ? 'shadow (decide and log, block nothing)' : 'enforce'}  ·  store ${store}`)
  if (c.store.type === 'memory' && !state) lines.push(`  note      ${MEMORY_ONLY}.`)
  const ids = c.identity.map((i) => {
    switch (i.type) {
      case 'jwt':
        return `jwt:<${i.claim}> from ${i.cookie ? `cookie ${i.cookie}` : `header ${i.header}`} (${i.algorithms.join('/')}, clock tolerance ${i.clockTolerance ?? '5m'})`
      case 'header':
        return `header:<${i.name}>${i.trusted ? ' (trusted from anyone)' : ' (from trusted proxies only)'}`
      case 'basic':
        return `basic:<user>#<keyed password fingerprint> (user names ${i.usernames ?? 'case-insensitive'})`
      case 'cookie':
        return `session:<cookie ${i.name}, or ;${i.name.toLowerCase()}= in the URL> (one account per session)`
    }
  })
  lines.push(`  identity  ${[...ids, 'client IP'].join('  →  ')}`)
  lines.push(
    `  trusted   ${(s.trustedProxies ?? []).length > 0 ? (s.trustedProxies ?? []).join(', ') : 'no proxies (X-Forwarded-For ignored)'}`,
  )
  lines.push(
    `  paths     ${c.paths.caseSensitive ? 'case-sensitive' : 'case-insensitive'}, matrix params ${c.paths.stripMatrixParams ? 'ignored' : 'significant'}, method override ${c.methodOverride === 'strip' ? 'stripped' : 'forwarded'}`,
  )
  const ch = c.actions.challenge
  const key = ch.secret === undefined ? 'random key per process' : 'configured key'
  lines.push(
    `  actions   throttle → 429 Retry-After ${humanMs(c.actions.throttleRetryAfterMs)} · challenge → 429 proof of work (${ch.difficulty} hashes, a pass buys ${ch.grants} within ${humanMs(ch.validForMs)}, then twice as hard; ${key}) · disable → 403 for ${humanMs(c.actions.disableForMs)}`,
  )
  if (c.sessions) {
    const { login, logout, ttlMs } = c.sessions
    lines.push(
      `  sessions  ${login.method} ${login.pattern.source} (field ${login.usernameField}) binds cookie ${login.cookie} to user:<name> for ≥ ${humanMs(ttlMs)}${logout ? ` · ${logout.method ?? 'any'} ${logout.pattern.source} is logged (the binding stays)` : ''}`,
    )
  }
  lines.push(`  routes    ${c.routes.length === 0 ? '(none: everything is forwarded uncounted)' : ''}`)
  for (const r of c.routes) {
    const methods = r.methods ? [...r.methods].join(',') : 'ANY'
    const inspect = r.inspect
      ? ` (reads ≤ ${humanBytes(r.inspect.maxBytes)} and ${r.inspect.maxIds} ids; uninspectable: ${r.inspect.uninspectable === 'block' ? 'block' : `count as ${r.inspect.uninspectable}`})`
      : ''
    const clamp = Object.entries(r.clamp?.caps ?? {}).map(([k, v]) => `${k} ≤ ${v}`)
    lines.push(
      `    ${r.name}  ${methods} ${r.path}  records: ${r.recordSource}${inspect}${clamp.length ? `  clamp: ${clamp.join(', ')}` : ''}${r.policy.shadow ? '  [shadow]' : ''}`,
    )
    for (const l of r.policy.limits) {
      // Whose windows: each account's, each client network's (net:<cidr>), or the route's as a whole.
      const per =
        l.per === 'account'
          ? 'per account'
          : l.per === 'network'
            ? `per network /${c.network.ipv4} /${c.network.ipv6}`
            : 'per route'
      lines.push(
        `      ${humanMs(l.windowMs).padEnd(5)} ${l.kind.padEnd(16)} ${String(l.max).padStart(6)}  ${per.padEnd(22)} → ${l.action}`,
      )
    }
  }
  lines.push(...describeOverrides(c))
  return lines.join('\n')
}
