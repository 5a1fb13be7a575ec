// Record ids in HTML, XML and CSV answers, as legacy portals serve them.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compileConfigText } from '../../src/config/index.js'
import { UninspectableError } from '../../src/errors.js'
import { compileAnswer, type AnswerSpec } from '../../src/records/answer/index.js'

const ids = (spec: Parameters<typeof compileAnswer>[0], body: string | Buffer, type = 'text/html; charset=utf-8') =>
  compileAnswer(spec).extract(Buffer.isBuffer(body) ? body : Buffer.from(body), type).ids

const ADDRESS_BOOK = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Address book</title>
<script>var tpl = '<table class="results"><tr data-id="9001"><td>x</td></tr></table>';</script></head>
<body>
<table class="layout"><tr><td>
  <table class="results">
    <tr><th>Name</th><th>City</th></tr>
    <tr class="row" data-id="101"><td><a href="/addressbook/view.do?id=101&amp;tab=1">Chan Tai Man</a></td><td>Kowloon</td></tr>
    <tr class="row odd" data-id="102"><td><a href="/addressbook/view.do?tab=1&id=102">Lee &amp; Sons</a></td><td>Sha Tin</td>
    <tr class="row" data-id="103" style="display:none"><td><a href='/addressbook/view.do?id=103'>Hidden</a></td>
    <!-- <tr data-id="104"><td><a href="/addressbook/view.do?id=104">commented out</a></td></tr> -->
    <template><tr data-id="105"><td>template</td></tr></template>
  </table>
</td></tr></table>
<p>stray < sign and <b>unclosed bold
</body></html>`

describe('html', () => {
  it('finds attributes by a CSS selector in nested tables, comments, scripts, templates, hidden rows and broken markup', () => {
    expect(ids({ html: 'table.results tr[data-id]', attr: 'data-id' }, ADDRESS_BOOK).sort()).toEqual([
      '101',
      '102',
      '103',
      '104',
      '105',
      '9001',
    ])
  })

  it('takes ids out of links with a regular expression, entities decoded', () => {
    expect(ids({ html: 'table.results a[href]', attr: 'href', match: '[?&]id=(\\d+)' }, ADDRESS_BOOK).sort()).toEqual([
      '101',
      '102',
      '103',
      '104',
    ])
  })

  it("takes an element's text when no attribute is named", () => {
    expect(ids({ html: 'tr.row > td > a' }, ADDRESS_BOOK)).toEqual(['Chan Tai Man', 'Lee & Sons', 'Hidden'])
  })

  it('uses text, the child combinator and lists', () => {
    const page =
      '<ul id="c"><li><span class="no">A-1</span></li><li><span class="no">A-2</span></li></ul><div><span class="no">X</span></div>'
    expect(ids({ html: '#c > li > span.no' }, page)).toEqual(['A-1', 'A-2'])
    expect(ids({ html: 'ul span.no, div > span' }, page)).toEqual(['A-1', 'A-2', 'X'])
  })

  it('decodes windows-1252 (0x80-0x9F printable) and Big5 as browsers do, from the header, a meta tag or a BOM', () => {
    const cp1252 = Buffer.concat([Buffer.from('<td class="n">'), Buffer.from([0x80, 0x31]), Buffer.from('</td>')])
    expect(ids({ html: 'td.n' }, cp1252, 'text/html; charset=iso-8859-1')).toEqual(['€1'])
    const big5 = Buffer.concat([
      Buffer.from(
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=big5"></head><td class="n">',
      ),
      Buffer.from([0xb3, 0xaf]), // 陳
      Buffer.from('</td>'),
    ])
    expect(ids({ html: 'td.n' }, big5, 'text/html')).toEqual(['陳'])
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('<td class="n">é</td>')])
    expect(ids({ html: 'td.n' }, bom, 'text/html; charset=windows-1252')).toEqual(['é'])
  })
})

const SOAP = `<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns2="urn:addr">
  <soap:Body><ns2:lookupResponse>
    <ns2:entry id="501"><ns2:name>A</ns2:name></ns2:entry>
    <entry id="502"><name><![CDATA[B & C]]></name></entry>
  </ns2:lookupResponse></soap:Body>
