// Unit rules of canonicalization (the bypass table in test/bypass runs them through a proxy).
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { canonicalize, type Canonical } from '../../src/http/canonicalize.js'

const LAX = { caseSensitive: false, stripMatrixParams: true }
const ok = (c: Canonical) => {
  if (!c.ok) throw new Error(`rejected: ${c.reason}`)
  return c
}

describe('canonicalize', () => {
  it.each([
    ['/api/contacts/5', '/api/contacts/5', '/api/contacts/5'],
    ['//api//contacts/5/', '/api/contacts/5/', '/api/contacts/5'],
    ['/API/./x/../Contacts/5', '/API/Contacts/5', '/api/contacts/5'],
    ['/api/contacts;jsessionid=A1/5;v=2', '/api/contacts;jsessionid=A1/5;v=2', '/api/contacts/5'],
    ['/%61pi/%63ontacts/%35', '/api/contacts/5', '/api/contacts/5'],
    ['/a/%2e%2E/b', '/b', '/b'],
    ['/caf%c3%a9', '/caf%C3%A9', '/caf%c3%a9'],
    ['/a b"c', '/a%20b%22c', '/a%20b%22c'],
    ['/a/%3b/b', '/a/%3B/b', '/a/%3b/b'],
    ['/', '/', '/'],
    ['/a/b/..', '/a/', '/a'],
  ])('%s → forwards %s, matches %s', (target, path, matchPath) => {
    const c = ok(canonicalize(target, LAX))
    expect(c.path).toBe(path)
    expect(c.matchPath).toBe(matchPath)
  })

  it('keeps the query untouched and drops a fragment', () => {
    expect(ok(canonicalize('/a/./b?x=%2F&y=1#frag', LAX))).toMatchObject({ path: '/a/b', search: '?x=%2F&y=1' })
    expect(ok(canonicalize('/?q', LAX))).toMatchObject({ path: '/', search: '?q' })
  })

  it('takes the path of an absolute-form target', () => {
    expect(ok(canonicalize('http://evil.example:81/a/b?x', LAX))).toMatchObject({ path: '/a/b', search: '?x' })
    expect(canonicalize('*', LAX).ok).toBe(false)
  })

  it("encodes raw bytes (Node's parser refuses them; inject() may pass them as latin1) and refuses invalid UTF-8", () => {
    expect(ok(canonicalize('/caf\u00c3\u00a9', LAX)).path).toBe('/caf%C3%A9')
    expect(ok(canonicalize('/\u{1F600}', LAX)).path).toBe('/%F0%9F%98%80')
    expect(canonicalize('/%ff', LAX).ok).toBe(false)
    expect(canonicalize('/%c0%ae', LAX).ok).toBe(false)
    expect(canonicalize('/%e0%80%ae', LAX).ok).toBe(false)
  })

  it.each([
    ['/a%2fb', 'encoded slash'],
    ['/a%5Cb', 'encoded backslash'],
    ['/a\\b', 'backslash'],
    ['/a%00', 'control'],
    ['/a%0a', 'control'],
    ['/a\tb', 'control'],
    ['/a%zz', 'invalid percent-encoding'],
    ['/a%u002e', 'invalid percent-encoding'],
    ['/a%', 'invalid percent-encoding'],
    ['/..', 'above the root'],
    ['/a/../..', 'above the root'],
    ['/..;x/a', 'above the root'],
    ['/api/x/..;/contacts/5', 'matrix parameters'],
    ['/api/contacts/5/;/..', 'matrix parameters'],
    ['/a/%252e%252e/b', 'double percent-encoding'],
    ['/a/%252F', 'double percent-encoding'],
    [`/${'a'.repeat(9000)}`, 'longer than'],
  ])('refuses %s (%s)', (target, reason) => {
    const c = canonicalize(target, LAX)
    expect(c.ok).toBe(false)
    if (!c.ok) expect(c.reason).toContain(reason)
  })

  it('honours caseSensitive and stripMatrixParams: false', () => {
    expect(ok(canonicalize('/A/b;x', { caseSensitive: true, stripMatrixParams: false })).matchPath).toBe('/A/b;x')
  })

  it('is idempotent and never throws (property)', () => {
    const segment = fc.stringMatching(/^[A-Za-z0-9._~;=%-]{0,8}$/)
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 8 }), (segments) => {
        const c = canonicalize(`/${segments.join('/')}`, LAX)
        if (c.ok) {
          const again = ok(canonicalize(c.path, LAX))
          expect(again.path).toBe(c.path)
          expect(again.matchPath).toBe(c.matchPath)
        }
      }),
      { numRuns: 5000 },
    )
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => void canonicalize(`/${s}`, LAX)),
      { numRuns: 2000 },
    )
  })
})
