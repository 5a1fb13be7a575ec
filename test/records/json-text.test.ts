// Record ids read from JSON text (json-text.ts) against the reference: JSON.parse and the walk
// of selector.ts. They must agree wherever JSON.parse reads a document faithfully (no big
// numbers, no duplicate keys), and differ exactly where it does not.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  compileJsonTextSelector,
  JsonTextError,
  MAX_DEPTH,
  MAX_STEPS,
  selectJsonText,
  validateJsonText,
} from '../../src/records/json-text.js'
import { compileSelector, parseSelector, SelectorError } from '../../src/records/selector.js'

const select = (text: string, selector: string) => selectJsonText(text, parseSelector(selector))
const reference = (text: string, selector: string) => compileSelector(selector)(JSON.parse(text))
const sorted = (ids: string[]) => [...ids].sort()

function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

// --- Generated documents and selectors ---------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/** JSON text with `ws()` between every two tokens (and around the document). */
function serialize(value: Json, ws: () => string): string {
  const inner = (v: Json): string => {
    if (Array.isArray(v)) return `[${ws()}${v.map((e) => inner(e)).join(`${ws()},${ws()}`)}${ws()}]`
    if (v !== null && typeof v === 'object') {
      const members = Object.entries(v).map(([k, e]) => `${JSON.stringify(k)}${ws()}:${ws()}${inner(e)}`)
      return `{${ws()}${members.join(`${ws()},${ws()}`)}${ws()}}`
    }
    return JSON.stringify(v)
  }
  return `${ws()}${inner(value)}${ws()}`
}

function cycle(items: string[]): () => string {
  let n = 0
  return () => items[n++ % items.length] as string
}

/** A selector step naming `key`, or undefined if the selector syntax cannot spell it. */
function keyStep(key: string): string | undefined {
  if (/^[A-Za-z_$][\w$-]*$/.test(key)) return `.${key}`
  if (key.includes(']')) return undefined
  if (!key.includes('"')) return `["${key}"]`
  if (!key.includes("'")) return `['${key}']`
  return undefined
}

/** A selector (after the `$`) following the shape of `v` as `choices` say, ending anywhere, sometimes off it. */
function selectorFor(v: unknown, choices: Array<[number, number]>, miss: string): string {
  let selector = ''
  for (const [pick, kind] of choices) {
    if (Array.isArray(v) && v.length > 0) {
      const i = pick % v.length
      selector += [`[${i}]`, `[${i - v.length}]`, '[*]', `["${i}"]`][kind % 4]
      v = v[i]
    } else if (v !== null && typeof v === 'object' && Object.keys(v).length > 0) {
      const [key, value] = Object.entries(v)[pick % Object.keys(v).length] as [string, unknown]
      selector += (kind % 4 === 0 ? undefined : keyStep(key)) ?? '[*]'
      v = value
    } else {
      break
    }
  }
  return selector + miss
}

const misses = fc.oneof(
  { arbitrary: fc.constant(''), weight: 3 },
  {
    arbitrary: fc.constantFrom(
      '.nope',
      '.id',
      '[0]',
      '[-1]',
      '[99]',
      '[-99]',
      '[*]',
      '["0"]',
      '["length"]',
      '[-0]',
      '.*',
    ),
    weight: 1,
  },
)

// Strings with what JSON must escape, lone surrogates, pairs, and keys a selector may name.
const unit = fc.constantFrom(
  'a',
  'b',
  'id',
  '0',
  ' ',
  '"',
  '\\',
  '/',
  '\n',
  '\u0000',
  '\u001f',
  '\u007f',
  'é',
  '\u2028',
  '\ud800',
  '\udc00',
  '😀',
  ']',
  "'",
  '$',
)
const value = fc.oneof(
  fc.jsonValue({ maxDepth: 5 }),
  fc.jsonValue({ maxDepth: 3, stringUnit: unit }),
) as fc.Arbitrary<Json>
const values: fc.Arbitrary<Json> = fc.oneof(
  value,
  fc.array(value, { maxLength: 6 }),
  fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('id', 'ids', 'items')), value, { maxKeys: 6 }),
)
const documents = fc
  .tuple(values, fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 8 }), misses)
  .map(([value, choices, miss]) => ({ value, selector: `$${selectorFor(value, choices, miss)}` }))

