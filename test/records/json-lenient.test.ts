// Lenient JSON (Gson's default, Json.NET's, Jackson's ALLOW_* features) read as the union of
// those readers, through strict JSON text: what a strict reader refuses and they accept.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { selectBody } from '../../src/records/body.js'
import { strictFromLenient } from '../../src/records/json-lenient.js'
import { compileSelector } from '../../src/records/selector.js'

const ids = compileSelector('$.ids')
const FORM = 'application/x-www-form-urlencoded'

describe('lenient JSON', () => {
  it('reads what Gson and Json.NET read', () => {
    const cases: [string, unknown][] = [
      ['{ids:[1,2,3]}', { ids: [1, 2, 3] }],
      ["{'ids':['a','b\\'c']}", { ids: ['a', "b'c"] }],
      [')]}\'\n{"ids":[1]}', { ids: [1] }],
      ['// a comment\n{ /* here */ ids: [1, # and here\n 2]}', { ids: [1, 2] }],
      ['{ids=[1;2;3]}', { ids: [1, 2, 3] }],
      ['{ids=>[1,2,],}', { ids: [1, 2] }],
      ['[,1;;2]', [null, 1, null, 2]],
      ['{a:1;b:{c:[x,y]}}', { a: 1, b: { c: ['x', 'y'] } }],
      ['{"s":"\\u0041\\q"}', { s: 'Aq' }],
      ['\ufeff{ids:[true,null,-1.5e3]}', { ids: [true, null, -1500] }],
    ]
    for (const [text, value] of cases) expect(JSON.parse(strictFromLenient(text) as string), text).toEqual(value)
  })

  it('keeps what no JSON literal is as a string: leading zeros, hex, NaN, big integers keep their digits', () => {
    expect(strictFromLenient('{ids:[017,0x1F,NaN,12345678901234567890]}')).toBe(
      '{"ids":["017","0x1F","NaN",12345678901234567890]}',
    )
  })

  it('reads only a whole document that is an object or an array', () => {
    for (const text of [
      'ids=1&ids=2',
      'garbage',
      '"str"',
      '12',
      '{ids:[1]} trailing',
      '{ids:[1]',
      "{'ids",
      '{:1}',
      '{a 1}',
      '',
    ])
      expect(strictFromLenient(text), text).toBeNull()
    expect(strictFromLenient('{ids:[1]} // done\n')).toBe('{"ids":[1]}')
  })

  it('reads strict JSON as JSON.parse does', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value)
        if (!text.startsWith('{') && !text.startsWith('[')) return
        expect(JSON.parse(strictFromLenient(text) as string)).toEqual(JSON.parse(text))
      }),
      { numRuns: 500 },
    )
  })

  it('does not overflow the stack on deep nesting', () => {
    expect(strictFromLenient('['.repeat(200_000))).toBeNull()
    expect(strictFromLenient(`${'['.repeat(5000)}${']'.repeat(5000)}`)).toBe(`${'['.repeat(5000)}${']'.repeat(5000)}`)
  })

  it('a request body in lenient JSON counts its ids whatever its type; a form and garbage read as before', () => {
    expect(selectBody(Buffer.from("{ids:[1,2,3],'IDS':[4]}"), FORM, ids)).toEqual(['1', '2', '3', '4'])
    expect(selectBody(Buffer.from('{ids=[5;6]}'), 'text/plain', ids)).toEqual(['5', '6'])
    expect([...new Set(selectBody(Buffer.from('ids=7&ids=8'), FORM, ids))]).toEqual(['7', '8'])
    expect(() => selectBody(Buffer.from('garbage'), 'text/plain', ids)).toThrow(/neither JSON nor a form/)
    expect(() => selectBody(Buffer.from('{ids:[1]'), 'application/json', ids)).toThrow(/not valid JSON/)
  })
})
