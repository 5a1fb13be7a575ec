// Record ids in an HTML page, found by a CSS selector while htmlparser2's Tokenizer reads it
// once, chunk by chunk as it arrives (no DOM is built): each element is matched as it opens
// against the stack of its ancestors. The tree rules are htmlparser2's Parser's (implied end
// tags, void elements, svg/math self-closing, a nested <form> ignored), in a lean layer of its
// own: names and attribute values are sliced only when a selector may need them, entities
// decoded only in values that hold a `&` and in text someone collects (the Parser decodes and
// slices all of them; on the bench's 10 KB page this layer costs a third of the Parser).
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
import { decodeHTML, decodeHTMLAttribute } from 'entities'
import { Tokenizer } from 'htmlparser2'
import { SelectorError } from '../../errors.js'

export interface Compound {
  tag: string | null
  attrs: { name: string; test: (value: string | undefined) => boolean }[]
  /** How this compound relates to the next one to its right: null for the subject. */
  combinator: 'descendant' | 'child' | null
}

/** One alternative of a selector list, left to right; the last compound is the subject. */
export type Chain = Compound[]

interface Element {
  name: string
  /** What the tree rules know of its name (F_*), looked up once. */
  flags: number
  /** Its name's bit among the names a start tag may close (Tag.bit). */
  bit: number
  /** Only the attributes some selector names (or null: none of them). */
  attribs: Record<string, string> | null
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
      return (v) => v !== undefined && hasWord(norm(v), want)
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

/** Is `word` one of the whitespace-separated words of `list` (`[class~=word]`, `.word`)? */
function hasWord(list: string, word: string): boolean {
  if (word === '') return false
  for (let at = list.indexOf(word); at >= 0; at = list.indexOf(word, at + 1)) {
    const end = at + word.length
    if (
      (at === 0 || isWhitespace(list.charCodeAt(at - 1))) &&
      (end === list.length || isWhitespace(list.charCodeAt(end)))
    )
      return true
  }
  return false
}

function matchesCompound(c: Compound, e: Element): boolean {
  if (c.tag !== null && c.tag !== e.name) return false
  for (const a of c.attrs) if (!a.test(e.attribs === null ? undefined : e.attribs[a.name])) return false
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

/**
 * The same, over text that comes in pieces (split anywhere: in a tag, an entity, a comment).
 * A page is read by FastScan; one with markup it leaves to htmlparser2's Tokenizer is read
 * again from its start by the Tokenizer (the pieces so far are kept for that).
 */
/** Pages FastScan left to the Tokenizer (tests and benchmarks look at it). */
export const htmlFallbacks = { count: 0 }
/** Characters FastScan read again, from the start of a construct cut by a piece's end (tests look). */
export const htmlRereads = { chars: 0 }

export function htmlReader(
  chains: readonly Chain[],
  attr: string | undefined,
): { write(text: string): void; end(): string[] } {
  const out: string[] = []
  const p = planOf(chains, attr === undefined ? undefined : attr.toLowerCase())
  let fast: FastScan | null = new FastScan(new Scan(p, [], 0, out), p)
  let seen: string[] = []
  let slow: Scan | null = null
  const fallback = () => {
    htmlFallbacks.count++
    out.length = 0
    slow = new Scan(p, [], 0, out)
    for (const piece of seen) slow.write(piece)
    fast = null
    seen = []
  }
  return {
    write: (text) => {
      if (slow) return slow.write(text)
      seen.push(text)
      if (!(fast as FastScan).write(text)) fallback()
    },
    end: () => {
      if (!slow && !(fast as FastScan).end()) fallback()
      if (slow) (slow as Scan).end()
      return out
    },
  }
}

interface Plan {
  chains: readonly Chain[]
  attr: string | undefined
  /** The attributes any compound tests, and `attr`: no other value is sliced. */
  wanted: Set<string>
  /** The same as a list, when all of them are ASCII (FastScan compares them in place). */
  wantedAscii: string[] | null
  /** The tags a subject can have (null: any). */
  subjects: Set<string> | null
}

function plan(chains: readonly Chain[], attr: string | undefined): Plan {
  const wanted = new Set<string>()
  if (attr !== undefined) wanted.add(attr)
  let subjects: Set<string> | null = new Set()
  for (const chain of chains) {
    for (const c of chain) for (const a of c.attrs) wanted.add(a.name)
    const tag = (chain[chain.length - 1] as Compound).tag
    if (tag === null) subjects = null
    else subjects?.add(tag)
  }
  const list = [...wanted]
  const wantedAscii = list.every(isAscii) ? list : null
  return { chains, attr, wanted, wantedAscii, subjects }
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 0x80) return false
  return true
}

/** A route's plan, made on its first answer (a route's chains live as long as its config). */
const PLANS = new WeakMap<readonly Chain[], Map<string | undefined, Plan>>()
function planOf(chains: readonly Chain[], attr: string | undefined): Plan {
  let byAttr = PLANS.get(chains)
  if (byAttr === undefined) PLANS.set(chains, (byAttr = new Map()))
  let p = byAttr.get(attr)
  if (p === undefined) byAttr.set(attr, (p = plan(chains, attr)))
  return p
}

// The tree rules of htmlparser2's Parser (12.x), which this layer replaces.
const P = new Set(['p'])
const HEADINGS = new Set(['h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'p'])
const FORM_TAGS = new Set(['input', 'option', 'optgroup', 'select', 'button', 'datalist', 'textarea'])
const SECTIONS = new Set(['thead', 'tbody'])
const DDT = new Set(['dd', 'dt'])
const RTP = new Set(['rt', 'rp'])
const IMPLIES_CLOSE = new Map<string, Set<string>>([
  ['tr', new Set(['tr', 'th', 'td'])],
  ['th', new Set(['th'])],
  ['td', new Set(['thead', 'th', 'td'])],
  ['body', new Set(['head', 'link', 'script'])],
  ['a', new Set(['a'])],
  ['li', new Set(['li'])],
  ['p', P],
  ...['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map((h) => [h, HEADINGS] as [string, Set<string>]),
  ...['select', 'input', 'output', 'button', 'datalist', 'textarea'].map(
    (t) => [t, FORM_TAGS] as [string, Set<string>],
  ),
  ['option', new Set(['option'])],
  ['optgroup', new Set(['optgroup', 'option'])],
  ['dd', DDT],
  ['dt', DDT],
  ...[
    'address',
    'article',
    'aside',
    'blockquote',
    'details',
    'div',
    'dl',
    'fieldset',
    'figcaption',
    'figure',
    'footer',
    'form',
    'header',
    'hr',
    'main',
    'nav',
    'ol',
    'pre',
    'section',
    'table',
    'ul',
  ].map((t) => [t, P] as [string, Set<string>]),
  ['rt', RTP],
  ['rp', RTP],
  ['tbody', SECTIONS],
  ['tfoot', SECTIONS],
])
const VOID = new Set([
  'area',
  'base',
  'basefont',
  'br',
  'col',
  'command',
  'embed',
  'frame',
  'hr',
  'img',
  'input',
  'isindex',
  'keygen',
  'link',
  'meta',
  'param',
  'source',
  'track',
  'wbr',
])
const HTML = 0
const SVG = 1
const MATHML = 2
const INTEGRATION = new Set(['mi', 'mo', 'mn', 'ms', 'mtext', 'annotation-xml', 'foreignObject', 'desc', 'title'])
const SVG_NAMES = new Map(
  [
    'altGlyph',
    'altGlyphDef',
    'altGlyphItem',
    'animateColor',
    'animateMotion',
    'animateTransform',
    'clipPath',
    'feBlend',
    'feColorMatrix',
    'feComponentTransfer',
    'feComposite',
    'feConvolveMatrix',
    'feDiffuseLighting',
    'feDisplacementMap',
    'feDistantLight',
    'feDropShadow',
    'feFlood',
    'feFuncA',
    'feFuncB',
    'feFuncG',
    'feFuncR',
    'feGaussianBlur',
    'feImage',
    'feMerge',
    'feMergeNode',
    'feMorphology',
    'feOffset',
    'fePointLight',
    'feSpecularLighting',
    'feSpotLight',
    'feTile',
    'feTurbulence',
    'foreignObject',
    'glyphRef',
    'linearGradient',
    'radialGradient',
    'textPath',
  ].map((n) => [n.toLowerCase(), n]),
)
/** Raw text the tokenizer does not decode entities in (it does in title and textarea). */
const RAW_TEXT = new Set(['script', 'style', 'xmp', 'iframe', 'noembed', 'noframes', 'plaintext'])

const F_VOID = 1
const F_REPARSED = 2
/** Opens or closes a foreign context: svg, math, or an HTML integration point. */
const F_CONTEXT = 4
/** Its content is text up to its end tag (outside svg and math), as the Tokenizer reads it. */
const F_TEXT_ONLY = 8
/** Everything after it is text: FastScan leaves the page to the Tokenizer. */
const F_PLAINTEXT = 16
/** `image`, which the tree calls `img` in HTML. */
const F_IMAGE = 32
/** Elements whose content the Tokenizer reads as text up to their end tag (outside svg and math). */
const TEXT_ONLY = new Set(['script', 'style', 'title', 'textarea', 'xmp', 'iframe', 'noembed', 'noframes'])

/** A lower-cased tag name with what the tree rules know of it, looked up once. */
interface Tag {
  name: string
  flags: number
  /**
   * The open elements a start tag of this name closes first (implied end tags), as a mask of
   * their bits: a bit test per open tag, where a Set of names cost a tenth of the reader.
   */
  closes: number
  /** This name's bit in `closes` masks (0: no start tag closes it). */
  bit: number
}
/** Every name some start tag closes, and its bit. */
const CLOSEABLE = new Map(
  [...new Set([...IMPLIES_CLOSE.values()].flatMap((set) => [...set]))].map((n, i) => [n, 1 << i]),
)
if (CLOSEABLE.size > 31) throw new Error('html.ts: more closeable names than bits')
const maskOf = (names: Set<string> | undefined) =>
  [...(names ?? [])].reduce((m, n) => m | (CLOSEABLE.get(n) as number), 0)
const KNOWN = new Map<string, Tag>()
for (const name of new Set([
  ...IMPLIES_CLOSE.keys(),
  ...VOID,
  ...REPARSED,
  ...INTEGRATION,
  ...TEXT_ONLY,
  ...CLOSEABLE.keys(),
  'svg',
  'math',
  'plaintext',
  'image',
]))
  KNOWN.set(name, {
    name,
    flags:
      (VOID.has(name) ? F_VOID : 0) |
      (REPARSED.has(name) ? F_REPARSED : 0) |
      (INTEGRATION.has(name) || name === 'svg' || name === 'math' ? F_CONTEXT : 0) |
      (TEXT_ONLY.has(name) ? F_TEXT_ONLY : 0) |
      (name === 'plaintext' ? F_PLAINTEXT : 0) |
      (name === 'image' ? F_IMAGE : 0),
    closes: maskOf(IMPLIES_CLOSE.get(name)),
    bit: CLOSEABLE.get(name) ?? 0,
  })

function tagOf(name: string): Tag {
  return KNOWN.get(name) ?? { name, flags: 0, closes: 0, bit: 0 }
}
const P_TAG = tagOf('p')

/** One reading of a page (or of markup found in a comment or a script): Tokenizer callbacks. */
class Scan {
  private tokenizer: Tokenizer | null = null
  private buffers: string[] = []
  private bufferOffset = 0
  private readonly stack: Element[]
  /** Elements below this index are the outer page's (markup in a comment or script): never closed here. */
  private readonly base: number
  private readonly foreign: number[] = [HTML]
  /** The top of `foreign` is HTML (asked at every tag). */
  private inHtml = true
  /** The tag being opened ('' when ignored: a form in a form), and its element. */
  private tagname = ''
  private current: Element | null = null
  private attribname = ''
  private attribvalue = ''
  private attribWanted = false
  /** Text of the current run, as written (decoded when the run ends). */
  private pending = ''
  private readonly capturing: { depth: number; text: string[] }[] = []
  private raw: string[] | null = null

  constructor(
    private readonly plan: Plan,
    outer: readonly Element[],
    private readonly depth: number,
    private readonly out: string[],
  ) {
    this.stack = [...outer]
    this.base = outer.length
  }

  write(text: string): void {
    this.buffers.push(text)
    ;(this.tokenizer ??= new Tokenizer({ decodeEntities: false }, this)).write(text)
  }

  end(): void {
    ;(this.tokenizer ??= new Tokenizer({ decodeEntities: false }, this)).end()
  }

  /** FastScan: the text its indices point into, and where it starts in the page. */
  view(text: string, offset: number): void {
    this.buffers = [text]
    this.bufferOffset = offset
  }

  private slice(start: number, end: number): string {
    if (start === end) return ''
    while (start - this.bufferOffset >= (this.buffers[0] as string).length) this.shift()
    let s = (this.buffers[0] as string).slice(start - this.bufferOffset, end - this.bufferOffset)
    while (end - this.bufferOffset > (this.buffers[0] as string).length) {
      this.shift()
      s += (this.buffers[0] as string).slice(0, end - this.bufferOffset)
    }
    return s
  }

  private shift(): void {
    this.bufferOffset += (this.buffers[0] as string).length
    this.buffers.shift()
  }

  isInForeignContext(): boolean {
    return !this.inHtml
  }

  /** A tag's name as the tree knows it: lower-cased by the caller, then svg's camelCase, `image`. */
  private tagName(name: string): string {
    const context = this.foreign[this.foreign.length - 1]
    if (context === SVG) return SVG_NAMES.get(name) ?? name
    if (context === HTML) return name === 'image' ? 'img' : name
    return name
  }

  /** The text run has ended: decoded (outside raw text), to whoever collects it. */
  private flush(): void {
    if (this.pending === '') return
    let text = this.pending
    this.pending = ''
    const top = this.stack.length > this.base ? (this.stack[this.stack.length - 1] as Element).name : ''
    if (text.includes('&') && !(RAW_TEXT.has(top) && !this.isInForeignContext())) text = decodeHTML(text)
    this.text(text)
  }

  private text(text: string): void {
    if (this.raw !== null) this.raw.push(text)
    for (const c of this.capturing) c.text.push(text)
  }

  ontext(start: number, end: number): void {
    if (this.raw !== null || this.capturing.length > 0) this.pending += this.slice(start, end)
  }

  ontextentity(): void {
    // (decodeEntities is off)
  }

  onattribentity(): void {
    // (decodeEntities is off)
  }

  onopentagname(start: number, end: number): void {
    this.flush()
    this.emitOpenTag(tagOf(this.tagName(this.slice(start, end).toLowerCase())))
  }

  /** FastScan: a start tag, its name lower-cased. */
  openTag(tag: Tag): void {
    this.flush()
    this.emitOpenTag(this.asNamed(tag))
  }

  /** `tag` as the tree knows it here (see tagName): itself but in svg and math, and for `image`. */
  private asNamed(tag: Tag): Tag {
    if (this.inHtml && (tag.flags & F_IMAGE) === 0) return tag
    const name = this.tagName(tag.name)
    return name === tag.name ? tag : tagOf(name)
  }

  private emitOpenTag(tag: Tag): void {
    const { name, flags, closes, bit } = tag
    if (name === 'form' && this.opened('form') >= 0) {
      this.tagname = ''
      this.current = null
      return
    }
    if (closes !== 0)
      while (this.stack.length > this.base && (closes & (this.stack[this.stack.length - 1] as Element).bit) !== 0)
        this.popElement()
    this.tagname = name
    this.current = { name, flags, bit, attribs: null }
    if ((flags & F_VOID) === 0) {
      this.stack.push(this.current)
      if (flags & F_CONTEXT) {
        this.foreign.push(name === 'svg' ? SVG : name === 'math' ? MATHML : HTML)
        this.inHtml = name !== 'svg' && name !== 'math'
      }
    }
  }

  /** Where the innermost open element of this name is (-1: none). */
  private opened(name: string): number {
    for (let i = this.stack.length - 1; i >= this.base; i--) if ((this.stack[i] as Element).name === name) return i
    return -1
  }

  onattribname(start: number, end: number): void {
    // (Sliced once: a slice reaching into the next piece drops the pieces before it.)
    const name = this.current === null ? '' : this.slice(start, end).toLowerCase()
    this.attribWanted = this.current !== null && this.plan.wanted.has(name)
    this.attribname = name
    this.attribvalue = ''
  }

  onattribdata(start: number, end: number): void {
    if (this.attribWanted) this.attribvalue += this.slice(start, end)
  }

  onattribend(): void {
    if (!this.attribWanted) return
    this.attribWanted = false
    this.attribute(this.attribname, this.attribvalue)
  }

  /** An attribute of the tag being opened that the plan wants (FastScan reads no other). */
  attribute(name: string, raw: string): void {
    if (this.current === null) return
    const attribs = (this.current.attribs ??= {})
    if (Object.hasOwn(attribs, name)) return
    attribs[name] = raw.includes('&') ? decodeHTMLAttribute(raw) : raw
  }

  onopentagend(): void {
    this.endOpenTag()
  }

  private endOpenTag(): void {
    const e = this.current
    this.current = null
    if (this.tagname === '' || e === null) return
    this.tagname = ''
    const isVoid = (e.flags & F_VOID) !== 0
    if (isVoid) this.stack.push(e) // matched among its ancestors, closed at once
    this.opens(e)
    if (isVoid) this.closes(this.stack.pop() as Element)
  }

  /** An element opened (on top of the stack): raw text to re-read, a match. */
  private opens(e: Element): void {
    if (e.flags & F_REPARSED) this.raw = []
    const { subjects, chains, attr } = this.plan
    if (subjects !== null && !subjects.has(e.name)) return
    const top = this.stack.length - 1
    if (!chains.some((chain) => matchesChain(chain, chain.length - 1, this.stack, top))) return
    if (attr !== undefined) {
      const v = e.attribs === null ? undefined : e.attribs[attr]
      if (v !== undefined) this.out.push(v)
    } else this.capturing.push({ depth: this.stack.length, text: [] })
  }

  /** An element closed (already off the stack). */
  private closes(e: Element): void {
    const reparsed = (e.flags & F_REPARSED) !== 0
    if (this.raw !== null && reparsed && this.depth < MAX_DEPTH) {
      // A script's strings, a textarea's content: markup a scraper reads all the same.
      const text = this.raw.join('')
      if (text.includes('<')) this.nested(text)
    }
    if (reparsed) this.raw = null
    const c = this.capturing
    while (c.length > 0 && (c[c.length - 1] as { depth: number }).depth > this.stack.length)
      this.out.push((c.pop() as { text: string[] }).text.join('').trim())
  }

  private nested(markup: string): void {
    const scan = new Scan(this.plan, this.stack, this.depth + 1, this.out)
    scan.write(markup)
    scan.end()
  }

  private popElement(): void {
    const e = this.stack.pop() as Element
    if (e.flags & F_CONTEXT) {
      this.foreign.pop()
      this.inHtml = this.foreign[this.foreign.length - 1] === HTML
    }
    this.closes(e)
  }

  onselfclosingtag(): void {
    if (!this.isInForeignContext()) return this.endOpenTag()
    const name = this.tagname
    this.endOpenTag()
    if (this.stack.length > this.base && (this.stack[this.stack.length - 1] as Element).name === name) this.popElement()
  }

  onclosetag(start: number, end: number): void {
    this.closeTag(tagOf(this.slice(start, end).toLowerCase()))
  }

  /**
   * FastScan: an end tag s[start, end) that names the element on top in HTML content (what
   * closeTag would find first): closes it and says so; false for closeTag to decide.
   */
  closeTop(s: string, start: number, end: number): boolean {
    if (!this.inHtml || this.stack.length <= this.base) return false
    const top = this.stack[this.stack.length - 1] as Element
    // (`image` is never on the stack in HTML content: it is opened as `img`, a void element.)
    if (!sameLower(s, start, end, top.name)) return false
    this.flush()
    this.popElement()
    return true
  }

  /** FastScan: an end tag, its name lower-cased. */
  closeTag(lower: Tag): void {
    this.flush()
    const { name, flags } = this.asNamed(lower)
    if ((flags & F_VOID) === 0) {
      const at = this.opened(name)
      if (at >= 0) while (this.stack.length > at) this.popElement()
      else if (name === 'p') {
        this.emitOpenTag(P_TAG)
        this.onselfclosingtagImplied('p')
      }
    } else if (name === 'br') {
      this.tagname = 'br'
      this.current = { name: 'br', flags: F_VOID, bit: 0, attribs: null }
      this.endOpenTag()
    }
  }

  /** `</p>` without a `<p>`: an empty p, opened and closed. */
  private onselfclosingtagImplied(name: string): void {
    this.endOpenTag()
    if (this.stack.length > this.base && (this.stack[this.stack.length - 1] as Element).name === name) this.popElement()
  }

  oncomment(start: number, end: number, offset: number): void {
    this.flush()
    if (this.depth >= MAX_DEPTH) return
    const data = this.slice(start, end - offset)
    if (data.includes('<')) this.nested(data)
  }

  oncdata(start: number, end: number, offset: number): void {
    this.flush()
    const value = this.slice(start, end - offset)
    if (this.isInForeignContext()) {
      if (this.raw !== null || this.capturing.length > 0) this.text(value)
    } else if (this.depth < MAX_DEPTH && value.includes('<')) this.nested(`[CDATA[${value}]]`)
  }

  ondeclaration(): void {
    this.flush()
  }

  onprocessinginstruction(): void {
    this.flush()
  }

  onend(): void {
    this.flush()
    while (this.stack.length > this.base) this.popElement()
  }
}

const LT = 0x3c
const GT = 0x3e
const SLASH = 0x2f
const BANG = 0x21
const QUESTION = 0x3f
const EQ = 0x3d
const DQ = 0x22
const SQ = 0x27
const isWhitespace = (c: number) => c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0c || c === 0x0d
const isAlpha = (c: number) => (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a
const isEndOfTag = (c: number) => isWhitespace(c) || c === SLASH || c === GT
/**
 * A start tag's attributes while FastScan reads it: per attribute name start, name end, value
 * start, value end (-1: none). One for all readers: a tag is read in one synchronous call.
 */
let MARKS = new Int32Array(64)

/**
 * Tags by name, the same object each time a name comes again (a page repeats a few dozen
 * names): no slice and no lookup per tag. A direct-mapped cache of a fixed size (a page of
 * invented names only evicts); ASCII names only (others are lower-cased by toLowerCase, as the
 * Tokenizer's reader does).
 */
const TAGS: (Tag | undefined)[] = new Array<Tag | undefined>(1024).fill(undefined)

function tagAt(s: string, start: number, end: number): Tag {
  let h = end - start
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x80) return tagOf(s.slice(start, end).toLowerCase())
    h = (Math.imul(h, 31) + (c >= 0x41 && c <= 0x5a ? c + 32 : c)) | 0
  }
  const slot = (h ^ (h >>> 10)) & 1023
  const known = TAGS[slot]
  if (known !== undefined && sameLower(s, start, end, known.name)) return known
  const tag = tagOf(s.slice(start, end).toLowerCase())
  TAGS[slot] = tag
  return tag
}

/** Is s[start, end) `lower` but for ASCII case? */
function sameLower(s: string, start: number, end: number, lower: string): boolean {
  if (lower.length !== end - start) return false
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i)
    if ((c >= 0x41 && c <= 0x5a ? c + 32 : c) !== lower.charCodeAt(i - start)) return false
  }
  return true
}

/**
 * Which of the plan's (ASCII) attribute names s[start, end) is, if any; a name with other
 * characters is lower-cased as the Tokenizer's reader does (`\u212A`, the Kelvin sign, is `k`).
 */
function wantedName(s: string, start: number, end: number, plan: Plan): string | null {
  for (const name of plan.wantedAscii as string[]) if (sameLower(s, start, end, name)) return name
  for (let i = start; i < end; i++)
    if (s.charCodeAt(i) >= 0x80) {
      const name = s.slice(start, end).toLowerCase()
      return plan.wanted.has(name) ? name : null
    }
  return null
}

/**
 * The Tokenizer's reading of ordinary markup, jumping from `<` to `<` with indexOf and calling
 * the same callbacks with the same indices: text, start tags with their attributes (quoted,
 * unquoted, bare), end tags, `<!-- comments -->`, `<!doctype>`, `<?…>` (a comment to HTML),
 * a `<` that starts no tag (text), and the text-only elements up to their end tag. Anything
 * else (`</` not followed by a letter, other `<!` markup, comments the standard treats
 * specially, `<plaintext>`, markup left open at the end) makes write or end return false: the
 * page is then read by the Tokenizer. A construct cut by the end of a piece waits for the next.
 */
class FastScan {
  private buf = ''
  private offset = 0
  /** The text-only element being read (its content is text up to `</name`). */
  private textOnly: Tag | null = null
  /**
   * A construct cut by the end of a piece is read again from its start: not before the text
   * held has doubled, so that one cut across a thousand pieces (a long attribute value or
   * comment) costs a few readings, not a thousand.
   */
  private waitFor = 0

