// A validated config compiled once into what the hot path evaluates: route matchers, limit
// policies, durations in ms. Semantic problems the schema cannot express are reported as
// ConfigIssues with document paths (the loader turns them into file:line:col).
import type { KeyObject } from 'node:crypto'
import { derivePseudonymKey } from '../audit/pseudonym.js'
import { readFileSync } from 'node:fs'
import { ConfigIssues, PatternError, SelectorError, type ConfigIssue } from '../errors.js'
import {
  buildPolicy,
  formatMs,
  MAX_WINDOW_MS,
  type LimitKind,
  type LimitSpec,
  type RoutePolicy,
} from '../engine/policy.js'
import { compileTrust, validateTrustEntry, type TrustFn } from '../identity/ip.js'
import { jwtKey } from '../identity/jwt.js'
import { compileClamp, type QueryClamp } from '../records/clamp.js'
import { compileAnswer, type AnswerExtractor, type AnswerSpec } from '../records/answer/index.js'
import type { PageOptions } from '../actions/respond.js'
import { compileRecords, type RecordExtractor } from '../records/extract.js'
import { configuredPath } from '../records/keys.js'
import { compileSelector, pathSelector, type Selector } from '../records/selector.js'
import { compilePattern, type PathPattern } from '../routes/pattern.js'
import type { UsernameMode } from '../identity/usernames.js'
import { compileOverrides, type CompiledOverride, type OverrideInfo } from '../overrides/overrides.js'
import type { MatchableRoute } from '../routes/table.js'
import { DURATION_HINT, parseDuration, parseSize } from './duration.js'
import type { IdentityConfig, RecordsConfig, RouteConfig, SessionsConfig, SluiceConfig } from './schema.js'

export interface CompiledRoute extends MatchableRoute {
  name: string
  path: string
  policy: RoutePolicy
  records: RecordExtractor
  /** Where records come from, for `sluice check` and logs. */
  recordSource: string
  /** Records read from a body: the request's (decided before forwarding) or the response's. */
  inspect: Inspection | null
  /**
   * The record's key — a `query` record's, a `param` record's name — read in a request body as
   * well, when there is one: servlets' getParameter, PHP's $_REQUEST and ASP.NET's Request[…]
   * take a field of a form (or JSON) body as they take the query's, and ASP.NET MVC's model
   * binding prefers a form's `id` to the route's.
   */
  keyInBody: Inspection | null
  clamp: QueryClamp | null
  /** Set on the copies of a route an override makes (src/overrides/overrides.ts). */
  override?: OverrideInfo
}

export interface Inspection {
  from: 'body' | 'response'
  /** The request body's ids (from: body). */
  select: Selector
  /** The answer's ids (from: response): JSON, HTML, XML or CSV. */
  answer: AnswerExtractor | null
  maxBytes: number
  /** Most ids one body may name; more is uninspectable. */
  maxIds: number
  /** A body that cannot be read for ids: refused/withheld, or counted as this many new records. */
  uninspectable: 'block' | number
  /** Values hold several ids, split at this (a query record's `split`, read in a body). */
  split?: string
  /** A body that is no form or JSON names no ids (a query record's key in a body); too large is still refused. */
  unreadableIsEmpty?: true
}

export interface CompiledSessions {
  login: {
    method: string
    pattern: PathPattern
    usernameField: string
    cookie: string
    success: (status: number) => boolean
  }
  logout: { method: string | null; pattern: PathPattern } | null
  ttlMs: number
  usernames: UsernameMode
}

export interface ChallengeConfig {
  difficulty: number
  validForMs: number
  /** Records (or requests) one solved challenge buys past its limit. */
  grants: number
  timeoutMs: number
  /** Undefined: a random key per process (passes and challenges do not cross instances). */
  secret: string | undefined
}

export interface MemoryStoreConfig {
  type: 'memory'
  maxAccounts: number
  /** The state file (src/store/state.ts); none: counts live in this process only. */
  state?: { path: string; everyMs: number; onCorrupt: 'start' | 'refuse' }
}

export interface RedisStoreConfig {
  type: 'redis'
  url?: string
  cluster?: string[]
  sentinels?: string[]
  /** The Sentinel master name. */
  name?: string
  sentinelPassword?: string
  password?: string
  keyPrefix: string
  caFile?: string
  commandTimeoutMs: number
  onError: 'fail-open' | 'fail-closed' | 'local'
  maxAccounts: number
}

