// YAML text → a validated, defaulted config, or a ConfigError listing every problem with its
// file:line:col and, where we can tell, the fix.
import { readFile } from 'node:fs/promises'
import { Ajv, type ErrorObject } from 'ajv'
import {
  LineCounter,
  Scalar,
  isMap,
  isNode,
  isPair,
  isScalar,
  parseDocument,
  visit,
  type Document,
  type Node,
} from 'yaml'
import { ConfigError, ConfigIssues, type ConfigIssue } from '../errors.js'
import { DURATION_HINT } from './duration.js'
import { scrub, secretsIn, shownValue } from './redact.js'
import { jsonSchema, type SluiceConfig } from './schema.js'

export interface ParseOptions {
  env?: Record<string, string | undefined>
  /** Semantic checks on the defaulted config; may throw ConfigIssues, which get positioned too. */
  check?: (config: SluiceConfig) => void
  /** Receives the file's text as read (loadConfigFile), e.g. to hash it. */
  onText?: (text: string) => void
}

const ajv = new Ajv({
  allErrors: true,
  useDefaults: true,
  discriminator: true,
  strict: true,
  strictRequired: false,
  allowUnionTypes: true,
  verbose: true,
})
const validate = ajv.compile<SluiceConfig>(jsonSchema())
const ENV_REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g
const WHOLE_REF = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/

export async function loadConfigFile(file: string, options: ParseOptions = {}): Promise<SluiceConfig> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message
    throw new ConfigError(
      [
        {
          code: 'SLUICE_ERR_CONFIG_READ',
          path: [],
          message: `cannot read the config file: ${reason}`,
          hint: 'pass the path of your sluice.yaml with -c',
        },
      ],
      file,
    )
  }
  options.onText?.(text)
  return parseConfigText(text, file, options)
}

export function parseConfigText(text: string, file: string, options: ParseOptions = {}): SluiceConfig {
  const env = options.env ?? process.env
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const at = (offset: number | undefined) => {
    if (offset === undefined) return {}
    const { line, col } = lineCounter.linePos(offset)
    return { line, col }
  }

  // (One mistake often raises two errors at one place: the first says it.)
  const yamlIssues: ConfigIssue[] = doc.errors
    .filter((e, i) => doc.errors.findIndex((f) => f.pos[0] === e.pos[0]) === i)
    .map((e) => ({
      code: 'SLUICE_ERR_CONFIG_YAML',
      path: [],
      message: yamlMessage(e.message),
      ...yamlHint(e.message, e.code),
      ...at(e.pos[0]),
    }))
  if (yamlIssues.length > 0) throw new ConfigError(yamlIssues, file)
  if (!isMap(doc.contents)) {
    throw new ConfigError(
      [
        {
          code: 'SLUICE_ERR_CONFIG_YAML',
          path: [],
          message: 'the config must be a YAML mapping (version: 1, upstream: …, routes: …)',
          ...at(isNode(doc.contents) ? doc.contents.range?.[0] : 0),
        },
      ],
      file,
    )
  }

  // Every stage after YAML runs even when an earlier one found problems, so one run reports them
  // all: a value whose ${VAR} is unset is left out of the later stages (it would only repeat it).
  const unsetNodes = new Set<unknown>()
  const issues = substituteEnv(doc, env, at, unsetNodes)
  const unset = (path: (string | number)[]) => unsetNodes.size > 0 && unsetNodes.has(doc.getIn(path, true))

  const config = doc.toJS() as SluiceConfig
  // A secret never appears in a message, whichever stage wrote it (an echoed URL, a value).
  const secrets = [...secretsIn(config)].filter((x) => x.length >= 4)
  const fail = (all: ConfigIssue[]) =>
    new ConfigError(
      sortIssues(
        all.map((i) => ({
          ...i,
          message: scrub(i.message, secrets),
          ...(i.hint !== undefined ? { hint: scrub(i.hint, secrets) } : {}),
        })),
      ),
      file,
    )
  if (!validate(config)) {
    issues.push(...schemaIssues(validate.errors ?? [], config, doc, at).filter((i) => !unset(i.path)))
    throw fail(issues)
  }
  try {
    options.check?.(config)
  } catch (err) {
    if (!(err instanceof ConfigIssues)) {
      // An unset variable's empty value may trip a check that assumes a valid one: its own issue says why.
      if (issues.length > 0) throw fail(issues)
      throw err
    }
    issues.push(...err.issues.filter((i) => !unset(i.path)).map((i) => ({ ...i, ...locate(doc, i.path, false, at) })))
  }
  if (issues.length > 0) throw fail(issues)
  return config
}