describe('selectJsonText: the same ids as JSON.parse and the walk', () => {
  it('on generated documents and selectors following their shape', () => {
    fc.assert(
      fc.property(documents, fc.constantFrom(undefined, 1, 2, '\t'), ({ value, selector }, indent) => {
        const text = JSON.stringify(value, null, indent)
        expect(sorted(select(text, selector))).toEqual(sorted(reference(text, selector)))
      }),
      { numRuns: 1500 },
    )
  })

  it('with whitespace between every two tokens', () => {
    const ws = fc.array(fc.constantFrom('', ' ', '\n', '\t', '\r\n', '   ', ' \r\n\t '), { minLength: 1, maxLength: 8 })
    fc.assert(
      fc.property(documents, ws, ({ value, selector }, spaces) => {
        const text = serialize(value, cycle(spaces))
        expect(sorted(select(text, selector))).toEqual(sorted(reference(text, selector)))
      }),
      { numRuns: 500 },
    )
  })

  it('in document order (for selectors that do not enumerate objects)', () => {
    const text = JSON.stringify({
      items: [{ id: 3 }, { id: '1' }, { id: 2 }, { id: [4, '5', { no: 1 }, [6], null, true, ''] }],
      total: 4,
    })
    expect(select(text, '$.items[*].id')).toEqual(['3', '1', '2', '4', '5'])
    expect(select(text, '$.items[*].id')).toEqual(reference(text, '$.items[*].id'))
  })

  it('on the selector forms: dot paths, [*], [n], negative [n], quoted keys', () => {
    const text = JSON.stringify({
      items: [
        { id: 1, name: 'a' },
        { id: '2', name: 'b' },
        { id: null },
        { id: { nested: true } },
        { name: 'no id' },
        { id: 3.5 },
      ],
      'odd key': { ids: [7, 8] },
      total: 3,
    })
    for (const selector of [
      '$.items[*].id',
      '$.items[0].id',
      '$.items[-1].id',
      '$.items[-6].id',
      '$.items[-7].id',
      '$.items[6].id',
      '$["odd key"].ids[*]',
      "$['odd key'].ids",
      '$.total',
      '$',
      '$.*',
      '$[*][*]',
      '$.items[*].*',
      '$.items.id',
      '$.total.id',
      '$.items[-0].id',
    ]) {
      expect(select(text, selector), selector).toEqual(reference(text, selector))
    }
  })

  it('reads an array through its own properties as the walk does: ["0"] and ["length"]', () => {
    const text = '{"ids":[10,20,30],"o":{"0":"zero","length":"long"}}'
    for (const selector of [
      '$.ids["0"]',
      '$.ids["2"]',
      '$.ids["3"]',
      '$.ids["01"]',
      '$.ids.length',
      '$.ids.length.x',
      '$.o["0"]',
      '$.o.length',
      '$["ids"]',
    ]) {
      expect(select(text, selector), selector).toEqual(reference(text, selector))
    }
    expect(select(text, '$.ids.length')).toEqual(['3'])
    expect(select('{"__proto__":5,"constructor":6}', '$.__proto__')).toEqual(
      reference('{"__proto__":5,"constructor":6}', '$.__proto__'),
    )
    expect(select('{}', '$.constructor')).toEqual([])
    expect(select('"abc"', '$.length')).toEqual([])
  })

  it('compileJsonTextSelector compiles once', () => {
    const ids = compileJsonTextSelector('$.items[*].id')
    expect(ids('{"items":[{"id":1},{"id":2}]}')).toEqual(['1', '2'])
    expect(compileJsonTextSelector(parseSelector('$[1]'))('["a","b"]')).toEqual(['b'])
  })
})