export interface CompiledConfig {
  source: SluiceConfig
  /** sha256 (hex) of the YAML text it was loaded from (loadConfig): reload entries name the config they applied. */
  configHash?: string
  listen: { host: string; port: number }
  upstream: { url: string; timeoutMs: number; connectTimeoutMs: number }
  shadow: boolean
  trust: TrustFn
  paths: { caseSensitive: boolean; stripMatrixParams: boolean }
  /**
   * How client addresses group into networks; `used` when some route has per-network limits
   * (then every observation names its network: a network's disable holds on every route).
   */
  network: { ipv4: number; ipv6: number; used: boolean }
  methodOverride: 'strip' | 'forward'
  store: MemoryStoreConfig | RedisStoreConfig
  identity: IdentityConfig[]
  /** Key of Basic password fingerprints (undefined: random per process). */
  identityKey: string | undefined
  routes: CompiledRoute[]
  /** `overrides:` in order, each with its copies of the routes it applies to. */
  overrides: CompiledOverride[]
  actions: { throttleRetryAfterMs: number; disableForMs: number; challenge: ChallengeConfig; page: PageOptions }
  sessions: CompiledSessions | null
  admin: {
    host: string
    port: number
    token: string
    decisionsKeptMs: number
    /** /readyz checks the upstream (a TCP connect every checkEveryMs, bounded by timeoutMs). */
    readiness: { upstream: boolean; checkEveryMs: number; timeoutMs: number }
    /** The web console at /console (docs/console.md). */
    console: { enabled: boolean; sessionTtlMs: number }
  } | null
  audit: CompiledAudit | null
  notify: CompiledNotify | null
  /** Pseudonymise record ids in logs, audit and incidents; the key (undefined: random per process). */
  privacy: { pseudonymise: boolean; key: string | Buffer | undefined }
  /** Bytes of bodies held for inspection at once, and how long a slow client may take to read one. */
  inspection: { memoryBytes: number; sendTimeoutMs: number }
  logLevel: string
}

export interface CompiledAudit {
  file: string
  key: string | undefined
  fsync: 'always' | 'interval' | 'never'
  fsyncIntervalMs: number
  maxBytes: number
  queueLimit: number
}

export interface CompiledNotify {
  webhooks: { url: string; secret: string; events: string[]; timeoutMs: number }[]
  queueLimit: number
  maxAttempts: number
}

type Defaulted = SluiceConfig &
  Required<
    Pick<
      SluiceConfig,
      'listen' | 'paths' | 'actions' | 'store' | 'identity' | 'trustedProxies' | 'mode' | 'methodOverride' | 'log'
    >
  > & { network: { ipv4: number; ipv6: number } }

