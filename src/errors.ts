// Every error a user can cause carries a stable code (grep for it in docs/configuration.md),
// the place it happened and, where we know one, the fix.

export type ConfigErrorCode =
  | 'SLUICE_ERR_CONFIG_READ' // the file cannot be read
  | 'SLUICE_ERR_CONFIG_YAML' // not valid YAML
  | 'SLUICE_ERR_CONFIG_ENV' // ${NAME} names a variable that is not set
  | 'SLUICE_ERR_CONFIG_UNKNOWN_KEY' // a key the schema does not know
  | 'SLUICE_ERR_CONFIG_SCHEMA' // a value of the wrong type or shape
  | 'SLUICE_ERR_CONFIG_DURATION' // a duration without a valid unit
  | 'SLUICE_ERR_CONFIG_ROUTE' // a route pattern that cannot be compiled
  | 'SLUICE_ERR_CONFIG_LIMIT' // a limit that cannot be enforced as written
  | 'SLUICE_ERR_CONFIG_IDENTITY' // an identity extractor that cannot work
  | 'SLUICE_ERR_CONFIG_VALUE' // any other value that is well-typed but wrong

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

export class SluiceError extends Error {
  readonly code: string
  constructor(code: string, message: string) {
    super(message)
    this.name = 'SluiceError'
    this.code = code
  }
}

/** One or more problems with a configuration; `format()` prints one line per problem. */
export class ConfigError extends SluiceError {
  readonly issues: ConfigIssue[]
  readonly file: string | undefined
  constructor(issues: ConfigIssue[], file?: string) {
    const first = issues[0]
    super(first?.code ?? 'SLUICE_ERR_CONFIG_VALUE', `invalid configuration${file ? ` in ${file}` : ''}: ${issues.length} problem(s)`)
    this.name = 'ConfigError'
    this.issues = issues
    this.file = file
  }

  format(): string {
    return this.issues.map((i) => formatIssue(i, this.file)).join('\n')
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

/** Thrown by compile steps: a list of issues with document paths, positioned by the loader. */
export class ConfigIssues extends Error {
  readonly issues: ConfigIssue[]
  constructor(issues: ConfigIssue[]) {
    super(issues.map((i) => `${pathToString(i.path)}: ${i.message}`).join('; '))
    this.issues = issues
  }
}
