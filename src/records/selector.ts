// A small JSON selector for record ids: `$`, then `.name`, `["name"]`, `[n]` (negative counts
// from the end) and `[*]` (every element or value). Compiled once to a plain walk: it runs on
// every inspected body, and a general JSONPath engine (filters, recursion, script) would be
// both slower and a larger surface than "where are the ids".
//
// What is selected becomes record ids: strings and numbers as text (1 and "1" are the same
// record, as the upstream's URLs treat them); an array selected as a whole yields its elements
// (`$.ids` and `$.ids[*]` mean the same: a batch form field `id=1&id=2` parses to an array);
// objects, booleans and null are not ids and are skipped.

import { SelectorError } from '../errors.js'

export type Step = { kind: 'key'; key: string } | { kind: 'index'; index: number } | { kind: 'all' }

export interface Selector {
  /** Walk a parsed value (plugin mode: the app's own parser already ran). */
  (value: unknown): string[]
  readonly steps: readonly Step[]
  /** The same steps with lower-cased keys: for readings whose keys are compared in any case (forms). */
  readonly lowerSteps: readonly Step[]
}

export { SelectorError }

export function compileSelector(text: string): Selector {
  return fromSteps(parseSelector(text))
}

/** `$.<name>`: one top-level field (a login form's user name). */
export function fieldSelector(name: string): Selector {
  return fromSteps([{ kind: 'key', key: name }])
}

/** The field at a key path (`filter[id]` as ['filter', 'id']): a query record's key in a body. */
export function pathSelector(path: readonly string[]): Selector {
  return fromSteps(path.map((key) => ({ kind: 'key' as const, key })))
}

function fromSteps(steps: Step[]): Selector {
  const select = (value: unknown) => {
    const out: string[] = []
    walk(value, steps, 0, out)
    return out
  }
  const lowerSteps = steps.map((s) => (s.kind === 'key' ? { kind: 'key' as const, key: s.key.toLowerCase() } : s))
  return Object.assign(select, { steps, lowerSteps })
}

/** Walk with explicit steps (e.g. lowerSteps over a form reading). */
export function selectWith(value: unknown, steps: readonly Step[]): string[] {
  const out: string[] = []
  walk(value, steps, 0, out)
  return out
}

export function parseSelector(text: string): Step[] {
  const s = text.trim()
  if (!s.startsWith('$')) throw new SelectorError(`"${text}" must start with $ (the document root), e.g. $.items[*].id`)
  const steps: Step[] = []
  let i = 1
  while (i < s.length) {
    const c = s[i]
    if (c === '.') {
      if (s[i + 1] === '.')
        throw new SelectorError(`"${text}": recursive descent (..) is not supported; name the path to the ids`)
      const m = /^[A-Za-z_$][\w$-]*|^\*/.exec(s.slice(i + 1))
      if (!m) throw new SelectorError(`"${text}": expected a name after "." at character ${i + 1}`)
      steps.push(m[0] === '*' ? { kind: 'all' } : { kind: 'key', key: m[0] })
      i += 1 + m[0].length
    } else if (c === '[') {
      const close = s.indexOf(']', i)
      if (close < 0) throw new SelectorError(`"${text}": unclosed [ at character ${i}`)
      const inner = s.slice(i + 1, close).trim()
      if (inner === '*') steps.push({ kind: 'all' })
      else if (/^-?\d+$/.test(inner)) steps.push({ kind: 'index', index: Number(inner) })
      else if (/^'[^']*'$|^"[^"]*"$/.test(inner)) steps.push({ kind: 'key', key: inner.slice(1, -1) })
      else throw new SelectorError(`"${text}": [${inner}] is not [*], [n] or ["name"] (filters are not supported)`)
      i = close + 1
    } else {
      throw new SelectorError(`"${text}": unexpected "${c}" at character ${i}; write e.g. $.items[*].id`)
    }
  }
  return steps
}

function walk(value: unknown, steps: readonly Step[], at: number, out: string[]): void {
  if (at === steps.length) return collect(value, out, true)
  const step = steps[at] as Step
  if (value === null || typeof value !== 'object') return
  if (step.kind === 'key') {
    // Own properties only: "__proto__" or "constructor" in a selector must not reach prototypes.
    if (Object.prototype.hasOwnProperty.call(value, step.key))
      walk((value as Record<string, unknown>)[step.key], steps, at + 1, out)
  } else if (step.kind === 'index') {
    if (Array.isArray(value)) {
      const i = step.index < 0 ? value.length + step.index : step.index
      if (i >= 0 && i < value.length) walk(value[i], steps, at + 1, out)
    }
  } else {
    for (const v of Array.isArray(value) ? value : Object.values(value)) walk(v, steps, at + 1, out)
  }
}

function collect(value: unknown, out: string[], unwrap: boolean): void {
  if (typeof value === 'string') {
    if (value !== '') out.push(value)
  } else if (typeof value === 'number') {
    if (Number.isFinite(value)) out.push(String(value))
  } else if (unwrap && Array.isArray(value)) {
    for (const v of value) collect(v, out, false)
  }
}