/** Compile a schema-valid, defaulted config; throws ConfigIssues listing every problem. */
export function compileConfig(input: SluiceConfig): CompiledConfig {
  const config = input as Defaulted
  const issues: ConfigIssue[] = []
  const duration = (text: string, path: (string | number)[]): number => {
    const ms = parseDuration(text)
    if (ms === undefined || ms <= 0) {
      issues.push({
        code: 'SLUICE_ERR_CONFIG_DURATION',
        path,
        message: `"${text}" is not a positive duration`,
        hint: DURATION_HINT,
      })
      return 1
    }
    return ms
  }

  try {
    const u = new URL(config.upstream.url)
    if (u.search || u.hash)
      issues.push({
        code: 'SLUICE_ERR_CONFIG_VALUE',
        path: ['upstream', 'url'],
        message: 'the upstream URL must not have a query or fragment',
      })
    // The request path is forwarded as is; a base path here would be silently ignored.
    if (u.pathname !== '/' && u.pathname !== '')
      issues.push({
        code: 'SLUICE_ERR_CONFIG_VALUE',
        path: ['upstream', 'url'],
        message: `the upstream URL must not have a path ("${u.pathname}"): sluice forwards the request path unchanged`,
        hint: `write ${u.origin} and let clients keep requesting ${u.pathname}/…`,
      })
  } catch {
    issues.push({
      code: 'SLUICE_ERR_CONFIG_VALUE',
      path: ['upstream', 'url'],
      message: `"${config.upstream.url}" is not a URL`,
      hint: 'write e.g. http://127.0.0.1:3000',
    })
  }

  config.trustedProxies.forEach((entry, i) => {
    const problem = validateTrustEntry(entry)
    if (problem)
      issues.push({
        code: 'SLUICE_ERR_CONFIG_VALUE',
        path: ['trustedProxies', i],
        message: `"${entry}" is not an address or CIDR (${problem})`,
        hint: 'write e.g. 10.0.0.0/8, 192.168.1.10 or loopback',
      })
  })

  config.identity.forEach((id, i) => checkIdentity(id, ['identity', i], issues))

  const caseSensitive = config.paths.caseSensitive
  const names = new Set<string>()
  const routes: CompiledRoute[] = []
  config.routes.forEach((route, r) => {
    const at = ['routes', r]
    if (names.has(route.name))
      issues.push({
        code: 'SLUICE_ERR_CONFIG_ROUTE',
        path: [...at, 'name'],
        message: `route name "${route.name}" is used twice`,
        hint: 'give every route a unique name: it keys the counts',
      })
    names.add(route.name)
    const pattern = patternOrIssue(route.path, caseSensitive, [...at, 'path'], issues)
    if (!pattern) return
    if (route.records && 'param' in route.records && !pattern.params.includes(route.records.param)) {
      const known =
        pattern.params.length > 0 ? `it has ${pattern.params.map((p) => `:${p}`).join(', ')}` : 'it has no parameters'
      issues.push({
        code: 'SLUICE_ERR_CONFIG_ROUTE',
        path: [...at, 'records', 'param'],
        message: `records.param "${route.records.param}" is not a parameter of ${route.path} (${known})`,
      })
    }
    const limits = compileLimits(route, at, issues, duration)
    const inspect = compileInspection(route.records, [...at, 'records'], issues)
    if (inspect && !limits.some((l) => l.kind === 'distinctRecords')) {
      issues.push({
        code: 'SLUICE_ERR_CONFIG_LIMIT',
        path: [...at, 'records'],
        message: `route "${route.name}" reads record ids from the ${inspect.from === 'body' ? 'request body' : 'response'} but has no distinctRecords limit to count them`,
        hint: 'add e.g. { window: 10m, distinctRecords: 200, action: challenge }',
      })
    }
    routes.push({
      name: route.name,
      path: route.path,
      pattern,
      methods: route.methods ? new Set(route.methods.map((m) => (m === 'HEAD' ? 'GET' : m))) : null,
      policy: buildPolicy(route.name, limits, route.mode === 'shadow'),
      records: compileRecords(
        route.records && ('param' in route.records || 'query' in route.records) ? route.records : undefined,
      ),
      recordSource: describeRecords(route.records),
      inspect,
      keyInBody:
        route.records && !('body' in route.records || 'response' in route.records) ? keyInBody(route.records) : null,
      clamp: route.clampQuery ? compileClamp(route.clampQuery) : null,
    })
  })

  const disable = config.actions.disable.duration
  const compiled: CompiledConfig = {
    source: config,
    listen: { host: config.listen.host, port: config.listen.port },
    upstream: {
      url: config.upstream.url.replace(/\/+$/, ''),
      timeoutMs: duration(config.upstream.timeout, ['upstream', 'timeout']),
      connectTimeoutMs: duration(config.upstream.connectTimeout, ['upstream', 'connectTimeout']),
    },
    shadow: config.mode === 'shadow',
    trust: compileTrust(issues.some((i) => i.path[0] === 'trustedProxies') ? [] : config.trustedProxies),
    paths: { caseSensitive, stripMatrixParams: config.paths.stripMatrixParams },
    network: { ...config.network, used: routes.some((r) => r.policy.perNetwork) },
    methodOverride: config.methodOverride,
    store: compileStore(config.store, issues, duration),
    identity: config.identity,
    identityKey: identityKey(config),
    routes,
    overrides: compileOverrides(
      config.overrides,
      routes,
      config.identity.some((id) => id.type === 'jwt'),
      issues,
    ),
    actions: {
      throttleRetryAfterMs: duration(config.actions.throttle.retryAfter, ['actions', 'throttle', 'retryAfter']),
      disableForMs: disable === 'forever' ? Infinity : duration(disable, ['actions', 'disable', 'duration']),
      challenge: {
        difficulty: config.actions.challenge.difficulty,
        validForMs: duration(config.actions.challenge.validFor, ['actions', 'challenge', 'validFor']),
        grants: config.actions.challenge.grants,
        timeoutMs: duration(config.actions.challenge.timeout, ['actions', 'challenge', 'timeout']),
        secret: config.actions.challenge.secret,
      },
      page: config.actions.page,
    },
    sessions: config.sessions ? compileSessions(config.sessions, config, issues, duration) : null,
    admin: config.admin
      ? {
          host: config.admin.listen.host,
          port: config.admin.listen.port,
          // No shared token (named tokens only): '' matches nothing (buildAdmin skips empty tokens).
          token: config.admin.token ?? '',
          decisionsKeptMs: duration(config.admin.decisionsKept, ['admin', 'decisionsKept']),
          readiness: {
            upstream: config.admin.readiness.upstream,
            checkEveryMs: duration(config.admin.readiness.checkEvery, ['admin', 'readiness', 'checkEvery']),
            timeoutMs: duration(config.admin.readiness.timeout, ['admin', 'readiness', 'timeout']),
          },
          console: {
            enabled: config.admin.console.enabled,
            sessionTtlMs: duration(config.admin.console.sessionTtl, ['admin', 'console', 'sessionTtl']),
          },
        }
      : null,
    audit: config.audit ? compileAudit(config.audit, duration, issues) : null,
    privacy: {
      pseudonymise: config.privacy?.pseudonymise ?? true,
      key: config.privacy?.key ?? (config.audit?.key !== undefined ? derivePseudonymKey(config.audit.key) : undefined),
    },
    notify: config.notify
      ? {
          webhooks: config.notify.webhooks.map((w, i) => ({
            url: w.url,
            secret: w.secret,
            events: w.events,
            timeoutMs: duration(w.timeout, ['notify', 'webhooks', i, 'timeout']),
          })),
          queueLimit: config.notify.queueLimit,
          maxAttempts: config.notify.maxAttempts,
        }
      : null,
    inspection: {
      memoryBytes: sizeOrIssue(config.inspection?.memory ?? '256mb', ['inspection', 'memory'], issues),
      sendTimeoutMs: duration(config.inspection?.sendTimeout ?? '30s', ['inspection', 'sendTimeout']),
    },
    logLevel: config.log.level,
  }
  if (
    routes.some((r) => r.policy.challengeable) &&
    compiled.store.type === 'redis' &&
    compiled.actions.challenge.secret === undefined
  ) {
    issues.push({
      code: 'SLUICE_ERR_CONFIG_VALUE',
      path: ['actions', 'challenge'],
      message:
        'several instances share this Redis store, but challenges are signed with a random per-process key: a solution made for one instance would be refused by the others',
      hint: 'add secret: "${SLUICE_CHALLENGE_SECRET}" (the same on every instance)',
    })
  }
  if (issues.length > 0) throw new ConfigIssues(issues)
  return compiled
}

