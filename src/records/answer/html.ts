// Record ids in an HTML page, found by a CSS selector while htmlparser2 tokenizes it once
// (no DOM is built): each element is matched as it opens against the stack of its ancestors.
//
// The selector subset (parsed by css-what; anything else is a config error that says what):
//   type `tr`, universal `*`, `.class`, `#id`, `[attr]`, `[attr=v]`, `[attr~=v]`, `[attr^=v]`,
//   `[attr$=v]`, `[attr*=v]`, `[attr|=v]`, compounds of them (`tr.row[data-id]`), the
//   descendant (` `) and child (`>`) combinators, and lists (`a, b`).
// Siblings (`+`, `~`) and pseudo-classes need what comes before or after an element, which a
// single pass does not keep.
//
// What a scraper reads is what counts, not what a browser shows: markup inside comments and in
// the raw text of <script>, <textarea>, <title>, <xmp>, <noscript> is parsed again with the same
// selector (as if it were in the page at that place; only when it holds a `<`), and <template> content and hidden rows
// are elements like any other. Broken markup is read as htmlparser2 reads it (unclosed tags
// closed by their parents, a stray `<` as text): never an error.
import { parse as parseCss, type Selector as CssToken } from 'css-what'
import { Parser } from 'htmlparser2'
import { SelectorError } from '../../errors.js'

interface Compound {
  tag: string | null
  attrs: { name: string; test: (value: string | undefined) => boolean }[]
  /** How this compound relates to the next one to its right: null for the subject. */
  combinator: 'descendant' | 'child' | null
}

/** One alternative of a selector list, left to right; the last compound is the subject. */
type Chain = Compound[]

interface Element {
  name: string
  attribs: Record<string, string>
}

/** Raw-text elements whose content may hold markup a scraper reads. */
const REPARSED = new Set(['script', 'textarea', 'xmp', 'noscript', 'noembed', 'noframes'])
/** Markup in markup in markup: deep enough for a template in a script in a comment. */
const MAX_DEPTH = 3

export function compileCss(text: string): Chain[] {
  let list: CssToken[][]
  try {
    list = parseCss(text)
  } catch (err) {
    throw new SelectorError(`not a CSS selector: ${(err as Error).message}`)
  }
  return list.map((tokens) => {
    const chain: Chain = []
    let current: Compound = { tag: null, attrs: [], combinator: null }
    const push = (combinator: 'descendant' | 'child') => {
      current.combinator = combinator
      chain.push(current)
      current = { tag: null, attrs: [], combinator: null }
    }
    for (const t of tokens) {
      switch (t.type) {
        case 'tag':
          current.tag = t.name.toLowerCase()
          break
        case 'universal':
          break
        case 'attribute':
          current.attrs.push({
            name: t.name.toLowerCase(),
            test: attributeTest(t.action, t.value, t.ignoreCase === true),
          })
          break
        case 'descendant':
        case 'child':
          push(t.type)
          break
        default:
          throw new SelectorError(
            `"${text}": ${t.type === 'pseudo' || t.type === 'pseudo-element' ? `:${t.name}` : t.type} is not in the supported subset (tags, *, .class, #id, [attr] tests, descendant and > combinators, lists)`,
          )
      }
    }
    chain.push(current)
    return chain
  })
}

function attributeTest(action: string, value: string, ignoreCase: boolean): (v: string | undefined) => boolean {
  const want = ignoreCase ? value.toLowerCase() : value
  const norm = (v: string) => (ignoreCase ? v.toLowerCase() : v)
  switch (action) {
    case 'exists':
      return (v) => v !== undefined
    case 'equals':
      return (v) => v !== undefined && norm(v) === want
    case 'element':
      return (v) =>
        v !== undefined &&
        norm(v)
          .split(/[\t\n\f\r ]+/)
          .includes(want)
    case 'start':
      return (v) => v !== undefined && want !== '' && norm(v).startsWith(want)
    case 'end':
      return (v) => v !== undefined && want !== '' && norm(v).endsWith(want)
    case 'any':
      return (v) => v !== undefined && want !== '' && norm(v).includes(want)
    case 'hyphen':
      return (v) => v !== undefined && (norm(v) === want || norm(v).startsWith(`${want}-`))
    default:
      throw new SelectorError(`attribute test [${action}] is not supported`)
  }
}