  constructor(
    private readonly scan: Scan,
    private readonly plan: Plan,
  ) {}

  write(text: string): boolean {
    const held = this.buf.length
    this.buf = held === 0 ? text : this.buf + text
    if (this.buf.length < this.waitFor) return true
    htmlRereads.chars += held
    const ok = this.run(false)
    this.waitFor = this.buf.length * 2
    return ok
  }

  end(): boolean {
    if (!this.run(true) || this.buf !== '') return false
    this.scan.onend()
    return true
  }

  private run(final: boolean): boolean {
    const s = this.buf
    const n = s.length
    const o = this.offset
    const scan = this.scan
    scan.view(s, o)
    let i = 0
    while (i < n) {
      if (this.textOnly !== null) {
        const name = this.textOnly.name
        const len = name.length
        let j = i
        let found = -1
        for (;;) {
          j = s.indexOf('</', j)
          if (j < 0 || j + 2 + len >= n) break
          if (s.slice(j + 2, j + 2 + len).toLowerCase() === name && isEndOfTag(s.charCodeAt(j + 2 + len))) {
            found = j
            break
          }
          j += 2
        }
        if (found < 0) {
          if (final) return false
          const safe = j >= 0 ? j : s.charCodeAt(n - 1) === LT ? n - 1 : n
          if (safe > i) scan.ontext(o + i, o + safe)
          i = safe
          break
        }
        if (found > i) scan.ontext(o + i, o + found)
        i = found
        const gt = s.indexOf('>', found + 2 + len)
        if (gt < 0) {
          if (final) return false
          break
        }
        scan.closeTag(this.textOnly)
        this.textOnly = null
        i = gt + 1
        continue
      }
      // (Tags often follow each other: look at the next character before searching.)
      const lt = i < n && s.charCodeAt(i) === LT ? i : s.indexOf('<', i)
      if (lt < 0) {
        scan.ontext(o + i, o + n)
        i = n
        break
      }
      if (lt > i) scan.ontext(o + i, o + lt)
      i = lt
      if (lt + 1 >= n) {
        if (final) return false
        break
      }
      const c = s.charCodeAt(lt + 1)
      if (isAlpha(c)) {
        const end = this.startTag(s, lt, final)
        if (end === -2) return false
        if (end === -1) break
        i = end
      } else if (c === SLASH) {
        if (lt + 2 >= n) {
          if (final) return false
          break
        }
        if (!isAlpha(s.charCodeAt(lt + 2))) return false
        let k = lt + 3
        while (k < n && !isEndOfTag(s.charCodeAt(k))) k++
        const gt = k >= n ? -1 : s.charCodeAt(k) === GT ? k : s.indexOf('>', k)
        if (gt < 0) {
          if (final) return false
          break
        }
        // (Most end tags close the element on top: no lookup of their name then.)
        if (!scan.closeTop(s, lt + 2, k)) scan.closeTag(tagAt(s, lt + 2, k))
        i = gt + 1
      } else if (c === BANG) {
        if (s.startsWith('<!--', lt)) {
          const k = s.indexOf('-->', lt + 4)
          if (k < 0) {
            if (final) return false
            break
          }
          const first = s.charCodeAt(lt + 4)
          const bang = s.indexOf('--!>', lt + 4)
          if (first === GT || first === 0x2d || (bang >= 0 && bang < k) || (k > lt + 4 && s.charCodeAt(k - 1) === 0x2d))
            return false
          scan.oncomment(o + lt + 4, o + k + 2, 2)
          i = k + 3
        } else if (n - lt < 9) {
          if (final) return false
          break
        } else if (s.slice(lt + 2, lt + 9).toLowerCase() === 'doctype') {
          const gt = s.indexOf('>', lt + 9)
          if (gt < 0) {
            if (final) return false
            break
          }
          scan.ondeclaration()
          i = gt + 1
        } else return false
      } else if (c === QUESTION) {
        const gt = s.indexOf('>', lt + 1)
        if (gt < 0) {
          if (final) return false
          break
        }
        scan.oncomment(o + lt + 1, o + gt, 0)
        i = gt + 1
      } else {
        // A `<` that starts nothing is text.
        scan.ontext(o + lt, o + lt + 1)
        i = lt + 1
      }
    }
    this.buf = i >= n ? '' : s.slice(i)
    this.offset = o + i
    return true
  }

