// Every error sluice throws is declared here, on one base class (SluiceError), with a stable
// code; the modules that throw them re-export their own. docs/configuration.md ("Errors") lists
// every code once; test/errors.test.ts keeps the two, and the codes written in src/, in step.
// A user-facing error says the place it happened and, where we know one, the fix.

/** Every code and what it means. */
export const ERROR_CODES = {
  // The configuration: `sluice check`/`start` print each problem as file:line:col (a ConfigIssue).
  SLUICE_ERR_CONFIG_READ: 'the config file cannot be read',
  SLUICE_ERR_CONFIG_YAML: 'not valid YAML, or not a YAML mapping',
  SLUICE_ERR_CONFIG_ENV: '${NAME} names a variable that is not set (or is empty)',
  SLUICE_ERR_CONFIG_UNKNOWN_KEY: 'a key the schema does not know',
  SLUICE_ERR_CONFIG_SCHEMA: 'a value of the wrong type or shape, or a missing required key',
  SLUICE_ERR_CONFIG_DURATION: 'a duration without a valid unit, or zero',
  SLUICE_ERR_CONFIG_ROUTE: 'a route pattern or records selector that cannot be compiled, or a duplicate route name',
  SLUICE_ERR_CONFIG_LIMIT: 'a limit that cannot be enforced as written',
  SLUICE_ERR_CONFIG_IDENTITY: 'an identity extractor that cannot work (a JWT key missing or wrong)',
  SLUICE_ERR_CONFIG_VALUE: 'any other value that is well-typed but wrong',
  SLUICE_ERR_CONFIG_OVERRIDE:
    'an override that cannot apply (no matcher, both or neither of exempt and scale, a bad CIDR, an unknown route)',

  // At start: sluice refuses to run.
  SLUICE_ERR_LISTEN: 'the listen address is in use or needs privileges',
  SLUICE_ERR_AUDIT_OPEN: 'the audit file cannot be opened or read (permissions, missing directory)',
  SLUICE_ERR_AUDIT_KEY: 'the last audit entry does not verify with the configured key',
  SLUICE_ERR_AUDIT_CORRUPT: 'the end of the audit file holds no valid entry',
  SLUICE_ERR_NOTIFY_URL: 'a webhook URL is not an http(s) URL',
  SLUICE_ERR_NOTIFY_SECRET: 'a webhook secret is empty',
  SLUICE_ERR_STATE_PATH: "the state file's directory does not exist or is not writable",
  SLUICE_ERR_STATE_CORRUPT: 'the state file does not verify and store.state.onCorrupt is refuse',

  // `sluice replay`.
  SLUICE_ERR_REPLAY_INPUT: 'a log file cannot be read',
  SLUICE_ERR_REPLAY_REPORT: 'the report file cannot be written',

  // The admin API, as the `code` of its problem details (docs/admin.md).
  SLUICE_ERR_ADMIN_UNAUTHORIZED: 'no bearer token, or not the configured one',
  SLUICE_ERR_ADMIN_BAD_REQUEST: 'a parameter the API cannot use (the detail names it)',
  SLUICE_ERR_ADMIN_NOT_FOUND: 'no such endpoint, or an account the store knows nothing about',
  SLUICE_ERR_ADMIN_STORE: 'the store (Redis) did not answer',
  SLUICE_ERR_ADMIN_RELOAD_REJECTED: 'the new config is invalid; the running one stays',
  SLUICE_ERR_ADMIN_RELOAD_UNSUPPORTED: 'this admin listener has no reload hook',
  SLUICE_ERR_ADMIN_INTERNAL: 'a bug, or a reload that failed to run: see the log',

  // Inside sluice: each is answered where it is caught, never shown with its code.
  SLUICE_ERR_AMBIGUOUS_IDENTITY: 'a credential sent twice with different values (answered 400)',
  SLUICE_ERR_STORE_UNAVAILABLE: 'Redis is unreachable (the store failure policy answers)',
  SLUICE_ERR_ROUTE_PATTERN: 'a path pattern that cannot be compiled (reported as SLUICE_ERR_CONFIG_ROUTE)',
  SLUICE_ERR_RECORDS_SELECTOR: 'a records selector that cannot be compiled (reported as SLUICE_ERR_CONFIG_ROUTE)',
  SLUICE_ERR_RECORDS_JSON: 'a body that is not one JSON value, or nested too deep',
  SLUICE_ERR_RECORDS_UNINSPECTABLE:
    "a body that cannot be read for record ids (the route's uninspectable policy answers)",
  SLUICE_ERR_RECORDS_BROKEN: "the upstream's answer broke off while it was read (answered 502)",
} as const

