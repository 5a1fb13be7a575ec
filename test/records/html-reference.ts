// The Parser-based HTML reader sluice used before its lean tokenizer layer (html.ts): the
// reference of the differential test (html-differential.test.ts). Same selector semantics.
import { Parser } from 'htmlparser2'
import type { Chain, Compound } from '../../src/records/answer/html.js'

interface Element {
  name: string
  attribs: Record<string, string>
}

const REPARSED = new Set(['script', 'textarea', 'xmp', 'noscript', 'noembed', 'noframes'])
const MAX_DEPTH = 3

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
export function referenceHtmlValues(html: string, chains: readonly Chain[], attr: string | undefined): string[] {
  const r = htmlReader(chains, attr)
  r.write(html)
  return r.end()
}

/** The same, over text that comes in pieces (split anywhere: in a tag, an entity, a comment). */
function htmlReader(
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
