// The pieces that find record ids in bodies: the JSON selector, body reading and decoding,
// and the query clamp.
import { Readable } from 'node:stream'
import { gzipSync, brotliCompressSync, deflateSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { contentDecoder, readCapped, selectBody, UninspectableError } from '../../src/records/body.js'
import { formReadings } from '../../src/records/keys.js'
import { compileClamp } from '../../src/records/clamp.js'
import { compileSelector, SelectorError } from '../../src/records/selector.js'

describe('selector', () => {
  const doc = {
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
  }

  it('selects with dot paths, [*], [n], negative [n] and quoted keys', () => {
    expect(compileSelector('$.items[*].id')(doc)).toEqual(['1', '2', '3.5'])
    expect(compileSelector('$.items[0].id')(doc)).toEqual(['1'])
    expect(compileSelector('$.items[-1].id')(doc)).toEqual(['3.5'])
    expect(compileSelector('$["odd key"].ids[*]')(doc)).toEqual(['7', '8'])
    expect(compileSelector("$['odd key'].ids")(doc)).toEqual(['7', '8'])
    expect(compileSelector('$.total')(doc)).toEqual(['3'])
    expect(compileSelector('$.*.ids')(doc)).toEqual(['7', '8'])
    expect(compileSelector('$')([5, 'x', true])).toEqual(['5', 'x'])
  })

  it('finds nothing (never throws) where the document has another shape', () => {
    const sel = compileSelector('$.items[*].id')
    for (const v of [null, 1, 'text', [], {}, { items: 'x' }, { items: { a: { id: 9 } } }])
      expect(() => sel(v)).not.toThrow()
    expect(sel({ items: { a: { id: 9 } } })).toEqual(['9']) // [*] over an object's values
    expect(sel({ items: [[{ id: 1 }]] })).toEqual([])
    expect(compileSelector('$.items[9].id')(doc)).toEqual([])
  })

  it('reads own properties only (no prototype walk)', () => {
    expect(compileSelector('$.constructor.name')({})).toEqual([])
    expect(compileSelector('$.__proto__')(JSON.parse('{"__proto__": "x"}'))).toEqual(['x'])
  })

  it('refuses what it does not support, saying what to write', () => {
    for (const bad of ['items[*].id', '$..id', '$.items[?(@.id)]', '$.items[', '$ .x', '$.']) {
      expect(() => compileSelector(bad), bad).toThrow(SelectorError)
    }
  })
})

describe('reading bodies', () => {
  const chunks = (...parts: string[]) => Readable.from(parts.map((p) => Buffer.from(p)))

  it('feeds each chunk as it is held (the held bytes themselves when the length is known); a feed that refuses stops reading', async () => {
    const fed: Buffer[] = []
    const r = await readCapped(chunks('hello', ' ', 'world'), 100, 11, undefined, (c) => void fed.push(c))
    expect(r.complete).toBe(true)
    if (!r.complete) return
    expect(fed.map(String)).toEqual(['hello', ' ', 'world'])
    for (const c of fed) expect(c.buffer).toBe(r.body.buffer)
    const stopped = await readCapped(chunks('ab', 'cd', 'ef'), 100, undefined, undefined, (c) => {
      if (String(c) === 'cd') throw new UninspectableError('no')
    })
    expect(stopped.complete).toBe(false)
    if (stopped.complete) return
    expect(stopped.problem).toBe('no')
    const rest: string[] = []
    for await (const c of stopped.rest()) rest.push(String(c))
    expect(rest.join('')).toBe('abcdef')
  })

  it('reads a body within the cap, with or without a known length', async () => {
    for (const expected of [undefined, 11]) {
      const r = await readCapped(chunks('hello', ' ', 'world'), 100, expected)
      expect(r.complete && r.body.toString()).toBe('hello world')
    }
  })

  it('a body shorter or longer than its declared length is still read whole', async () => {
    const short = await readCapped(chunks('abc'), 100, 10)
    expect(short.complete && short.body.toString()).toBe('abc')
    const long = await readCapped(chunks('abcdef', 'gh'), 100, 4)
    expect(long.complete && long.body.toString()).toBe('abcdefgh')
    const mixed = await readCapped(chunks('ab', 'cd', 'ef'), 100, 4)
    expect(mixed.complete && mixed.body.toString()).toBe('abcdef')
  })

  it('past the cap stops reading and can still stream every byte on', async () => {
    const r = await readCapped(chunks('aaaa', 'bbbb', 'cccc', 'dddd'), 6)
    expect(r.complete).toBe(false)
    if (r.complete) return
    const rest: Buffer[] = []
    for await (const c of r.rest()) rest.push(c as Buffer)
    expect(Buffer.concat(rest).toString()).toBe('aaaabbbbccccdddd')
    const declared = await readCapped(chunks('aaaa', 'bbbb', 'cc'), 6, 4)
    expect(declared.complete).toBe(false)
    if (declared.complete) return
    const all: Buffer[] = []
    for await (const c of declared.rest()) all.push(c as Buffer)
    expect(Buffer.concat(all).toString()).toBe('aaaabbbbcc')
  })

  /** A whole body through contentDecoder, as one buffer. */
  async function decodeAll(body: Buffer, coding: string | undefined, cap: number): Promise<Buffer> {
    const out: Buffer[] = []
    const decoder = contentDecoder(coding, cap, (c) => out.push(c))
    decoder.write(body)
    await decoder.end()
    return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out)
  }

  it('decodes gzip, deflate and br, and caps the decoded size (no zip bombs)', async () => {
    const json = Buffer.from(JSON.stringify({ items: [{ id: 1 }] }))
    expect(await decodeAll(gzipSync(json), 'gzip', 1000)).toEqual(json)
    expect(await decodeAll(deflateSync(json), 'deflate', 1000)).toEqual(json)
    expect(await decodeAll(brotliCompressSync(json), 'br', 1000)).toEqual(json)
    expect(await decodeAll(json, undefined, 1000)).toBe(json)
    const bomb = gzipSync(Buffer.alloc(10_000_000))
    await expect(decodeAll(bomb, 'gzip', 1_000_000)).rejects.toThrow(UninspectableError)
    await expect(decodeAll(Buffer.from('not gzip'), 'gzip', 1000)).rejects.toThrow(/cannot decode gzip/)
    await expect(decodeAll(json, 'zstd', 1000)).rejects.toThrow(/not supported/)
  })

  it('reads JSON and forms; refuses bodies no reading can use', () => {
    const ids = compileSelector('$.ids')
    const sel = (body: string | Buffer, type: string) =>
      selectBody(Buffer.isBuffer(body) ? body : Buffer.from(body), type, ids)
    expect(sel('{"ids":[1,2]}', 'application/json; charset=utf-8')).toEqual(['1', '2'])
    expect(sel('{"ids":[1]}', 'application/vnd.api+json')).toEqual(['1'])
    expect(sel('ids=1&ids=2&ids[]=3&name=x', 'application/x-www-form-urlencoded').sort()).toEqual([
      '1',
      '1',
      '2',
      '2',
      '3',
      '3',
    ])
    expect(sel(Buffer.alloc(0), 'application/json')).toEqual([])
    expect(() => sel('{"a":', 'application/json')).toThrow(/not valid JSON/)
    expect(() => sel('<x/>', 'text/xml')).toThrow(/content-type "text\/xml" and the body is neither JSON nor a form/)
    // Legacy labels: JSON sent as text/plain or text/html, with a UTF-8 byte order mark.
    expect(
      selectBody(Buffer.from('{"items":[{"id":1}]}'), 'text/html; charset=utf-8', compileSelector('$.items[*].id')),
    ).toEqual(['1'])
    expect(
      selectBody(
        Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('[1,2]')]),
        'application/json',
        compileSelector('$'),
      ),
    ).toEqual(['1', '2'])
  })

  it('reads multipart fields as every server may: boundaries, blank lines, names, types', () => {
    const ids = compileSelector('$.id')
    const read = (type: string, body: string) => [...new Set(selectBody(Buffer.from(body), type, ids))].sort()
    const part = (b: string, disposition: string, value: string, eol = '\r\n') =>
      `--${b}${eol}Content-Disposition: ${disposition}${eol}${eol}${value}${eol}`
    const form = (b: string, disposition = 'form-data; name="id"', eol = '\r\n') =>
      `${part(b, disposition, '6', eol)}--${b}--${eol}`
    expect(read('multipart/form-data; boundary=b1', form('b1'))).toEqual(['6'])
    // The boundary: a parameter map keeps the last one, PHP finds the first "boundary" anywhere
    // and reads it up to `;` or `,` (blanks and all).
    expect(read('multipart/form-data; boundary=a; boundary=b2', form('b2'))).toEqual(['6'])
    expect(read('multipart/form-data; xboundary=b3; boundary=zz', form('b3'))).toEqual(['6'])
    expect(read('multipart/form-data; boundary=b4 x', form('b4 x'))).toEqual(['6'])
    expect(read('multipart/form-data; boundary="b;5"', form('b;5'))).toEqual(['6'])
    // Headers ended by a bare LF LF (PHP reads them).
    expect(read('multipart/form-data; boundary=b6', form('b6', 'form-data; name="id"', '\n'))).toEqual(['6'])
    // Names unquoted (busboy, commons-fileupload), escaped, RFC 2231, twice (either may be taken).
    expect(read('multipart/form-data; boundary=b7', form('b7', 'form-data; name=id'))).toEqual(['6'])
    expect(read('multipart/form-data; boundary=b8', form('b8', 'form-data; name="\\id"'))).toEqual(['6'])
    expect(read('multipart/form-data; boundary=b9', form('b9', "form-data; name*=UTF-8''%69d"))).toEqual(['6'])
    expect(read('multipart/form-data; boundary=c1', form('c1', 'form-data; name="x"; name="id"'))).toEqual(['6'])
    // Any multipart/* (commons-fileupload: Spring, Struts 1), and a type that merely contains
    // multipart/form-data (Struts 2).
    expect(read('multipart/mixed; boundary=c2', form('c2'))).toEqual(['6'])
    expect(read('text/plain; boundary=c3; x=multipart/form-data', form('c3'))).toEqual(['6'])
    // Files are not parameters; a name that only looks like one is.
    expect(read('multipart/form-data; boundary=c4', form('c4', 'form-data; name="id"; filename="a.txt"'))).toEqual([])
    expect(read('multipart/form-data; boundary=c5', form('c5', 'form-data; name="id"; xfilename="a"'))).toEqual(['6'])
    expect(() => read('multipart/form-data', form('c6'))).toThrow(/without a boundary/)
  })

  it('reads request JSON keys in any case (ASP.NET Core binds them so), duplicates included', () => {
    const ids = compileSelector('$.contactIds')
    expect(selectBody(Buffer.from('{"ContactIDs":[1,2],"contactids":[3]}'), 'application/json', ids).sort()).toEqual([
      '1',
      '2',
      '3',
    ])
    expect(selectBody(Buffer.from('CONTACTIDS[]=4'), 'application/x-www-form-urlencoded', ids).sort()).toEqual([
      '4',
      '4',
    ])
  })

  it('form parsing cannot pollute prototypes', () => {
    const { nested, flat } = formReadings('__proto__=x&constructor=y&__proto__[a]=1')
    expect(Object.getPrototypeOf(nested)).toBeNull()
    expect(Object.getPrototypeOf(flat)).toBeNull()
    expect(({} as Record<string, unknown>).x).toBeUndefined()
    expect(({} as Record<string, unknown>).a).toBeUndefined()
  })
})