export type SluiceErrorCode = keyof typeof ERROR_CODES
export type ConfigErrorCode = Extract<SluiceErrorCode, `SLUICE_ERR_CONFIG_${string}`>
export type AdminErrorCode = Extract<SluiceErrorCode, `SLUICE_ERR_ADMIN_${string}`>

export class SluiceError extends Error {
  readonly code: SluiceErrorCode
  constructor(code: SluiceErrorCode, message: string) {
    super(message)
    this.name = 'SluiceError'
    this.code = code
  }
}

// ---- configuration --------------------------------------------------------------------------

export interface ConfigIssue {
  code: ConfigErrorCode
  /** Where in the document: keys and array indexes from the root. */
  path: (string | number)[]
  message: string
  /** What to write instead, when we can tell. */
  hint?: string
  /** 1-based position in the file, filled in by the loader when it knows the document. */
  line?: number
  col?: number
}

/** One or more problems with a configuration; `format()` prints one line per problem. */
export class ConfigError extends SluiceError {
  declare readonly code: ConfigErrorCode
  readonly issues: ConfigIssue[]
  readonly file: string | undefined
  constructor(issues: ConfigIssue[], file?: string) {
    const first = issues[0]
    super(
      first?.code ?? 'SLUICE_ERR_CONFIG_VALUE',
      `invalid configuration${file ? ` in ${file}` : ''}: ${issues.length} problem(s)`,
    )
    this.name = 'ConfigError'
    this.issues = issues
    this.file = file
  }

  format(): string {
    return this.issues.map((i) => formatIssue(i, this.file)).join('\n')
  }
}

/** Thrown by compile steps: a list of issues with document paths, positioned by the loader. */
export class ConfigIssues extends SluiceError {
  declare readonly code: ConfigErrorCode
  readonly issues: ConfigIssue[]
  constructor(issues: ConfigIssue[]) {
    super(
      issues[0]?.code ?? 'SLUICE_ERR_CONFIG_VALUE',
      issues.map((i) => `${pathToString(i.path)}: ${i.message}`).join('; '),
    )
    this.name = 'ConfigIssues'
    this.issues = issues
  }
}

export function formatIssue(issue: ConfigIssue, file?: string): string {
  const where = [file ?? '<config>', issue.line, issue.col].filter((x) => x !== undefined).join(':')
  const at = issue.path.length > 0 ? ` at ${pathToString(issue.path)}` : ''
  const hint = issue.hint ? `\n    fix: ${issue.hint}` : ''
  return `${where}: ${issue.code}${at}: ${issue.message}${hint}`
}

/** `routes[0].limits[1].window` — the way a person reads a YAML location. */
export function pathToString(path: readonly (string | number)[]): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else out += out === '' ? part : `.${part}`
  }
  return out
}

/** A path pattern that cannot be compiled; the message says what is wrong and how to fix it. */
export class PatternError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_ERR_ROUTE_PATTERN', message)
    this.name = 'PatternError'
  }
}

/** A records selector (`$.items[*].id`) that cannot be compiled. */
export class SelectorError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_ERR_RECORDS_SELECTOR', message)
    this.name = 'SelectorError'
  }
}