</soap:Envelope>`

describe('json', () => {
  it("reads what a legacy page's script reads: XSSI guards, JSONP, lenient JSON", () => {
    const list = (prefix: string, suffix = '') => `${prefix}{"items":[{"id":1},{"id":2}]}${suffix}`
    const json = (body: string, type = 'application/json') => ids('$.items[*].id', body, type)
    expect(json(list(")]}',\n"))).toEqual(['1', '2']) // AngularJS
    expect(json(list(")]}'\n"))).toEqual(['1', '2'])
    expect(json(list('while(1);'))).toEqual(['1', '2']) // Google
    expect(json(list('for (;;);'))).toEqual(['1', '2']) // Facebook
    expect(json(list('{}&&'))).toEqual(['1', '2'])
    expect(json(list('cb(', ');'), 'application/javascript')).toEqual(['1', '2'])
    expect(json(list('/**/ jQuery1124_99(', ')'), 'text/javascript')).toEqual(['1', '2'])
    expect(json(list('typeof cb === "function" && cb(', ');'))).toEqual(['1', '2'])
    expect(json("{items:[{id:3},{'id':'4'}]}")).toEqual(['3', '4']) // Json.NET, Gson
    // Not a document: still uninspectable.
    expect(() => json(list('cb(', '); steal()'))).toThrow(UninspectableError)
    expect(() => json('Internal error')).toThrow(UninspectableError)
  })
})

describe('xml', () => {
  it('follows an XPath subset with namespace prefixes ignored', () => {
    expect(ids({ xml: '/Envelope/Body/lookupResponse/entry/@id' }, SOAP, 'text/xml')).toEqual(['501', '502'])
    expect(ids({ xml: '//entry/@id' }, SOAP, 'text/xml')).toEqual(['501', '502'])
    expect(ids({ xml: '//entry/name/text()' }, SOAP, 'text/xml')).toEqual(['A', 'B & C'])
    expect(ids({ xml: '/Envelope//name' }, SOAP, 'text/xml')).toEqual(['A', 'B & C'])
  })

  it('a document that is not well-formed is uninspectable', () => {
    expect(() => ids({ xml: '//entry/@id' }, '<a><entry id="1"></a>', 'text/xml')).toThrow(/not well-formed/)
  })
})

describe('csv', () => {
  it('reads a column by header over CRLF rows with quoted commas, quotes and newlines', () => {
    const csv = 'id,name,address\r\n1,"Chan, Tai Man","Flat 3\r\n12 Nathan Rd"\r\n2,"Lee ""Jr""",x\r\n3,Wong,y\r\n'
    expect(ids({ csv: { column: 'ID' } }, csv, 'text/csv')).toEqual(['1', '2', '3'])
    expect(ids({ csv: { column: 2 } }, csv, 'text/csv')).toEqual(['Chan, Tai Man', 'Lee "Jr"', 'Wong'])
  })

  it('guesses the delimiter, skips and reports ragged rows, reads a BOM', () => {
    const csv = '\ufeffname;id\nA;7\nB\nC;9\n'
    const found = compileAnswer({ csv: { column: 'id' } }).extract(Buffer.from(csv), 'text/csv')
    expect(found).toEqual({ ids: ['7', '9'], skipped: 1 })
  })
})

describe('config', () => {
  const yaml = (records: string) => `version: 1
upstream: { url: "http://127.0.0.1:1" }
routes:
  - name: book
    path: /addressbook/list.do
    records: ${records}
    limits:
      - { window: 10m, distinctRecords: 50, action: throttle }
