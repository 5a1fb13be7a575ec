// The lean tokenizer layer of html.ts against the htmlparser2 Parser-based reader it replaced
// (html-reference.ts): the same ids, in the same order, on generated and mangled pages, whole
// and in pieces.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compileCss, htmlFallbacks, htmlReader, htmlRereads, htmlValues } from '../../src/records/answer/html.js'
import { referenceHtmlValues } from './html-reference.js'

const FRAGMENTS = [
  '<table class="results">',
  '<table>',
  '</table>',
  '<tbody>',
  '<thead>',
  '<tr data-id="1">',
  '<tr data-id=2 class=row>',
  "<tr class='row odd' data-id='3'>",
  '<TR DATA-ID="4" data-id="dup">',
  '<tr>',
  '</tr>',
  '<td>',
  '</td>',
  '<th>',
  '<a href="/v.do?id=5&amp;x=1">',
  '<a href="/v.do?x=1&id=6">',
  '</a>',
  '<p>',
  '</p>',
  '<li>',
  '<ul>',
  '</ul>',
  '<div>',
  '</div>',
  '<form>',
  '</form>',
  '<select><option data-id="7">',
  '<option>',
  '<br>',
  '</br>',
  '<img data-id="8">',
  '<input data-id="9"/>',
  '<svg>',
  '</svg>',
  '<math>',
  '<foreignObject>',
  '</foreignObject>',
  '</TR>',
  '</Td >',
  '</image>',
  '<desc>',
  '</desc>',
  '<mi>',
  '</mi>',
  '<clipPath data-id="10"/>',
  '<image data-id="11">',
  '<script>',
  '</script>',
  '<textarea>',
  '</textarea>',
  '<title>',
  '</title>',
  '<style>',
  '</style>',
  '<noscript>',
  '</noscript>',
  '<template>',
  '</template>',
  '<xmp>',
  '</xmp>',
  '<!-- <tr data-id="12"><td>c</td></tr> -->',
  '<!-- plain -->',
  '<!--',
  '-->',
  '<![CDATA[<tr data-id="13">]]>',
  '<!DOCTYPE html>',
  '<?php echo 1 ?>',
  '&lt;tr data-id=&quot;14&quot;&gt;',
  'Chan &amp; Sons',
  '&eacute;t&eacute; &#x1F600; &copy',
  '陳大文',
  ' text ',
  '<',
  '< b',
  '>',
  '"',
  "'",
  '&',
  '=',
  '\n',
  '<b class="n">A-1</b>',
  '<span class="no">X&amp;Y</span>',
  '<plaintext>',
]

const SELECTORS: [string, string | undefined][] = [
  ['table.results tr[data-id]', 'data-id'],
  ['tr[data-id]', 'data-id'],
  ['tr', 'data-id'],
  ['a[href]', 'href'],
  ['*[data-id]', 'data-id'],
  ['table > tr, tbody > tr', 'data-id'],
  ['td > a', undefined],
  ['tr', undefined],
  ['.n, span.no', undefined],
  ['table td', undefined],
  ['p, li, option', undefined],
  ['svg *', 'data-id'],
]

const page = fc.array(fc.constantFrom(...FRAGMENTS), { maxLength: 60 }).map((parts) => parts.join(''))

/** Markup the fast scanner reads itself (no `</` + non-letter, odd `<!`, open comments, plaintext). */
const TAME = FRAGMENTS.filter(
  (f) => !['<!--', '-->', '<![CDATA[<tr data-id="13">]]>', '<plaintext>', '<', '< b', '"', "'"].includes(f),
)
const tamePage = fc.array(fc.constantFrom(...TAME), { maxLength: 60 }).map((parts) => parts.join(''))

/**
 * Where the reference itself is not what a browser reads: in a textarea (raw text, re-read as
 * markup) htmlparser2 leaves an entity right after a `<` undecoded, so the reference re-reads
 * `<&lt;tr data-id="14">` as text; a browser's value is `<<tr data-id="14">` (Chromium's
 * textarea.value), which html.ts re-reads as the tag it is (pinned below).
 */
const referenceReadsAsABrowser = (html: string) => !html.includes('<&')