// ─── environment ──────────────────────────────────────────────────────────────────────────

function substituteEnv(
  doc: Document,
  env: Record<string, string | undefined>,
  at: (o?: number) => object,
  unset: Set<unknown>,
): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  visit(doc, {
    Pair(_key, pair) {
      // Values only: a key that looks like ${X} stays a key.
      const value = pair.value
      if (!isScalar(value) || typeof value.value !== 'string' || !value.value.includes('${')) return
      const text = value.value
      const missing: string[] = []
      const replaced = text.replace(ENV_REF, (match, name: string | undefined) => {
        if (match === '$${') return '${'
        const v = env[name as string]
        if (v === undefined || v === '') missing.push(name as string)
        return v ?? ''
      })
      for (const name of missing) {
        issues.push({
          code: 'SLUICE_ERR_CONFIG_ENV',
          path: [],
          message: `environment variable ${name} is not set`,
          hint: `export ${name}=… before starting sluice, or write the value in the file`,
          ...at(value.range?.[0]),
        })
      }
      if (missing.length > 0) unset.add(value)
      const whole = WHOLE_REF.exec(text)
      value.value = whole && missing.length === 0 ? typed(replaced) : replaced
    },
  })
  return issues
}

/** `port: ${PORT}` with PORT=8080 is the number 8080, as if it had been written there. */
function typed(value: string): string | number | boolean {
  if (/^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/.test(value)) return Number(value)
  if (value === 'true' || value === 'false') return value === 'true'
  return value
}

// ─── schema errors ────────────────────────────────────────────────────────────────────────

const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$'