describe('numbers: read from their own digits', () => {
  it('counts 50 distinct big ids as 50 (JSON.parse rounds them together)', () => {
    for (const ids of [
      Array.from({ length: 50 }, (_, k) => `12345678901234567${801 + k}`), // 20 digits
      Array.from({ length: 50 }, (_, k) => `9007199254740${993 + 2 * k}`), // just above 2^53
      Array.from({ length: 50 }, (_, k) => `-92233720368547757${10 + k}`), // 19 digits, Java long min
    ]) {
      const text = `{"items":[${ids.map((id) => `{"id":${id}}`).join(',')}]}`
      const read = select(text, '$.items[*].id')
      expect(read).toEqual(ids)
      expect(new Set(read).size).toBe(50)
      expect(new Set(reference(text, '$.items[*].id')).size).toBeLessThan(50)
      expect(select(`[${ids.join(',')}]`, '$')).toEqual(ids)
    }
  })

  it('gives an integer the text String(Number(token)) gives it, so 1 and "1" are one record', () => {
    expect(
      select('[1,"1",-0,0,"0",-17,9007199254740991,-9007199254740991,1.0,1e0,10e-1,1E2,-0.0,2.50e1]', '$'),
    ).toEqual([
      '1',
      '1',
      '0',
      '0',
      '0',
      '-17',
      '9007199254740991',
      '-9007199254740991',
      '1',
      '1',
      '1',
      '100',
      '0',
      '25',
    ])
  })

  it('keeps any other fraction or exponent as written', () => {
    expect(select('[1.5,-0.25,2.50,1e-7,1.5e300,1e400,-1e400,12345678901234567890.5,1E+21]', '$')).toEqual([
      '1.5',
      '-0.25',
      '2.50',
      '1e-7',
      '1.5e300',
      '1e400',
      '-1e400',
      '12345678901234567890.5',
      '1E+21',
    ])
    // As JSON.stringify writes numbers, these are String(n): the same ids as the walk.
    for (const n of [1.5, -0.25, 1e-7, 1.5e300, 1e21, 5e-324, 0.1 + 0.2, 123456789012345680000]) {
      expect(select(JSON.stringify([n]), '$')).toEqual([String(n)])
    }
  })
})

describe('duplicate keys: every member with the key is followed', () => {
  it('counts the union, not the last (JSON.parse) or the first', () => {
    const eight = Array.from({ length: 8 }, (_, k) => `{"id":${k + 1}}`).join(',')
    const text = `{"items":[${eight}],"items":[]}`
    expect(select(text, '$.items[*].id')).toEqual(['1', '2', '3', '4', '5', '6', '7', '8'])
    expect(reference(text, '$.items[*].id')).toEqual([])
    expect(select(`{"items":[],"items":[${eight}]}`, '$.items[*].id')).toHaveLength(8)
    expect(select(`{"items":[${eight}],"items":[{"id":9}],"items":[${eight}]}`, '$.items[*].id')).toHaveLength(17)
  })

  it('at several levels, in arrays of objects, and with whole arrays selected', () => {
    const text =
      '{"a":{"b":[{"id":1,"id":2},{"id":3}],"b":[{"id":4}]},"x":0,"a":{"b":{"id":5},"b":[{"id":6,"id":[7,8]}]}}'
    expect(select(text, '$.a.b[*].id')).toEqual(['1', '2', '3', '4', '6', '7', '8'])
    expect(select(text, '$.a.b.id')).toEqual(['5'])
    expect(select(text, '$.a.b[0].id')).toEqual(['1', '2', '4', '6', '7', '8'])
    expect(select(text, '$.a.b[-1].id')).toEqual(['3', '4', '6', '7', '8'])
    expect(select('{"ids":[1,2],"ids":"3","ids":[4]}', '$.ids')).toEqual(['1', '2', '3', '4'])
  })

  it('[*] over an object visits every member, duplicates included', () => {
    expect(select('{"x":1,"x":2,"y":"3","x":{"id":9}}', '$.*')).toEqual(['1', '2', '3'])
    expect(select('{"x":{"id":1},"x":{"id":2},"y":{"id":3,"id":4}}', '$[*].id')).toEqual(['1', '2', '3', '4'])
  })

  it('compares keys after decoding escapes', () => {
    expect(select('{"\\u0069d":1,"i\\u0064":2,"\\u0069\\u0064":3,"id":4,"\\"id\\"":5,"id ":6,"ID":7}', '$.id')).toEqual(
      ['1', '2', '3', '4'],
    )
    expect(select('{"a\\"b":1,"a\\\\b":2,"a\\/b":3,"a\\nb":4}', `$['a"b']`)).toEqual(['1'])
    expect(select('{"a\\"b":1,"a\\\\b":2,"a\\/b":3,"a\\nb":4}', '$["a\\b"]')).toEqual(['2'])
    expect(select('{"a\\"b":1,"a\\\\b":2,"a\\/b":3,"a\\nb":4}', '$["a/b"]')).toEqual(['3'])
    expect(select('{"\\ud83d\\ude00":1,"😀":2}', '$["😀"]')).toEqual(['1', '2'])
    expect(select('{"é":1,"\\u00e9":2,"\\u00E9":3}', '$["é"]')).toEqual(['1', '2', '3'])
  })
})