describe('html: the lean layer reads as htmlparser2 Parser did', () => {
  it('an entity right after a `<` in a textarea is decoded, as browsers do (the reference does not)', () => {
    const html = '<textarea><&lt;tr data-id=&quot;14&quot;&gt;</textarea><p><&lt;tr data-id=&quot;15&quot;&gt;'
    const chains = compileCss('*[data-id]')
    expect(htmlValues(html, chains, 'data-id')).toEqual(['14'])
    expect(referenceHtmlValues(html, chains, 'data-id')).toEqual([])
  })

  it('end tags: the top element (in any case), one below it, none open, in svg and at integration points', () => {
    // FastScan closes an end tag that names the top element without looking its name up:
    // every other end tag takes the full rules.
    const cases: [string, string, string | undefined][] = [
      ['<table><tr><td>x</a>y</td><td>z</TD ></tr></table>', 'table td', undefined],
      ['<table><tr><td><b>x</td>y</b></tr><tr data-id="1"></table>', 'td tr', 'data-id'],
      ['<table><tr data-id="1"><td>x</tr></td><tr data-id="2"></table>', 'table > tr', 'data-id'],
      ['<div><span>x</div>y</span><p class="n">z</p>', '.n, div', undefined],
      ['<svg><clipPath><image data-id="1"></image></clippath><rect data-id="2"></svg>', 'clipPath *', 'data-id'],
      ['<svg><foreignObject><b>x</b></foreignObject><b data-id="3"></b></svg>', 'foreignObject b', 'data-id'],
      ['<svg><desc><i>x</i></desc><i data-id="4"></i></svg>', 'desc i', 'data-id'],
      ['<math><mi><b data-id="5"></mi><b data-id="6"></math>', 'mi b', 'data-id'],
      ['<p>x</p></p><p>y</image><br></br></p>', 'p', undefined],
    ]
    for (const [html, css, attr] of cases) {
      const chains = compileCss(css)
      expect(htmlValues(html, chains, attr), html).toEqual(referenceHtmlValues(html, chains, attr))
    }
  })

  it('the same ids on generated and mangled pages, for every selector', () => {
    fc.assert(
      fc.property(page, fc.constantFrom(...SELECTORS), (html, [css, attr]) => {
        fc.pre(referenceReadsAsABrowser(html))
        const chains = compileCss(css)
        expect(htmlValues(html, chains, attr)).toEqual(referenceHtmlValues(html, chains, attr))
      }),
      { numRuns: 3000 },
    )
  })

  it('the same ids when the page comes in pieces', () => {
    fc.assert(
      fc.property(
        page,
        fc.constantFrom(...SELECTORS),
        fc.array(fc.integer({ min: 0, max: 2000 }), { maxLength: 8 }),
        (html, [css, attr], cuts) => {
          fc.pre(referenceReadsAsABrowser(html))
          const chains = compileCss(css)
          const r = htmlReader(chains, attr)
          let from = 0
          for (const cut of cuts.map((c) => c % (html.length + 1)).sort((a, b) => a - b)) {
            r.write(html.slice(from, cut))
            from = cut
          }
          r.write(html.slice(from))
          expect(r.end()).toEqual(referenceHtmlValues(html, chains, attr))
        },
      ),
      { numRuns: 1000 },
    )
  })

  it('pages of ordinary markup are read by the fast scanner, with the same ids, whole and in pieces', () => {
    const before = htmlFallbacks.count
    let pages = 0
    fc.assert(
      fc.property(
        tamePage,
        fc.constantFrom(...SELECTORS),
        fc.array(fc.integer({ min: 0, max: 2000 }), { maxLength: 8 }),
        (html, [css, attr], cuts) => {
          pages++
          const chains = compileCss(css)
          expect(htmlValues(html, chains, attr)).toEqual(referenceHtmlValues(html, chains, attr))
          const r = htmlReader(chains, attr)
          let from = 0
          for (const cut of cuts.map((c) => c % (html.length + 1)).sort((a, b) => a - b)) {
            r.write(html.slice(from, cut))
            from = cut
          }
          r.write(html.slice(from))
          expect(r.end()).toEqual(referenceHtmlValues(html, chains, attr))
        },
      ),
      { numRuns: 3000 },
    )
    // Only an unclosed tag or text-only element at the very end leaves a page to the Tokenizer.
    expect(htmlFallbacks.count - before).toBeLessThan(pages * 2 * 0.35)
  })
})

describe('a construct cut across many pieces', () => {
  // A 2 MB attribute value, comment or script string arriving in 1 KB pieces: each piece used
  // to make the scanner read the construct again from its start (2,000 pieces × up to 2 MB).
  // It now reads again only once the held text has doubled: linear in the page.
  const big = 'x'.repeat(2 * 1024 * 1024)
  const pages = {
    attribute: `<table class="results"><tr data-id="1" title="${big}"><td>a</td></tr><tr data-id="2"><td>b</td></tr></table>`,
    comment: `<table class="results"><!-- ${big} --><tr data-id="1"><td>a</td></tr><tr data-id="2"><td>b</td></tr></table>`,
    script: `<table class="results"><tr data-id="1"><td><script>var s = "${big}"</script></td></tr><tr data-id="2"></tr></table>`,
  }
  for (const [what, page] of Object.entries(pages))
    it(`reads a 2 MB ${what} in 1 KB pieces in linear work, with the right ids`, () => {
      const r = htmlReader(compileCss('table.results tr[data-id]'), 'data-id')
      const before = htmlRereads.chars
      for (let i = 0; i < page.length; i += 1024) r.write(page.slice(i, i + 1024))
      expect(r.end()).toEqual(['1', '2'])
      expect(htmlRereads.chars - before).toBeLessThan(3 * page.length)
    })
})