`
  it('rejects a bad CSS selector, XPath or regular expression with the line and what is wrong', () => {
    for (const [records, what] of [
      ['{ response: { html: "tr:nth-child(2)", attr: id } }', /nth-child.*not in the supported subset/],
      ['{ response: { html: "tr[", attr: id } }', /not a CSS selector/],
      ['{ response: { xml: "//entry[@id=1]" } }', /not in the supported subset/],
      ['{ response: { xml: "/a/b", match: "(" } }', /not a regular expression/],
    ] as const) {
      let message = ''
      try {
        compileConfigText(yaml(records), 'test.yaml', { env: {} })
      } catch (err) {
        message = (err as { format(): string }).format()
      }
      expect(message, records).toMatch(what)
      expect(message, records).toMatch(/test\.yaml:6/)
    }
  })

  it('accepts every form and says what each route extracts', () => {
    const config = compileConfigText(
      yaml('{ response: { html: "table.results tr[data-id]", attr: data-id, match: "(\\\\d+)" } }'),
      'test.yaml',
      { env: {} },
    )
    expect(config.routes[0]?.recordSource).toBe('response html "table.results tr[data-id]" @data-id ~ /(\\d+)/')
  })
})

describe('streamed: the same ids whatever the pieces the answer comes in', () => {
  const pieces = (spec: Parameters<typeof compileAnswer>[0], body: Buffer, type: string, cuts: number[]) => {
    const r = compileAnswer(spec).begin(type)
    let from = 0
    for (const cut of [...cuts].sort((a, b) => a - b)) {
      r.write(body.subarray(from, cut))
      from = cut
    }
    r.write(body.subarray(from))
    return r.end()
  }
  const UTF8_PAGE = Buffer.from(
    ADDRESS_BOOK.replace('Chan Tai Man', '陳大文 €').replace('Lee &amp; Sons', 'Lee &amp; Söhne &#x1F600;'),
  )
  const BIG5_PAGE = Buffer.concat([
    Buffer.from('<html><head><meta http-equiv="Content-Type" content="text/html; charset=big5"></head><table>'),
    ...[0, 1, 2].map((i) =>
      Buffer.concat([
        Buffer.from(`<tr><td class="n">${i}`),
        Buffer.from([0xb3, 0xaf, 0xa4, 0x6a]),
        Buffer.from('</td>'),
      ]),
    ),
    Buffer.from('</table>'),
  ])
  const CSV = Buffer.from(
    '\ufeffid;name;address\r\n1;"Chan; Tai ""Man""";"Flat 3\r\n12 Nathan Rd"\r\n2;陳;x\r\n\r\n3\r\n4;Wong;y\r5;Lee;z',
  )
  const XML = Buffer.from(SOAP.replace('<ns2:name>A</ns2:name>', '<ns2:name>Ä &amp; Ö</ns2:name>'))
  const CASES: [Parameters<typeof compileAnswer>[0], Buffer, string][] = [
    [{ html: 'table.results tr[data-id]', attr: 'data-id' }, UTF8_PAGE, 'text/html; charset=utf-8'],
    [{ html: 'tr.row > td > a' }, UTF8_PAGE, 'text/html'],
    [{ html: 'table.results a[href]', attr: 'href', match: '[?&]id=(\\d+)' }, UTF8_PAGE, 'text/html'],
    [{ html: 'td.n' }, BIG5_PAGE, 'text/html'],
    [{ csv: { column: 'id' } }, CSV, 'text/csv'],
    [{ csv: { column: 2 } }, CSV, 'text/csv; charset=utf-8'],
    [{ xml: '//entry/name/text()' }, XML, 'text/xml'],
    [{ xml: '//entry/@id' }, XML, 'application/soap+xml'],
    ['$.items[*].id', Buffer.from('{"items":[{"id":"陳1"},{"id":12345678901234567890}]}'), 'application/json'],
  ]

  it('split in two at every byte offset (in tags, entities, comments, scripts, quoted fields, multi-byte characters)', () => {
    for (const [spec, body, type] of CASES) {
      const whole = compileAnswer(spec).extract(body, type)
      expect(whole.ids.length, JSON.stringify(spec)).toBeGreaterThan(0)
      for (let cut = 0; cut <= body.length; cut++) expect(pieces(spec, body, type, [cut]), `${cut}`).toEqual(whole)
    }
    expect(compileAnswer({ html: 'td.n' }).extract(BIG5_PAGE, 'text/html').ids).toEqual(['0陳大', '1陳大', '2陳大'])
  })

  it('split anywhere into many pieces (fast-check)', () => {
    for (const [spec, body, type] of CASES) {
      const whole = compileAnswer(spec).extract(body, type)
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 0, max: body.length }), { maxLength: 40 }), (cuts) => {
          expect(pieces(spec, body, type, cuts)).toEqual(whole)
        }),
        { numRuns: 200 },
      )
    }
  })

  it('a <meta charset> in the second piece (within 1024 bytes) still decides the charset; a byte at a time too', () => {
    const page = Buffer.concat([
      Buffer.from(`<html><head><!-- ${'x'.repeat(600)} --><meta charset="windows-1252"></head><td class="n">`),
      Buffer.from([0x80, 0x93, 0x31, 0x94]),
      Buffer.from('</td>'),
    ])
    const spec = { html: 'td.n' }
    expect(pieces(spec, page, 'text/html', [300])).toEqual({ ids: ['€“1”'] })
    expect(
      pieces(
        spec,
        page,
        'text/html',
        Array.from({ length: page.length }, (_, i) => i),
      ),
    ).toEqual({ ids: ['€“1”'] })
    // Past the first 1024 bytes a browser no longer looks: UTF-8 (each stray byte a U+FFFD).
    const late = Buffer.concat([Buffer.from(' '.repeat(1100)), page])
    expect(pieces(spec, late, 'text/html', [1030])).toEqual({ ids: ['\ufffd\ufffd1\ufffd'] })
  })

  it('an XML document found not well-formed part way stops with UninspectableError at that piece', () => {
    const r = compileAnswer({ xml: '//entry/@id' }).begin('text/xml')
    r.write(Buffer.from('<a><entry id="1"/>'))
    expect(() => r.write(Buffer.from('</b>'))).toThrow(/not well-formed/)
  })
})

describe('an answer in another format than the route reads', () => {
  const html = { html: 'tr[data-id]', attr: 'data-id' }
  const csv = { csv: { column: 'id' } }
  const xml = { xml: '//entry/@id' }
  it('is uninspectable when it says so, or starts as no answer of the format does', () => {
    const refused: [AnswerSpec, string, string | undefined][] = [
      [html, '{"items":[{"id":1}]}', 'text/html'],
      [html, ' \n[1,2]', undefined],
      [html, '<entry id="1"/>', 'application/xml; charset=utf-8'],
      [html, '%PDF-1.4 …', 'application/octet-stream'],
      [html, 'anything', 'application/pdf'],
      [csv, '<html><table>', 'text/plain'],
      [csv, 'id\r\n1\r\n', 'application/json'],
      [csv, 'PK\u0003\u0004\u0014\u0000id,name', 'application/octet-stream'],
      [xml, '{"entry":[]}', 'text/plain'],
      [xml, '<entry id="1"/>', 'text/csv'],
    ]
    for (const [spec, body, type] of refused)
      expect(() => compileAnswer(spec).extract(Buffer.from(body), type), `${body} ${type}`).toThrow(UninspectableError)
  })
  it('reads what says nothing, or says what legacy apps say', () => {
    expect(ids(html, '\n  <table><tr data-id="1"></table>', undefined)).toEqual(['1'])
    expect(ids(html, '<tr data-id="2">', 'text/plain')).toEqual(['2'])
    expect(ids(csv, 'id\r\n3\r\n', 'text/html')).toEqual(['3']) // PHP's default type
    expect(ids(csv, 'id\r\n4\r\n', 'application/vnd.ms-excel')).toEqual(['4'])
    expect(ids(xml, '<?xml version="1.0"?><entry id="5"/>', 'application/soap+xml')).toEqual(['5'])
  })
})