/** The Basic fingerprint key: its own secret, else another deployment secret (derived apart by its use). */
function identityKey(config: Defaulted): string | undefined {
  const basic = config.identity.find((id) => id.type === 'basic')
  return basic?.secret ?? config.privacy?.key ?? config.audit?.key ?? config.actions.challenge.secret
}

function compileAudit(
  a: NonNullable<SluiceConfig['audit']>,
  duration: (text: string, path: (string | number)[]) => number,
  issues: ConfigIssue[],
): CompiledAudit {
  return {
    file: a.file,
    key: a.key,
    fsync: a.fsync,
    fsyncIntervalMs: duration(a.fsyncInterval, ['audit', 'fsyncInterval']),
    maxBytes: a.rotate === undefined ? 0 : sizeOrIssue(a.rotate, ['audit', 'rotate'], issues),
    queueLimit: a.queueLimit,
  }
}

function patternOrIssue(
  path: string,
  caseSensitive: boolean,
  at: (string | number)[],
  issues: ConfigIssue[],
): PathPattern | null {
  try {
    return compilePattern(path, caseSensitive)
  } catch (err) {
    if (!(err instanceof PatternError)) throw err
    issues.push({
      code: 'SLUICE_ERR_CONFIG_ROUTE',
      path: at,
      message: err.message,
      hint: 'use literal segments, :name for one segment and * for the rest, e.g. /api/contacts/:id',
    })
    return null
  }
}