function matchesCompound(c: Compound, e: Element): boolean {
  if (c.tag !== null && c.tag !== e.name) return false
  for (const a of c.attrs) if (!a.test(e.attribs[a.name])) return false
  return true
}

/** Does the element on top of `stack` (at index `at`) match `chain` up to compound `k`? */
function matchesChain(chain: Chain, k: number, stack: readonly Element[], at: number): boolean {
  if (!matchesCompound(chain[k] as Compound, stack[at] as Element)) return false
  if (k === 0) return true
  const combinator = (chain[k - 1] as Compound).combinator
  if (combinator === 'child') return at > 0 && matchesChain(chain, k - 1, stack, at - 1)
  for (let i = at - 1; i >= 0; i--) if (matchesChain(chain, k - 1, stack, i)) return true
  return false
}

/**
 * The values the selector picks in `html`: each matched element's `attr`, or its text when
 * no attribute is named.
 */
export function htmlValues(html: string, chains: readonly Chain[], attr: string | undefined): string[] {
  const r = htmlReader(chains, attr)
  r.write(html)
  return r.end()
}

/** The same, over text that comes in pieces (split anywhere: in a tag, an entity, a comment). */
export function htmlReader(
  chains: readonly Chain[],
  attr: string | undefined,
): { write(text: string): void; end(): string[] } {
  const out: string[] = []
  const parser = scanner(chains, attr === undefined ? undefined : attr.toLowerCase(), [], 0, out)
  return {
    write: (text) => parser.write(text),
    end: () => {
      parser.end()
      return out
    },
  }
}

function scan(
  html: string,
  chains: readonly Chain[],
  attr: string | undefined,
  outer: readonly Element[],
  depth: number,
  out: string[],
): void {
  scanner(chains, attr, outer, depth, out).end(html)
}

function scanner(
  chains: readonly Chain[],
  attr: string | undefined,
  outer: readonly Element[],
  depth: number,
  out: string[],
): Parser {
  const stack: Element[] = [...outer]
  // Elements whose text is being collected (no attr): where in `texts` each one's text starts.
  const capturing: { depth: number; text: string[] }[] = []
  let raw: string[] | null = null
  const parser = new Parser(
    {
      onopentag(name, attribs) {
        const e = { name, attribs }
        stack.push(e)
        if (REPARSED.has(name)) raw = []
        const top = stack.length - 1
        if (!chains.some((chain) => matchesChain(chain, chain.length - 1, stack, top))) return
        if (attr !== undefined) {
          const v = attribs[attr]
          if (v !== undefined) out.push(v)
        } else capturing.push({ depth: stack.length, text: [] })
      },
      ontext(text) {
        if (raw !== null) raw.push(text)
        for (const c of capturing) c.text.push(text)
      },
      onclosetag(name) {
        if (raw !== null && REPARSED.has(name) && depth < MAX_DEPTH) {
          // A script's strings, a textarea's content: markup a scraper reads all the same.
          const text = raw.join('')
          if (text.includes('<')) scan(text, chains, attr, stack.slice(0, -1), depth + 1, out)
        }
        if (REPARSED.has(name)) raw = null
        while (capturing.length > 0 && (capturing[capturing.length - 1] as { depth: number }).depth >= stack.length) {
          out.push((capturing.pop() as { text: string[] }).text.join('').trim())
        }
        stack.pop()
      },
      oncomment(data) {
        if (depth < MAX_DEPTH && data.includes('<')) scan(data, chains, attr, stack, depth + 1, out)
      },
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true },
  )
  return parser
}