describe('strings', () => {
  it('decodes escapes in selected strings and skips empty ones', () => {
    const text = String.raw`["a\"b","\\","\/","\b\f\n\r\t","\u0041\u00e9\u4e2d","\ud83d\ude00","\ud800","","\u0000",""]`
    expect(select(text, '$')).toEqual(['a"b', '\\', '/', '\b\f\n\r\t', 'Aé中', '😀', '\ud800', '\u0000'])
    expect(select(text, '$')).toEqual(reference(text, '$'))
  })

  it('reads text with non-ASCII characters, U+2028 and long strings', () => {
    const long = 'x'.repeat(100_000)
    const text = `{"skip":"${long}\u2028é😀","ids":["${long}","é😀\u2028"],"tail":"\\\\${long}"}`
    expect(select(text, '$.ids')).toEqual([long, 'é😀\u2028'])
    expect(select(text, '$.tail')).toEqual([`\\${long}`])
  })
})

describe('the text around the value', () => {
  it('skips a leading byte order mark, only there', () => {
    expect(select('\uFEFF{"id":1}', '$.id')).toEqual(['1'])
    expect(select('\uFEFF \n[2]', '$')).toEqual(['2'])
    expect(thrown(() => select(' \uFEFF{"id":1}', '$.id'))).toBeInstanceOf(JsonTextError)
    expect(thrown(() => select('{"id":1}\uFEFF', '$.id'))).toBeInstanceOf(JsonTextError)
    expect(thrown(() => select('{\uFEFF"id":1}', '$.id'))).toBeInstanceOf(JsonTextError)
  })

  it('allows the four whitespace characters everywhere between tokens, and no others', () => {
    const text =
      ' \t\r\n{ \t\r\n"items" \t\r\n: \t\r\n[ \t\r\n{ "id" : 1 } \t\r\n, \t\r\n{ "id" :\n"2"\n}\n] \t\r\n, "x" : [ ] , "y" : { } } \t\r\n'
    expect(select(text, '$.items[*].id')).toEqual(['1', '2'])
    for (const space of ['\u00a0', '\u2028', '\u000b', '\u000c', '\u3000']) {
      expect(thrown(() => select(`[1,${space}2]`, '$'))).toBeInstanceOf(JsonTextError)
    }
  })
})