/** Bytes of a size (`512kb`, `4mb`, a number); a bad one is an issue (and 1, so compiling goes on). */
function sizeOrIssue(text: string | number, at: (string | number)[], issues: ConfigIssue[]): number {
  const bytes = parseSize(text)
  if (bytes !== undefined) return bytes
  issues.push({
    code: 'SLUICE_ERR_CONFIG_VALUE',
    path: at,
    message: `"${text}" is not a size`,
    hint: 'write e.g. 512kb, 4mb or 100mb',
  })
  return 1
}

function describeRecords(records: RecordsConfig | undefined): string {
  if (!records) return 'none'
  const split = 'split' in records && records.split ? ` split "${records.split}"` : ''
  if ('param' in records) return `path :${records.param}${split}`
  if ('query' in records) return `query ${records.query}${split}`
  if ('body' in records) return `request body ${records.body}`
  return `response ${compileAnswerOrNull(records.response)?.describe ?? JSON.stringify(records.response)}`
}

function compileAnswerOrNull(spec: AnswerSpec): AnswerExtractor | null {
  try {
    return compileAnswer(spec)
  } catch {
    return null
  }
}

function compileInspection(
  records: RecordsConfig | undefined,
  at: (string | number)[],
  issues: ConfigIssue[],
): Inspection | null {
  if (!records || 'param' in records || 'query' in records) return null
  const from = 'body' in records ? 'body' : 'response'
  let select: Selector = compileSelector('$')
  let answer: AnswerExtractor | null = null
  try {
    if ('body' in records) select = compileSelector(records.body)
    else answer = compileAnswer(records.response)
  } catch (err) {
    if (!(err instanceof SelectorError)) throw err
    const spec = 'response' in records ? records.response : null
    const kind =
      spec === null || typeof spec === 'string' ? null : Object.keys(spec).find((k) => k !== 'match' && k !== 'attr')
    issues.push({
      code: 'SLUICE_ERR_CONFIG_ROUTE',
      path: kind ? [...at, from, err.message.startsWith('match:') ? 'match' : kind] : [...at, from],
      message: err.message,
      hint:
        kind === 'html'
          ? 'e.g. "table.results tr[data-id]" with attr: data-id'
          : kind === 'xml'
            ? 'e.g. /Envelope/Body/lookupResponse/entry/@id or //entry/@id'
            : 'e.g. $.items[*].id, $[*].id or $.ids',
    })
  }
  const maxBytes = sizeOrIssue(records.maxInspectBytes ?? '4mb', [...at, 'maxInspectBytes'], issues)
  return {
    from,
    select,
    answer,
    maxBytes,
    maxIds: records.maxIds ?? 10_000,
    uninspectable: records.uninspectable ?? 'block',
  }
}

function keyInBody(records: { query: string; split?: string } | { param: string; split?: string }): Inspection {
  return {
    from: 'body',
    select: pathSelector(configuredPath('query' in records ? records.query : records.param)),
    answer: null,
    maxBytes: 4 * 1024 * 1024,
    maxIds: 10_000,
    uninspectable: 'block',
    ...(records.split !== undefined ? { split: records.split } : {}),
    unreadableIsEmpty: true,
  }
}

function compileSessions(
  s: SessionsConfig,
  config: Defaulted,
  issues: ConfigIssue[],
  duration: (text: string, path: (string | number)[]) => number,
): CompiledSessions | null {
  const caseSensitive = config.paths.caseSensitive
  const cookieIdentity = config.identity.some((id) => id.type === 'cookie' && id.name === s.login.cookie)
  if (!cookieIdentity) {
    issues.push({
      code: 'SLUICE_ERR_CONFIG_IDENTITY',
      path: ['sessions', 'login', 'cookie'],
      message: `sessions are bound through the ${s.login.cookie} cookie, but no identity reads it`,
      hint: `add { type: cookie, name: ${s.login.cookie} } to identity`,
    })
  }
  const login = patternOrIssue(s.login.path, caseSensitive, ['sessions', 'login', 'path'], issues)
  const logout = s.logout ? patternOrIssue(s.logout.path, caseSensitive, ['sessions', 'logout', 'path'], issues) : null
  if (!login || (s.logout && !logout)) return null
  const statuses = s.login.successStatus ? new Set(s.login.successStatus) : null
  return {
    login: {
      method: s.login.method ?? 'POST',
      pattern: login,
      usernameField: s.login.usernameField,
      cookie: s.login.cookie,
      success: statuses ? (status) => statuses.has(status) : (status) => status >= 200 && status < 400,
    },
    logout: s.logout && logout ? { method: s.logout.method ?? null, pattern: logout } : null,
    ttlMs: duration(s.ttl ?? '12h', ['sessions', 'ttl']),
    usernames: s.usernames ?? 'case-insensitive',
  }
}