function schemaIssues(
  errors: ErrorObject[],
  config: unknown,
  doc: Document,
  at: (o?: number) => object,
): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  const seen = new Set<string>()
  // A value failing a union of literals yields one error per branch plus the anyOf: keep one.
  const anyOfAt = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath))
  for (const e of errors) {
    const path = pointerToPath(e.instancePath)
    const value = valueAt(config, path)
    if (anyOfAt.has(e.instancePath) && e.keyword !== 'anyOf') continue
    let issue: Omit<ConfigIssue, 'line' | 'col'>
    let keyNode = false
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = (e.params as { additionalProperty: string }).additionalProperty
        const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {}).filter(
          (k) => k !== '$schema',
        )
        const guess = suggest(key, known)
        issue = {
          code: 'SLUICE_ERR_CONFIG_UNKNOWN_KEY',
          path: [...path, key],
          message: `unknown key "${key}"`,
          hint: guess ? `did you mean "${guess}"?` : `known keys here: ${known.join(', ')}`,
        }
        keyNode = true
        break
      }
      case 'pattern':
        if ((e.params as { pattern: string }).pattern === DURATION_PATTERN) {
          issue = {
            code: 'SLUICE_ERR_CONFIG_DURATION',
            path,
            message: `${shownValue(path, value)} is not a duration`,
            hint: DURATION_HINT,
          }
        } else {
          issue = {
            code: 'SLUICE_ERR_CONFIG_SCHEMA',
            path,
            message: `${shownValue(path, value)} ${describePattern(e)}`,
          }
        }
        break
      case 'anyOf':
      case 'const':
      case 'enum': {
        const choices = literalChoices(e)
        const guess = choices && typeof value === 'string' ? suggest(value, choices) : undefined
        issue = choices
          ? {
              code: 'SLUICE_ERR_CONFIG_SCHEMA',
              path,
              message: `${shownValue(path, value)} must be one of: ${choices.join(', ')}`,
              ...(guess !== undefined ? { hint: `did you mean "${guess}"?` } : {}),
            }
          : {
              code: 'SLUICE_ERR_CONFIG_SCHEMA',
              path,
              message: `${shownValue(path, value)} is not valid here (${firstBranchMessage(e, errors)})`,
            }
        break
      }
      case 'discriminator': {
        const variants = ((e.parentSchema as { oneOf?: { properties?: { type?: { const?: string } } }[] })?.oneOf ?? [])
          .map((v) => v.properties?.type?.const)
          .filter(Boolean)
        const tag = (e.params as { tagValue?: unknown }).tagValue
        issue =
          tag === undefined
            ? { code: 'SLUICE_ERR_CONFIG_SCHEMA', path, message: `missing "type" (one of: ${variants.join(', ')})` }
            : {
                code: 'SLUICE_ERR_CONFIG_SCHEMA',
                path: [...path, 'type'],
                message: `type ${JSON.stringify(tag)} is not one of: ${variants.join(', ')}`,
              }
        break
      }
      case 'required':
        issue = {
          code: 'SLUICE_ERR_CONFIG_SCHEMA',
          path,
          message: `missing required key "${(e.params as { missingProperty: string }).missingProperty}"`,
        }
        break
      case 'minItems':
        issue = {
          code: 'SLUICE_ERR_CONFIG_SCHEMA',
          path,
          message: `needs at least ${(e.params as { limit: number }).limit} entr${(e.params as { limit: number }).limit === 1 ? 'y' : 'ies'}`,
        }
        break
      case 'minimum':
      case 'maximum':
      case 'minLength':
        issue = {
          code: 'SLUICE_ERR_CONFIG_SCHEMA',
          path,
          message: `${shownValue(path, value)} ${e.message ?? 'is out of range'}`,
        }
        break
      case 'type':
        if ((e.parentSchema as { pattern?: string } | undefined)?.pattern === DURATION_PATTERN) {
          // `window: 600`: a number where a duration goes; the unit is the question.
          issue = {
            code: 'SLUICE_ERR_CONFIG_DURATION',
            path,
            message: `${describeValue(path, value)} is not a duration (it has no unit)`,
            hint: `write a duration with a unit, e.g. ${durationExample(value)}`,
          }
          break
        }
        issue = {
          code: 'SLUICE_ERR_CONFIG_SCHEMA',
          path,
          message: `must be ${article((e.params as { type: string }).type)}, got ${describeValue(path, value)}`,
        }
        break
      default:
        issue = { code: 'SLUICE_ERR_CONFIG_SCHEMA', path, message: `${e.message ?? 'is not valid'}` }
    }
    const id = `${issue.path.join('/')}|${issue.code}`
    if (seen.has(id)) continue
    seen.add(id)
    issues.push({ ...issue, ...locate(doc, issue.path, keyNode, at) })
  }
  return issues
}

function literalChoices(e: ErrorObject): string[] | null {
  const schema = e.parentSchema as { anyOf?: { const?: unknown }[]; enum?: unknown[]; const?: unknown } | undefined
  if (e.keyword === 'const') return [String((e.params as { allowedValue: unknown }).allowedValue)]
  if (e.keyword === 'enum') return ((e.params as { allowedValues: unknown[] }).allowedValues ?? []).map(String)
  const consts = schema?.anyOf?.map((b) => b.const)
  return consts && consts.every((c) => c !== undefined) ? consts.map(String) : null
}

/** For a union of shapes (e.g. records: {param} | {query}): what the first shape wanted. */
function firstBranchMessage(e: ErrorObject, all: ErrorObject[]): string {
  const branch = all.find((x) => x !== e && x.schemaPath.startsWith(`${e.schemaPath}/0/`))
  if (!branch) return 'see docs/configuration.md'
  if (branch.keyword === 'additionalProperties')
    return `unexpected key "${(branch.params as { additionalProperty: string }).additionalProperty}"`
  if (branch.keyword === 'required')
    return `expected e.g. { ${(branch.params as { missingProperty: string }).missingProperty}: … }`
  return branch.message ?? 'see docs/configuration.md'
}

function describePattern(e: ErrorObject): string {
  const p = (e.params as { pattern: string }).pattern
  if (p === '^/') return 'must start with "/"'
  if (p === '^https?://') return 'must be an http:// or https:// URL'
  if (p === '^rediss?://') return 'must be a redis:// or rediss:// URL'
  if (p === '^[A-Za-z0-9_.-]+$') return 'may only contain letters, digits, "_", "." and "-"'
  return `must match ${p}`
}