describe('invalid JSON throws JsonTextError', () => {
  const invalid = [
    '',
    ' ',
    '{',
    '[',
    '[1',
    '[1,',
    '{"a"',
    '{"a":',
    '{"a":1',
    '{"a":1,',
    '"abc',
    '"abc\\',
    '"\\u12',
    'tru',
    'nul',
    'f',
    '[1,]',
    '{"a":1,}',
    '[,1]',
    '{,}',
    '[1 2]',
    '{"a" 1}',
    '{"a":1 "b":2}',
    '{a:1}',
    '{1:1}',
    '{"a"::1}',
    '[1]]',
    '{"a":1}}',
    '[1] 2',
    '{}x',
    '1 1',
    '"a" "b"',
    '01',
    '-01',
    '00',
    '1.',
    '.5',
    '-',
    '-a',
    '+1',
    '1e',
    '1e+',
    '1.e5',
    '0x10',
    '1_000',
    'NaN',
    '-Infinity',
    'Infinity',
    '[NaN]',
    "'a'",
    "{'a':1}",
    '["a\\x41"]',
    '["\\u00G1"]',
    '["\\U0041"]',
    '["\\\'"]',
    '["\\a"]',
    // Control characters outside strings, or after a backslash (inside strings they are read: below).
    '[\u0000]',
    '[1,\u001f2]',
    '{"a":1\u0001}',
    '["a\\\u0001"]',
    '\u000b1',
    'True',
    'nulll',
    'undefined',
    '[1,2',
    '{"a":[}',
    '[{]',
    '[1}',
    '{"a":1]',
    '/* c */ 1',
    '[1] // c',
  ]

  it.each(invalid.map((text) => [JSON.stringify(text), text]))('%s', (_, text) => {
    expect(() => JSON.parse(text)).toThrow()
    for (const selector of ['$', '$.a', '$[0]', '$[-1]', '$[*]', '$.a[*].b']) {
      const err = thrown(() => select(text, selector))
      expect(err, selector).toBeInstanceOf(JsonTextError)
      expect((err as JsonTextError).position).toBeGreaterThanOrEqual(0)
      expect((err as JsonTextError).position).toBeLessThanOrEqual(text.length)
    }
    expect(thrown(() => validateJsonText(text))).toBeInstanceOf(JsonTextError)
  })

  it('says where', () => {
    expect(thrown(() => select('[1,]', '$'))).toMatchObject({
      position: 3,
      message: 'unexpected character "]" at position 3',
    })
    expect(thrown(() => select('{"a":01}', '$.a'))).toMatchObject({ position: 6 })
    expect(thrown(() => select('[1,\u0001]', '$'))).toMatchObject({
      position: 3,
      message: 'unexpected control character "\\u0001" at position 3',
    })
    expect(thrown(() => select('[1', '$'))).toMatchObject({
      position: 2,
      message: 'unexpected end of JSON at position 2',
    })
  })

  it('validates what the selector skips as well as what it reads', () => {
    expect(thrown(() => select('{"skip":[1,{"a":01}],"id":1}', '$.id'))).toBeInstanceOf(JsonTextError)
    expect(thrown(() => select('{"id":1,"skip":"\\x"}', '$.id'))).toBeInstanceOf(JsonTextError)
    expect(thrown(() => select('{"items":[{"id":1},{"id":2,}]}', '$.items[0].id'))).toBeInstanceOf(JsonTextError)
    expect(thrown(() => select('{"items":[{"id":1},{"id":2}', '$.items[-1].id'))).toBeInstanceOf(JsonTextError)
  })

  it('reads raw control characters inside strings as lenient readers do (Python strict=False, Jackson, Gson)', () => {
    // JSON.parse refuses these texts; a hand-built legacy answer holds them whenever a user typed
    // a tab: refusing would make the page uninspectable for everyone.
    const text = '{"items":[{"id":"a\u0001b","note":"tab\there"},{"id":"c\nd"},{"id":7}]}'
    expect(() => JSON.parse(text)).toThrow()
    expect(select(text, '$.items[*].id')).toEqual(['a\u0001b', 'c\nd', '7'])
    expect(select('{"a\tb":1}', '$["a\tb"]')).toEqual(['1'])
    expect(thrown(() => validateJsonText(text))).toBeUndefined()
    // Outside strings, and after a backslash, a control character is still an error.
    expect(thrown(() => select('[1,\u0001 2]', '$[*]'))).toBeInstanceOf(JsonTextError)
    expect(thrown(() => select('["a\\\u0001"]', '$[*]'))).toBeInstanceOf(JsonTextError)
  })

  it('accepts and refuses what a lenient JSON.parse does (raw control characters in strings), on mutated and random texts', () => {
    const chars = [
      '"',
      '\\',
      ',',
      ':',
      '[',
      ']',
      '{',
      '}',
      '0',
      '1',
      '9',
      '-',
      '+',
      '.',
      'e',
      'E',
      'x',
      'u',
      'a',
      'f',
      't',
      'n',
      'l',
      's',
      'r',
      ' ',
      '\n',
      '\t',
      '\u0000',
      '\u001f',
      '/',
      "'",
      '\u00a0',
      '\u2028',
      'é',
    ]
    // JSON.parse after escaping the raw control characters inside strings (a string runs from an
    // unescaped quote to the next; a backslash takes the character after it): the lenient readers.
    const lenient = (text: string) => {
      let out = ''
      let inString = false
      for (let i = 0; i < text.length; i++) {
        const ch = text[i] as string
        if (inString && ch === '\\') {
          out += ch + (text[i + 1] ?? '')
          i++
        } else if (inString && ch.charCodeAt(0) < 32) {
          out += `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`
        } else {
          if (ch === '"') inString = !inString
          out += ch
        }
      }
      return out
    }
    const agrees = (text: string) => {
      let valid = true
      try {
        JSON.parse(lenient(text))
      } catch {
        valid = false
      }
      const err = thrown(() => validateJsonText(text))
      if (err !== undefined) expect(err).toBeInstanceOf(JsonTextError)
      expect(err === undefined, JSON.stringify(text)).toBe(valid)
      for (const selector of ['$', '$[*]', '$.a', '$[-1]']) {
        const e = thrown(() => select(text, selector))
        expect(e === undefined, `${selector} ${JSON.stringify(text)}`).toBe(valid)
      }
    }
    const mutation = fc.tuple(
      fc.constantFrom('delete', 'insert', 'replace', 'truncate'),
      fc.nat(),
      fc.constantFrom(...chars),
    )
    fc.assert(
      fc.property(
        values,
        fc.constantFrom(undefined, 1),
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
        (value, indent, mutations) => {
          let text = JSON.stringify(value, null, indent)
          for (const [kind, at, char] of mutations) {
            const i = text.length === 0 ? 0 : at % (text.length + 1)
            if (kind === 'delete') text = text.slice(0, i) + text.slice(i + 1)
            else if (kind === 'insert') text = text.slice(0, i) + char + text.slice(i)
            else if (kind === 'replace') text = text.slice(0, i) + char + text.slice(i + 1)
            else text = text.slice(0, i)
          }
          agrees(text)
        },
      ),
      { numRuns: 3000 },
    )
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...chars, 'true', 'false', 'null', '"a"', '12', '1.5e3'), maxLength: 16 }),
        agrees,
      ),
      { numRuns: 3000 },
    )
  })
})