// ---- requests -------------------------------------------------------------------------------

/** A credential sent more than once with different values: which one counts is not ours to pick. */
export class AmbiguousIdentityError extends SluiceError {
  declare readonly code: 'SLUICE_ERR_AMBIGUOUS_IDENTITY'
  constructor(message: string) {
    super('SLUICE_ERR_AMBIGUOUS_IDENTITY', message)
    this.name = 'AmbiguousIdentityError'
  }
}

/** A text that is not one JSON value (or is nested deeper than the reader goes). */
export class JsonTextError extends SluiceError {
  constructor(
    message: string,
    /** Offset in the text (UTF-16 code units) where reading stopped. */
    readonly position: number,
  ) {
    super('SLUICE_ERR_RECORDS_JSON', `${message} at position ${position}`)
    this.name = 'JsonTextError'
  }
}

/** A body that cannot be read for record ids: the route's `uninspectable` policy decides. */
export class UninspectableError extends SluiceError {
  /**
   * @param hides the body may name ids that a server reads all the same (a charset sluice cannot
   *   decode, which Tomcat may): never taken as naming none.
   */
  constructor(
    message: string,
    readonly hides = false,
  ) {
    super('SLUICE_ERR_RECORDS_UNINSPECTABLE', message)
    this.name = 'UninspectableError'
  }
}

/** The body stream failed while it was read (the upstream broke off): nothing complete can be sent. */
export class BrokenBodyError extends SluiceError {
  constructor(cause: unknown) {
    super('SLUICE_ERR_RECORDS_BROKEN', (cause as Error)?.message ?? String(cause))
    this.name = 'BrokenBodyError'
    this.cause = cause
  }
}

/** Redis is unreachable (or its circuit breaker is open): the store's failure policy answers. */
export class RedisUnavailableError extends SluiceError {
  declare readonly code: 'SLUICE_ERR_STORE_UNAVAILABLE'
  constructor(message = 'redis unavailable') {
    super('SLUICE_ERR_STORE_UNAVAILABLE', message)
    this.name = 'RedisUnavailableError'
  }
}

// ---- the admin API --------------------------------------------------------------------------

/** How the admin API answers each of its codes, as RFC 9457 problem details. */
export const ADMIN_PROBLEMS: Readonly<Record<AdminErrorCode, { status: number; title: string; kind: string }>> = {
  SLUICE_ERR_ADMIN_UNAUTHORIZED: { status: 401, title: 'Unauthorized', kind: 'unauthorized' },
  SLUICE_ERR_ADMIN_BAD_REQUEST: { status: 400, title: 'Bad Request', kind: 'bad-request' },
  SLUICE_ERR_ADMIN_NOT_FOUND: { status: 404, title: 'Not Found', kind: 'not-found' },
  SLUICE_ERR_ADMIN_STORE: { status: 503, title: 'Store Unavailable', kind: 'store-unavailable' },
  SLUICE_ERR_ADMIN_RELOAD_REJECTED: { status: 422, title: 'Configuration Rejected', kind: 'reload-rejected' },
  SLUICE_ERR_ADMIN_RELOAD_UNSUPPORTED: { status: 501, title: 'Not Implemented', kind: 'reload-unsupported' },
  SLUICE_ERR_ADMIN_INTERNAL: { status: 500, title: 'Internal Server Error', kind: 'internal' },
}

/** An admin API failure; sendAdminProblem (admin/problem.ts) answers it. */
export class AdminError extends SluiceError {
  declare readonly code: AdminErrorCode
  readonly status: number
  readonly extra: Record<string, unknown> | undefined
  constructor(code: AdminErrorCode, detail: string, extra?: Record<string, unknown>) {
    super(code, detail)
    this.name = 'AdminError'
    this.status = ADMIN_PROBLEMS[code].status
    this.extra = extra
  }
}