describe('clampQuery', () => {
  const clamp = compileClamp({ pageSize: 50, limit: 100 })

  it('rewrites values above the cap, and anything that is not a whole number from 1 to the cap', () => {
    expect(clamp('?page=2&pageSize=100000')).toEqual({ search: '?page=2&pageSize=50', clamped: ['pageSize'] })
    for (const v of ['0', '-1', 'all', '', '1e9', '50.5', '%31%30%30'])
      expect(clamp(`?pageSize=${v}`)?.search).toBe('?pageSize=50')
    expect(clamp('?pageSize')?.search).toBe('?pageSize=50')
  })

  it('leaves values within the cap and other parameters byte for byte', () => {
    expect(clamp('?pageSize=50&x=%20y')).toBeNull()
    expect(clamp('?page=1&pagesize=10&limit=100')).toBeNull()
    expect(clamp('')).toBeNull()
  })

  it('matches keys case-insensitively, encoded or PHP-bracketed, and clamps every repetition', () => {
    expect(clamp('?PAGESIZE=999&pageSize=10&pageSize=999')?.search).toBe('?PAGESIZE=50&pageSize=10&pageSize=50')
    expect(clamp('?page%53ize=999')?.search).toBe('?page%53ize=50')
    expect(clamp('?pageSize[]=999')?.search).toBe('?pageSize[]=50')
    expect(clamp('?limit=101')?.clamped).toEqual(['limit'])
  })
})