describe('nesting', () => {
  it('refuses a body nested a million deep with JsonTextError, not a stack overflow', () => {
    const d = 1_000_000
    for (const text of [
      '['.repeat(d),
      '['.repeat(d) + ']'.repeat(d),
      '{"a":'.repeat(d),
      '{"a":'.repeat(d) + '1' + '}'.repeat(d),
      '[{"a":'.repeat(d / 2),
    ]) {
      for (const selector of ['$', '$[0]', '$[*]', '$[-1]', '$.a', '$.a.a.a', '$[0].a[-1].a', '$.x']) {
        const err = thrown(() => select(text, selector))
        expect(err, selector).toBeInstanceOf(JsonTextError)
        expect((err as Error).message).toMatch(/^nesting deeper than 10,000 at position/)
      }
    }
  })

  it(`reads ${MAX_DEPTH.toLocaleString('en-US')} levels and refuses one more`, () => {
    const deep = (n: number) => '['.repeat(n - 1) + '[7]' + ']'.repeat(n - 1)
    expect(select(deep(MAX_DEPTH), '$')).toEqual([])
    expect(select(deep(MAX_STEPS), '$' + '[0]'.repeat(MAX_STEPS - 1))).toEqual(['7'])
    expect(select(deep(MAX_STEPS), '$' + '[-1]'.repeat(MAX_STEPS - 1))).toEqual(['7'])
    expect(select(deep(MAX_DEPTH), '$' + '[-1]'.repeat(MAX_STEPS - 1))).toEqual([])
    expect(thrown(() => select(deep(MAX_DEPTH + 1), '$'))).toBeInstanceOf(JsonTextError)
    expect(thrown(() => select(deep(MAX_DEPTH + 1), '$' + '[*]'.repeat(MAX_STEPS)))).toBeInstanceOf(JsonTextError)
    const objects = (n: number) => '{"a":'.repeat(n) + '"x"' + '}'.repeat(n)
    expect(select(objects(MAX_DEPTH), '$' + '.a'.repeat(MAX_STEPS))).toEqual([])
    expect(thrown(() => select(objects(MAX_DEPTH + 1), '$' + '.a'.repeat(MAX_STEPS)))).toBeInstanceOf(JsonTextError)
  })

  it(`refuses selectors of more than ${MAX_STEPS} steps (config, not body, errors)`, () => {
    expect(select('[[1]]', '$' + '[*]'.repeat(MAX_STEPS))).toEqual([])
    expect(thrown(() => select('[[1]]', '$' + '[*]'.repeat(MAX_STEPS + 1)))).toBeInstanceOf(SelectorError)
  })
})