function compileStore(
  store: Defaulted['store'],
  issues: ConfigIssue[],
  duration: (text: string, path: (string | number)[]) => number,
): CompiledConfig['store'] {
  if (store.type === 'memory') {
    if (store.state === undefined) return { type: 'memory', maxAccounts: store.maxAccounts }
    const { path, every = '10s', onCorrupt = 'start' } = store.state
    const everyMs = duration(every, ['store', 'state', 'every'])
    if (everyMs < 1000)
      issues.push({
        code: 'SLUICE_ERR_CONFIG_VALUE',
        path: ['store', 'state', 'every'],
        message: `"${every}" is too often: every write copies the whole store`,
        hint: 'write at least 1s (the default, 10s, loses at most 10 s of counting to a crash)',
      })
    return { type: 'memory', maxAccounts: store.maxAccounts, state: { path, everyMs, onCorrupt } }
  }
  const forms = [store.url, store.cluster, store.sentinels].filter((f) => f !== undefined).length
  if (forms !== 1) {
    issues.push({
      code: 'SLUICE_ERR_CONFIG_VALUE',
      path: ['store'],
      message: 'a redis store needs exactly one of url, cluster or sentinels',
      hint: 'url: redis://127.0.0.1:6379, or cluster: [redis://h1:7000, …], or sentinels: [redis://s1:26379, …] with name: <master>',
    })
  }
  if (store.sentinels !== undefined && store.name === undefined) {
    issues.push({
      code: 'SLUICE_ERR_CONFIG_VALUE',
      path: ['store', 'sentinels'],
      message: 'sentinels need the name of the master they watch',
      hint: 'add name: mymaster (the name in the sentinels\' "sentinel monitor" line)',
    })
  }
  for (const [i, u] of (store.sentinels ?? []).entries()) {
    try {
      new URL(u)
    } catch {
      issues.push({
        code: 'SLUICE_ERR_CONFIG_VALUE',
        path: ['store', 'sentinels', i],
        message: `"${u}" is not a Redis URL`,
      })
    }
  }
  for (const [i, u] of [store.url, ...(store.cluster ?? [])].entries()) {
    if (u === undefined) continue
    try {
      new URL(u)
    } catch {
      issues.push({
        code: 'SLUICE_ERR_CONFIG_VALUE',
        path: store.url !== undefined ? ['store', 'url'] : ['store', 'cluster', i - 1],
        message: `"${u}" is not a Redis URL`,
      })
    }
  }
  if (store.caFile !== undefined) {
    try {
      readFileSync(store.caFile)
    } catch (err) {
      issues.push({
        code: 'SLUICE_ERR_CONFIG_VALUE',
        path: ['store', 'caFile'],
        message: `cannot read ${store.caFile}: ${(err as Error).message}`,
      })
    }
  }
  const { commandTimeout, ...rest } = store
  return { ...rest, commandTimeoutMs: duration(commandTimeout, ['store', 'commandTimeout']) }
}