  /** How many of MARKS the start tag being read uses. */
  private count = 0

  private mark(a: number, b: number, c: number, d: number): void {
    if (this.count + 4 > MARKS.length) {
      const grown = new Int32Array(MARKS.length * 2)
      grown.set(MARKS)
      MARKS = grown
    }
    const m = MARKS
    m[this.count] = a
    m[this.count + 1] = b
    m[this.count + 2] = c
    m[this.count + 3] = d
    this.count += 4
  }

  /**
   * A start tag at `lt`: read to its end first (positions only), then its callbacks; the
   * index after its `>`, -1 when it goes on in the next piece (nothing called), -2 for what
   * the Tokenizer has to read.
   */
  private startTag(s: string, lt: number, final: boolean): number {
    this.count = 0
    const n = s.length
    let k = lt + 1
    while (k < n && !isEndOfTag(s.charCodeAt(k))) k++
    if (k >= n) return final ? -2 : -1
    const nameEnd = k
    let selfClosing = false
    for (;;) {
      // Before an attribute name.
      if (k >= n) return final ? -2 : -1
      let c = s.charCodeAt(k)
      if (c === GT) break
      if (c === SLASH) {
        // Self-closing: `/` then `>` (whitespace between), else the `/` is ignored.
        k++
        while (k < n && isWhitespace(s.charCodeAt(k))) k++
        if (k >= n) return final ? -2 : -1
        if (s.charCodeAt(k) === GT) {
          selfClosing = true
          break
        }
        continue
      }
      if (isWhitespace(c)) {
        k++
        continue
      }
      // An attribute name, up to `=` or the end of the tag section.
      const a = k
      k++
      while (k < n && !((c = s.charCodeAt(k)) === EQ || isEndOfTag(c))) k++
      if (k >= n) return final ? -2 : -1
      const e = k
      // After the name: whitespace, then `=` or the next thing.
      while (k < n && isWhitespace(s.charCodeAt(k))) k++
      if (k >= n) return final ? -2 : -1
      if (s.charCodeAt(k) !== EQ) {
        this.mark(a, e, -1, -1)
        continue
      }
      k++
      while (k < n && isWhitespace(s.charCodeAt(k))) k++
      if (k >= n) return final ? -2 : -1
      c = s.charCodeAt(k)
      if (c === DQ || c === SQ) {
        const q = s.indexOf(c === DQ ? '"' : "'", k + 1)
        if (q < 0) return final ? -2 : -1
        this.mark(a, e, k + 1, q)
        k = q + 1
      } else {
        const v = k
        while (k < n && !(isWhitespace((c = s.charCodeAt(k))) || c === GT)) k++
        if (k >= n) return final ? -2 : -1
        this.mark(a, e, v, k)
      }
    }
    // Complete: now what the Tokenizer would have called.
    const o = this.offset
    const scan = this.scan
    const tag = tagAt(s, lt + 1, nameEnd)
    let special: Tag | null = null
    if ((tag.flags & (F_TEXT_ONLY | F_PLAINTEXT)) !== 0 && !scan.isInForeignContext()) {
      if (tag.flags & F_PLAINTEXT) return -2
      special = tag
    }
    scan.openTag(tag)
    const marks = MARKS
    const inPlace = this.plan.wantedAscii !== null
    for (let m = 0; m < this.count; m += 4) {
      const v = marks[m + 2] as number
      if (inPlace) {
        // Only the attributes a selector names are read at all.
        const w = wantedName(s, marks[m] as number, marks[m + 1] as number, this.plan)
        if (w !== null) scan.attribute(w, v >= 0 ? s.slice(v, marks[m + 3]) : '')
        continue
      }
      scan.onattribname(o + (marks[m] as number), o + (marks[m + 1] as number))
      if (v >= 0) scan.onattribdata(o + v, o + (marks[m + 3] as number))
      scan.onattribend()
    }
    if (selfClosing) scan.onselfclosingtag()
    else scan.onopentagend()
    this.textOnly = special
    return k + 1
  }
}
