// The fast reading path against the code it stands in for: lines split as node:readline splits
// them, combined lines parsed as combinedParser parses them, CLF times as parseClfTime reads them,
// on generated text full of the characters that matter (quotes, brackets, escapes, CR, tabs).
import { Readable } from 'node:stream'
import { createInterface } from 'node:readline'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ClfTimes, combinedParser, combinedScanner, parseClfTime, type ParseResult } from '../../src/replay/formats.js'
import { ByteLines, eachLineOf } from '../../src/replay/lines.js'

async function readlineLines(chunks: Buffer[]): Promise<string[]> {
  const out: string[] = []
  for await (const line of createInterface({ input: Readable.from(chunks), crlfDelay: Infinity })) out.push(line)
  return out
}

function splitLines(chunks: Buffer[], pieceBytes: number): string[] {
  const out: string[] = []
  const handler = { line: (text: string, s: number, e: number) => void out.push(text.slice(s, e)) }
  const splitter = new ByteLines()
  for (const c of chunks) {
    const whole = splitter.push(c)
    if (whole) eachLineOf(whole, false, handler, pieceBytes)
  }
  const tail = splitter.end()
  if (tail) eachLineOf(tail, true, handler, pieceBytes)
  return out
}

/** Text cut into chunks at the given points. */
const chunked = fc
  .tuple(
    fc.array(fc.constantFrom('a', 'é', ' ', '\n', '\r', '\r\n', 'xyz', '\t', '€'), { maxLength: 60 }),
    fc.array(fc.nat(200), { maxLength: 6 }),
  )
  .map(([parts, cuts]) => {
    const bytes = Buffer.from(parts.join(''))
    const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((x, y) => x - y)
    const chunks: Buffer[] = []
    let from = 0
    for (const c of [...at, bytes.length]) {
      if (c > from) chunks.push(bytes.subarray(from, c))
      from = c
    }
    return chunks
  })

describe('lines', () => {
  it('are the lines readline reads, whatever the chunks and pieces', async () => {
    await fc.assert(
      fc.asyncProperty(chunked, fc.constantFrom(1, 3, 64), async (chunks, piece) => {
        expect(splitLines(chunks, piece)).toEqual(await readlineLines(chunks))
      }),
      { numRuns: 400 },
    )
  })
})

const token = fc.constantFrom(
  ' ',
  ' ',
  '  ',
  '\t',
  '"',
  '[',
  ']',
  '\\',
  '\\"',
  '\\x22',
  '-',
  'alice',
  'uid=',
  'uid="bo b"',
  'GET',
  'get',
  'G@T',
  '/api/contacts/1',
  '/a b',
  'HTTP/1.1',
  'HTTP/2',
  'HTTP/1.x',
  '10.0.0.1',
  '\u00a0',
  'é',
  '200',
)

/** Lines shaped like combined lines, with anything in any field. */
const line = fc.oneof(
  fc.array(token, { maxLength: 30 }).map((t) => t.join('')),
  fc
    .record({
      client: fc.constantFrom('10.0.0.1', '-', '2001:db8::1', ' ', '"10.0.0.2"', '\u00a0x'),
      user: fc.constantFrom('alice', '-', '"bob smith"', 'a"b c"d', ' ', 'é'),
      time: fc.constantFrom(
        '10/Oct/2000:13:55:36 -0700',
        '10/Oct/2000:13:55:37 -0700',
        '01/Jan/0099:00:00:00 +0000',
        '31/Feb/2024:25:61:61 +1400',
        '10/oct/2000:13:55:36 -0700',
        '10/Oct/2000:13:55:36.250 +0100',
        '10/Xyz/2000:13:55:36 -0700',
        '10/Oct/2000 13:55:36 -0700',
        '',
      ),
      request: fc.constantFrom(
        'GET /api/contacts/1 HTTP/1.1',
        'get /api/contacts/2 HTTP/1.0',
        'POST /x',
        'GET /a b HTTP/1.1',
        'GET  HTTP/1.1',
        'GET /x HTTP/1.x',
        'GET /x HTTP/2',
        'G@T /x HTTP/1.1',
        '-',
        '',
        'GET',
        'GET /x\\" HTTP/1.1',
      ),
      rest: fc.array(token, { maxLength: 8 }).map((t) => t.join('')),
      extra: fc.constantFrom('', ' uid=carol', ' uid="dan e"', ' x uid=-', ' 7 8'),
    })
    .map((r) => `${r.client} - ${r.user} [${r.time}] "${r.request}" 200 12 "-" "${r.rest}"${r.extra}`),
)

function same(a: ParseResult, b: ParseResult): void {
  expect(typeof a === 'symbol' ? 'IGNORED' : a).toEqual(typeof b === 'symbol' ? 'IGNORED' : b)
}

describe('combined lines', () => {
  for (const account of ['user', 'none', '1', 'uid']) {
    it(`parse as combinedParser parses them (account: ${account})`, () => {
      fc.assert(
        fc.property(fc.array(line, { maxLength: 8 }), fc.nat(3), (lines, pad) => {
          const scan = combinedScanner(account)
          const parse = combinedParser(account)
          // Lines in place in one text, as the reader sees them.
          const text = `${'x\n'.repeat(pad)}${lines.join('\n')}\n`
          let at = 2 * pad
          for (const l of lines) {
            same(scan(text, at, at + l.length), parse(l))
            at += l.length + 1
          }
        }),
        { numRuns: 2000 },
      )
    })
  }
})

describe('CLF times', () => {
  it('read by position as parseClfTime reads them', () => {
    const two = (n: number) => String(n).padStart(2, '0')
    fc.assert(
      fc.property(
        fc.record({
          d: fc.nat(99),
          mon: fc.constantFrom('Jan', 'Feb', 'Dec', 'jan', 'JAN', 'Xyz', 'Ja1'),
          y: fc.nat(9999),
          h: fc.nat(99),
          m: fc.nat(99),
          s: fc.nat(99),
          sign: fc.constantFrom('+', '-', ' '),
          z: fc.nat(9999),
        }),
        fc.constantFrom('', 'x', '.5'),
        (t, junk) => {
          const times = new ClfTimes()
          const text = `${two(t.d)}/${t.mon}/${String(t.y).padStart(4, '0')}:${two(t.h)}:${two(t.m)}:${two(t.s)}${junk} ${t.sign}${String(t.z).padStart(4, '0')}`
          const want = parseClfTime(text)
          const got = times.parse(text) ?? parseClfTime(text)
          expect(got).toBe(want)
          // The day remembered serves the next time of the same day.
          const later = text.replace(/:(\d\d) /, ':59 ')
          expect(times.parse(later) ?? parseClfTime(later)).toBe(parseClfTime(later))
        },
      ),
      { numRuns: 3000 },
    )
  })
})