function compileLimits(
  route: RouteConfig,
  at: (string | number)[],
  issues: ConfigIssue[],
  duration: (text: string, path: (string | number)[]) => number,
): LimitSpec[] {
  const out: LimitSpec[] = []
  route.limits.forEach((limit, l) => {
    const path = [...at, 'limits', l]
    const windowMs = duration(limit.window, [...path, 'window'])
    const kinds = (['requests', 'distinctRecords', 'distinctAccounts'] as const).filter((k) => limit[k] !== undefined)
    if (kinds.length !== 1) {
      issues.push({
        code: 'SLUICE_ERR_CONFIG_LIMIT',
        path,
        message:
          kinds.length === 0
            ? 'a limit needs requests, distinctRecords or distinctAccounts'
            : `a limit counts one thing, not ${kinds.join(' and ')}`,
        hint: 'split it into two limits, e.g. { window: 1m, requests: 60, action: throttle } and { window: 10m, distinctRecords: 100, action: challenge }',
      })
      return
    }
    const kind = kinds[0] as LimitKind
    const per = limit.per ?? 'account'
    if (per === 'route' && limit.action !== 'log' && limit.allowRouteBlock !== true) {
      issues.push({
        code: 'SLUICE_ERR_CONFIG_LIMIT',
        path: [...path, 'action'],
        message: `a per: route limit blocks everyone on route "${route.name}", so it may only log`,
        hint: 'use action: log (an alert), or add allowRouteBlock: true to block the whole route while it is crossed',
      })
      return
    }
    if (limit.allowRouteBlock !== undefined && per !== 'route') {
      issues.push({
        code: 'SLUICE_ERR_CONFIG_LIMIT',
        path: [...path, 'allowRouteBlock'],
        message: 'allowRouteBlock only applies to per: route limits',
        hint: 'remove it, or add per: route',
      })
      return
    }
    if (limit.distinctRecords !== undefined && !route.records) {
      issues.push({
        code: 'SLUICE_ERR_CONFIG_LIMIT',
        path: [...path, 'distinctRecords'],
        message: `route "${route.name}" counts distinctRecords but does not say where records are`,
        hint: 'add records: { param: id } or records: { query: id } to the route',
      })
      return
    }
    if (windowMs > MAX_WINDOW_MS) {
      // Times are kept as 32-bit millisecond offsets (src/engine/windows.ts): 49.7 days.
      issues.push({
        code: 'SLUICE_ERR_CONFIG_LIMIT',
        path: [...path, 'window'],
        message: `window ${limit.window} is longer than ${formatMs(MAX_WINDOW_MS)}, the longest sluice counts`,
        hint: `use at most ${formatMs(MAX_WINDOW_MS)} (e.g. 30d)`,
      })
      return
    }
    out.push({ kind, per, windowMs, max: limit[kind] as number, action: limit.action })
  })
  return out
}

// Which key types can verify which algorithm family (by the algorithm's first two letters).
const KEY_TYPES: Record<string, string[]> = {
  RS: ['rsa'],
  PS: ['rsa', 'rsa-pss'],
  ES: ['ec'],
  Ed: ['ed25519', 'ed448'],
}

function checkIdentity(id: IdentityConfig, at: (string | number)[], issues: ConfigIssue[]): void {
  if (id.type !== 'jwt') return
  const hmac = id.algorithms.filter((a) => a.startsWith('HS'))
  if (hmac.length > 0 && hmac.length < id.algorithms.length) {
    // Mixing lets a token signed with the public key as an HMAC secret pass (key confusion).
    issues.push({
      code: 'SLUICE_ERR_CONFIG_IDENTITY',
      path: [...at, 'algorithms'],
      message: 'do not mix HS* with public-key algorithms in one extractor',
      hint: 'use two jwt extractors, one per key',
    })
    return
  }
  if (hmac.length > 0 && !id.secret)
    issues.push({
      code: 'SLUICE_ERR_CONFIG_IDENTITY',
      path: at,
      message: `${hmac.join(', ')} needs a secret`,
      hint: 'add secret: "${JWT_SECRET}"',
    })
  if (hmac.length === 0) {
    if (!id.publicKey) {
      issues.push({
        code: 'SLUICE_ERR_CONFIG_IDENTITY',
        path: at,
        message: `${id.algorithms.join(', ')} needs a publicKey (PEM)`,
        hint: 'add publicKey: "${JWT_PUBLIC_KEY}"',
      })
      return
    }
    let keyType: string | undefined
    try {
      keyType = (jwtKey({ publicKey: id.publicKey }) as KeyObject).asymmetricKeyType
    } catch (err) {
      issues.push({
        code: 'SLUICE_ERR_CONFIG_IDENTITY',
        path: [...at, 'publicKey'],
        message: `publicKey is not a PEM public key (${(err as Error).message})`,
      })
      return
    }
    const wrong = id.algorithms.filter((a) => !KEY_TYPES[a.slice(0, 2)]?.includes(keyType ?? ''))
    if (wrong.length > 0)
      issues.push({
        code: 'SLUICE_ERR_CONFIG_IDENTITY',
        path: [...at, 'algorithms'],
        message: `a ${keyType} key cannot verify ${wrong.join(', ')}`,
        hint: 'list only the algorithms your identity provider signs with this key',
      })
  }
}
