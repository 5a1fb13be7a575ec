// Record ids in an XML (SOAP) answer, found by an XPath subset while saxes reads it once:
//   `/Envelope/Body/lookupResponse/entry/@id`   child steps from the root
//   `//entry/@id`, `/Envelope//entry`           `//`: any depth
//   `*`                                         any element
//   `@attr` (last)                              an attribute's value
//   `text()` (last), or an element step last    the element's text
// Namespace prefixes are ignored on both sides (`soap:Body` is `Body`): a legacy service's
// prefixes vary with its toolkit, its element names do not. Predicates and axes other than
// child and descendant are config errors. A document that is not well-formed is uninspectable.
import { SaxesParser } from 'saxes'
import { SelectorError, UninspectableError } from '../../errors.js'

interface Step {
  name: string // local name, or '*'
  /** Reached from the previous step through any number of levels (`//`). */
  deep: boolean
}

export interface XPath {
  steps: Step[]
  /** The attribute whose value is the id, or null for the element's text. */
  attr: string | null
}

const NAME = /^(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*|\*)$/

export function compileXPath(text: string): XPath {
  const fail = (why: string) => new SelectorError(`XPath "${text}": ${why}`)
  if (!text.startsWith('/')) throw fail('start at the root: /Envelope/… or //element')
  const parts = text.split('/')
  const steps: Step[] = []
  let attr: string | null = null
  let deep = false
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i] as string
    if (part === '') {
      if (deep || i === parts.length - 1) throw fail('an empty step')
      deep = true
      continue
    }
    const last = i === parts.length - 1
    if (part.startsWith('@')) {
      if (!last) throw fail('an attribute step (@name) can only be the last')
      const m = NAME.exec(part.slice(1))
      if (!m || m[1] === '*') throw fail(`"${part}" is not an attribute name`)
      attr = m[1] as string
    } else if (part === 'text()') {
      if (!last) throw fail('text() can only be the last step')
    } else {
      const m = NAME.exec(part)
      if (!m)
        throw fail(`"${part}" is not in the supported subset (element names, *, //, @attr, text(); no predicates)`)
      steps.push({ name: m[1] as string, deep })
    }
    deep = false
  }
  if (steps.length === 0) throw fail('name at least one element')
  return { steps, attr }
}

function local(name: string): string {
  const colon = name.indexOf(':')
  return colon < 0 ? name : name.slice(colon + 1)
}

/** Do the elements of `stack` (local names, root first) match the steps exactly (the last is the stack's top)? */
function matches(steps: readonly Step[], k: number, stack: readonly string[], at: number): boolean {
  const step = steps[k] as Step
  if (step.name !== '*' && step.name !== stack[at]) return false
  if (k === 0) return step.deep ? true : at === 0
  if (!step.deep) return at > 0 && matches(steps, k - 1, stack, at - 1)
  for (let i = at - 1; i >= 0; i--) if (matches(steps, k - 1, stack, i)) return true
  return false
}

/** The same over text in pieces: saxes reads it as it comes. Not well-formed: UninspectableError, as soon as seen. */
export function xmlReader(path: XPath): { write(text: string): void; end(): string[] } {
  const out: string[] = []
  const stack: string[] = []
  const capturing: { depth: number; text: string[] }[] = []
  const parser = new SaxesParser({ xmlns: false })
  parser.on('opentag', (node) => {
    stack.push(local(node.name))
    if (!matches(path.steps, path.steps.length - 1, stack, stack.length - 1)) return
    if (path.attr === null) return void capturing.push({ depth: stack.length, text: [] })
    for (const [name, value] of Object.entries(node.attributes)) {
      if (local(name) === path.attr) out.push(String(value))
    }
  })
  const text = (t: string) => {
    for (const c of capturing) c.text.push(t)
  }
  parser.on('text', text)
  parser.on('cdata', text)
  parser.on('closetag', () => {
    while (capturing.length > 0 && (capturing[capturing.length - 1] as { depth: number }).depth >= stack.length)
      out.push((capturing.pop() as { text: string[] }).text.join('').trim())
    stack.pop()
  })
  parser.on('error', (err) => {
    throw new UninspectableError(`not well-formed XML: ${err.message}`)
  })
  const guard = (f: () => void) => {
    try {
      f()
    } catch (err) {
      if (err instanceof UninspectableError) throw err
      throw new UninspectableError(`not well-formed XML: ${(err as Error).message}`)
    }
  }
  return {
    write: (text) => guard(() => parser.write(text)),
    end: () => {
      guard(() => parser.close())
      return out
    },
  }
}
