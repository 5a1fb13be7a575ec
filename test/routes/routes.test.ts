import { describe, expect, it } from 'vitest'
import { compileRecords } from '../../src/records/extract.js'
import { compilePattern } from '../../src/routes/pattern.js'
import { matchRoute } from '../../src/routes/table.js'

const route = (path: string, methods: string[] | null = ['GET'], caseSensitive = false) => ({
  name: path,
  pattern: compilePattern(path, caseSensitive),
  methods: methods ? new Set(methods) : null,
})

describe('route patterns', () => {
  it('matches params, wildcards and literal segments, case-insensitively by default', () => {
    const routes = [route('/api/contacts/:id'), route('/api/parcels/*', null), route('/')]
    expect(matchRoute(routes, 'GET', '/api/contacts/42')?.params).toEqual({ id: '42' })
    expect(matchRoute(routes, 'GET', '/API/Contacts/AbC')?.params).toEqual({ id: 'AbC' })
    expect(matchRoute(routes, 'GET', '/api/contacts/42/x')).toBeNull()
    expect(matchRoute(routes, 'POST', '/api/contacts/42')).toBeNull()
    expect(matchRoute(routes, 'DELETE', '/api/parcels/a/b')?.route.name).toBe('/api/parcels/*')
    expect(matchRoute(routes, 'GET', '/api/parcels')?.route.name).toBe('/api/parcels/*')
    expect(matchRoute(routes, 'GET', '/')?.route.name).toBe('/')
  })

  it('decodes percent-encoded parameters into record ids', () => {
    expect(matchRoute([route('/c/:id')], 'GET', '/c/caf%C3%A9')?.params.id).toBe('café')
  })

  it('honours caseSensitive', () => {
    expect(matchRoute([route('/api/x', ['GET'], true)], 'GET', '/API/x')).toBeNull()
  })

  it.each([
    ['api/x', 'start with "/"'],
    ['/a//b', 'empty segment'],
    ['/a/*/b', 'last segment'],
    ['/a/:id/:id', 'twice'],
    ['/a/file-:id', 'whole segment'],
    ['/a/../b', 'dot segment'],
    ['/a/b c', 'characters'],
  ])('rejects %s', (pattern, message) => {
    expect(() => compilePattern(pattern, false)).toThrow(message)
  })
})

describe('record extraction', () => {
  it('reads a path parameter', () => {
    expect(compileRecords({ param: 'id' })({ id: '7' }, '')).toEqual(['7'])
  })

  it('splits a path parameter naming several records when told to (Spring binds /contacts/1,2,3 to a List)', () => {
    const split = compileRecords({ param: 'ids', split: ',' })
    expect(split({ ids: '1,2, 3,,2' }, '')).toEqual(['1', '2', '3'])
    expect(split({ ids: ',' }, '')).toEqual([])
    expect(compileRecords({ param: 'ids' })({ ids: '1,2,3' }, '')).toEqual(['1,2,3'])
  })

  it("counts the parameter's name in the query too (mod_rewrite's QSA in front of PHP takes the last id)", () => {
    const extract = compileRecords({ param: 'id' })
    expect(extract({ id: '5' }, '?id=6')).toEqual(['5', '6'])
    expect(extract({ id: '5' }, '?ID=6&id[]=7&%69d=8&x=9')).toEqual(['5', '6', '7', '8'])
    expect(extract({ id: '5' }, '?id=5&fields=name')).toEqual(['5'])
    expect(extract({ id: '5' }, '?fields=name')).toEqual(['5'])
    expect(compileRecords({ param: 'contact_id' })({ contact_id: '5' }, '?contact.id=6')).toEqual(['5', '6'])
    expect(compileRecords({ param: 'ids', split: ',' })({ ids: '1,2' }, '?ids=2,3')).toEqual(['1', '2', '3'])
  })

  it('counts cookies of the key\'s name too (classic ASP.NET Request["id"], PHP $_REQUEST without a php.ini)', () => {
    const query = compileRecords({ query: 'id', split: ',' })
    expect(query({}, '', 'sid=abc; id=7,8; theme=dark')).toEqual(['7', '8'])
    expect(query({}, '?id=1', ['ID=2', '%69d="3"; id[]=4'])).toEqual(['1', '2', '3', '4'])
    expect(query({}, '', 'sid=abc; idx=5; theme=dark')).toEqual([])
    expect(query({}, '', 'id=%37')).toEqual(['7'])
    expect(compileRecords({ param: 'id' })({ id: '5' }, '', 'id=6')).toEqual(['5', '6'])
  })

  it("reads every value of a query parameter, split, trimmed and de-duplicated, whatever the key's case or brackets", () => {
    const extract = compileRecords({ query: 'ids', split: ',' })
    expect(extract({}, '?ids=1,2, 3&IDS=4&ids[]=5&ids[0]=6&ids=1&other=9&ids=')).toEqual(['1', '2', '3', '4', '5', '6'])
    expect(extract({}, '')).toEqual([])
    expect(extract({}, '?%69ds=8')).toEqual(['8'])
  })
})