function article(type: string): string {
  return (
    (
      {
        integer: 'a whole number',
        number: 'a number',
        string: 'a string',
        boolean: 'true or false',
        array: 'a list',
        object: 'a mapping',
      } as Record<string, string>
    )[type] ?? type
  )
}

function describeValue(path: (string | number)[], v: unknown): string {
  if (v === null || v === undefined) return 'nothing'
  if (Array.isArray(v)) return 'a list'
  if (typeof v === 'object') return 'a mapping'
  return shownValue(path, v)
}

/** `600` → "600s or 10m": the number read as seconds, and a shorter unit when it divides. */
function durationExample(v: unknown): string {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) return '30s or 10m'
  const s = `${v}s`
  if (v % 86_400 === 0) return `${s} or ${v / 86_400}d`
  if (v % 3600 === 0) return `${s} or ${v / 3600}h`
  if (v % 60 === 0) return `${s} or ${v / 60}m`
  return `${s} or ${v * 1000}ms`
}

/** Closest known key within edit distance 2 (or a case-insensitive match). */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = 3
  for (const c of candidates) {
    const d = c.toLowerCase() === word.toLowerCase() ? 0 : distance(word, c)
    if (d < bestDistance) {
      best = c
      bestDistance = d
    }
  }
  return best
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j] as number
      row[j] = Math.min((row[j] as number) + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = tmp
    }
  }
  return row[b.length] as number
}

// ─── positions ────────────────────────────────────────────────────────────────────────────

function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === '') return []
  return pointer
    .slice(1)
    .split('/')
    .map((p) => {
      const key = p.replace(/~1/g, '/').replace(/~0/g, '~')
      return /^[0-9]+$/.test(key) ? Number(key) : key
    })
}

function valueAt(root: unknown, path: (string | number)[]): unknown {
  let v = root
  for (const p of path) v = v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[p] : undefined
  return v
}

/** The deepest node of `path` that exists in the document (the key itself for unknown keys). */
function locate(
  doc: Document,
  path: (string | number)[],
  keyNode: boolean,
  at: (o?: number) => object,
): { line?: number; col?: number } {
  for (let depth = path.length; depth >= 0; depth--) {
    const sub = path.slice(0, depth)
    if (keyNode && depth === path.length && sub.length > 0) {
      const parent = sub.length === 1 ? doc.contents : doc.getIn(sub.slice(0, -1), true)
      if (isMap(parent)) {
        const pair = parent.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === sub[sub.length - 1])
        if (pair && isNode(pair.key)) return at((pair.key as Node).range?.[0])
      }
      continue
    }
    const node = sub.length === 0 ? doc.contents : doc.getIn(sub, true)
    if (isNode(node)) return at(node.range?.[0])
    if (node instanceof Scalar) return at(node.range?.[0])
  }
  return {}
}

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.col ?? 0) - (b.col ?? 0))
}

// ─── YAML messages ────────────────────────────────────────────────────────────────────────

function yamlMessage(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '')
}

function yamlHint(message: string, code: string): { hint?: string } {
  if (code === 'DUPLICATE_KEY')
    return { hint: 'each key may appear once per mapping; remove or merge the repeated one' }
  if (/tab/i.test(message)) return { hint: 'indent with spaces, not tabs' }
  if (
    code === 'BAD_INDENT' ||
    code === 'MULTILINE_IMPLICIT_KEY' ||
    code === 'BLOCK_AS_IMPLICIT_KEY' ||
    /without - indicator/.test(message)
  )
    return {
      hint: 'check the indentation here and on the next lines: the keys of one mapping start in the same column (name:, path:, records: under one "- "), a nested one further right',
    }
  if (code === 'MISSING_CHAR' || code === 'UNEXPECTED_TOKEN' || /flow/i.test(message)) {
    return {
      hint: 'inside { … } an ${ENV} reference must be quoted: secret: "${JWT_SECRET}"; otherwise check for an unclosed bracket or quote',
    }
  }
  return {}
}
