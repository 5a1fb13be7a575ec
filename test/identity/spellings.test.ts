// One person, one account, however it is spelled (issue 13 §3): user names as the upstream
// compares them, keyed Basic fingerprints, cookie values and URL sessions as servers read
// them, JWTs out of time still naming their subject, and one namespace per extractor.
import type { IncomingMessage } from 'node:http'
import { SignJWT } from 'jose'
import { describe, expect, it } from 'vitest'
import type { IdentityConfig } from '../../src/config/schema.js'
import { buildIdentityChain } from '../../src/identity/chain.js'
import { AmbiguousIdentityError } from '../../src/identity/credentials.js'
import { compileTrust } from '../../src/identity/ip.js'
import { normalizeUsername } from '../../src/identity/usernames.js'

const SECRET = 'a-very-long-shared-secret-of-the-app-0123456789'
const NOW = Date.UTC(2026, 11, 7, 12)

function req(headers: Record<string, string>, url = '/', remoteAddress = '203.0.113.9'): IncomingMessage {
  return { headers, url, socket: { remoteAddress }, connection: { remoteAddress } } as unknown as IncomingMessage
}
const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` })
const jwt: IdentityConfig = {
  type: 'jwt',
  header: 'authorization',
  secret: SECRET,
  algorithms: ['HS256'],
  claim: 'sub',
}
const token = (claims: Record<string, unknown>, exp: number) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(exp).sign(new TextEncoder().encode(SECRET))

describe('user names', () => {
  it('fold case, compatibility forms and surrounding blanks; exact keeps them', () => {
    for (const spelling of ['MALLORY', ' mallory', 'mallory\t', 'ｍａｌｌｏｒｙ', 'MaLLoRy', 'ＭＡＬＬＯＲＹ']) {
      expect(normalizeUsername(spelling, 'case-insensitive')).toBe('mallory')
    }
    expect(normalizeUsername('STRASSE', 'case-insensitive')).toBe(normalizeUsername('straße', 'case-insensitive'))
    expect(normalizeUsername(' Mallory ', 'case-sensitive')).toBe('Mallory')
    expect(normalizeUsername(' Mallory ', 'exact')).toBe(' Mallory ')
  })

  it('Basic: every spelling of a user with the right password is one account', async () => {
    const chain = buildIdentityChain([{ type: 'basic' }], compileTrust([]), { key: 'k'.repeat(32) })
    const accounts = new Set<string>()
    for (const u of ['mallory', 'MALLORY', ' mallory', 'ｍａｌｌｏｒｙ'])
      accounts.add((await chain.identify(req(basic(u, 'pw')), NOW)).account)
    expect([...accounts]).toHaveLength(1)
    expect([...accounts][0]).toMatch(/^basic:mallory#[0-9a-f]{16}$/)
    const exact = buildIdentityChain([{ type: 'basic', usernames: 'exact' }], compileTrust([]), { key: 'k'.repeat(32) })
    expect((await exact.identify(req(basic('MALLORY', 'pw')), NOW)).account).toMatch(/^basic:MALLORY#/)
  })
})

describe('Basic fingerprints', () => {
  it('are keyed: a wrong password is another account, and the printed key differs per deployment key', async () => {
    const a = buildIdentityChain([{ type: 'basic' }], compileTrust([]), { key: 'deployment-one-0123456789' })
    const b = buildIdentityChain([{ type: 'basic' }], compileTrust([]), { key: 'deployment-two-0123456789' })
    const right = (await a.identify(req(basic('alice', 'pw')), NOW)).account
    expect((await a.identify(req(basic('alice', 'pw')), NOW)).account).toBe(right)
    // 10,000 wrong passwords: none lands on alice's key (64-bit keyed MAC; the 24-bit one collided in seconds).
    for (let i = 0; i < 10_000; i++)
      expect((await a.identify(req(basic('alice', `guess${i}`)), NOW)).account).not.toBe(right)
    expect((await b.identify(req(basic('alice', 'pw')), NOW)).account).not.toBe(right)
  })
})

describe('session cookies and URL sessions', () => {
  const chain = buildIdentityChain([{ type: 'cookie', name: 'JSESSIONID' }], compileTrust([]))
  const id = async (headers: Record<string, string>, url = '/') =>
    (await chain.identify(req(headers, url), NOW)).account

  it('percent-encoded, quoted and differently-cased spellings of one session are one account', async () => {
    const plain = await id({ cookie: 'JSESSIONID=abc123' })
    expect(plain).toMatch(/^session:/)
    for (const cookie of [
      'JSESSIONID=%61bc123',
      'JSESSIONID="abc123"',
      'jsessionid=abc123',
      'JSESSIONID=%2561bc123',
      'JSESSIONID= abc123 ',
      'JSESSIONID=%61%62%63%31%32%33',
    ]) {
      expect(await id({ cookie })).toBe(plain)
    }
  })

  it('a ;jsessionid= path parameter is that session; one that disagrees with the cookie is ambiguous', async () => {
    const plain = await id({ cookie: 'JSESSIONID=abc123' })
    expect(await id({}, '/api/contacts/7;jsessionid=abc123')).toBe(plain)
    expect(await id({}, '/api;JSESSIONID=%61bc123/contacts/7?x=1')).toBe(plain)
    expect(await id({ cookie: 'JSESSIONID=abc123' }, '/api/contacts/7;jsessionid=abc123')).toBe(plain)
    expect(() => chain.identify(req({ cookie: 'JSESSIONID=abc123' }, '/api/contacts/7;jsessionid=other'), NOW)).toThrow(
      AmbiguousIdentityError,
    )
    expect(() => chain.identify(req({ cookie: 'JSESSIONID=a; jsessionid=b' }), NOW)).toThrow(AmbiguousIdentityError)
    // In the query, as PHP's trans-sid reads it (`;` separating pairs too).
    expect(await id({}, '/api/contacts/7?jsessionid=abc123')).toBe(plain)
    expect(await id({}, '/api/contacts/7?q=a;JSESSIONID=%61bc123')).toBe(plain)
    expect(() => chain.identify(req({ cookie: 'JSESSIONID=abc123' }, '/x?jsessionid=zzz'), NOW)).toThrow(
      AmbiguousIdentityError,
    )
    expect(await id({}, '/api/contacts/7?q=jsessionid')).toBe('ip:203.0.113.9')
  })
})

describe("credential cookies as Tomcat's legacy parser reads them", () => {
  const chain = buildIdentityChain([{ type: 'cookie', name: 'JSESSIONID' }], compileTrust([]))
  const id = async (cookie: string) => (await chain.identify(req({ cookie }), NOW)).account
  const sid = '8F1C2A0B9D3E4F5A6B7C8D9E0F1A2B3C'

  it('a value ends at its first separator and `,` separates cookies: one session, not a fresh identity each', async () => {
    const plain = await id(`JSESSIONID=${sid}`)
    for (const cookie of [
      `JSESSIONID=${sid}, n=1`,
      `JSESSIONID=${sid},2`,
      `theme=dark, JSESSIONID=${sid}`,
      `x, JSESSIONID=${sid}`,
      `JSESSIONID=${sid} 4`,
      `JSESSIONID=${sid}\t5`,
      `JSESSIONID=${sid}=6`,
      `JSESSIONID="${sid}"7`,
      `JSESSIONID=${sid}:8`,
      `JSESSIONID=${sid}(9)`,
      `JSESSIONID=${sid}%2C10`,
      `JSESSIONID=${sid}@x; theme=dark`,
    ])
      expect(await id(cookie), cookie).toBe(plain)
    expect(await id(`JSESSIONID=${sid}/x`)).toBe(plain)
  })

  it('a cut shorter than a credential leaves the value whole: no two clients meet in one account', async () => {
    // express-session's signed cookie (`s:` + id + `.` + MAC) and a PHP id with `,` near its start.
    const express = await id('JSESSIONID=s%3AaBcDeFgHiJkLmNoPqRsTuV.QKUqo4Yk0T1RvS2c3mNx')
    expect(express).not.toBe(await id('JSESSIONID=s%3AzYxWvUtSrQpOnMlKjIhG.QKUqo4Yk0T1RvS2c3mNx'))
    expect(await id('JSESSIONID=ab,cdefghijklmnopqrstuvwxyz')).not.toBe(await id('JSESSIONID=ab,zyxwvutsrqponmlkjihg'))
  })

  it('a JWT in a cookie is read the same way', async () => {
    const inCookie = buildIdentityChain([{ ...jwt, cookie: 'token' }], compileTrust([]))
    const t = await token({ sub: 'alice' }, NOW / 1000 + 3600)
    for (const cookie of [`token=${t}`, `token=${t}, n=1`, `x=1, token=${t}`, `token="${t}"2`])
      expect((await inCookie.identify(req({ cookie }), NOW)).account, cookie).toBe('jwt:alice')
  })

  it('two different sessions in one header, however separated, are ambiguous', () => {
    for (const cookie of [
      `JSESSIONID=${sid}, JSESSIONID=00112233445566778899AABBCCDDEEFF`,
      `JSESSIONID=${sid}; x=1, JSESSIONID=00112233445566778899AABBCCDDEEFF`,
    ])
      expect(() => chain.identify(req({ cookie }), NOW), cookie).toThrow(AmbiguousIdentityError)
  })
})

describe('JWT time', () => {
  const chain = buildIdentityChain([jwt], compileTrust([]))

  it('accepts a token expired by less than clockTolerance, and keys one expired by more to its subject (never a fresh identity)', async () => {
    for (const exp of [NOW / 1000 - 120, NOW / 1000 - 86_400, NOW / 1000 - 365 * 86_400]) {
      expect(
        await chain.identify(req({ authorization: `Bearer ${await token({ sub: 'alice' }, exp)}` }), NOW),
      ).toMatchObject({ account: 'jwt:alice', source: 'jwt' })
    }
    const early = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'HS256' })
      .setNotBefore(NOW / 1000 + 3600)
      .sign(new TextEncoder().encode(SECRET))
    expect((await chain.identify(req({ authorization: `Bearer ${early}` }), NOW)).account).toBe('jwt:alice')
  })
})

describe('namespaces', () => {
  it("no extractor's value can name another extractor's account", async () => {
    const chain = buildIdentityChain(
      [jwt, { type: 'header', name: 'x-user', trusted: true }, { type: 'basic' }, { type: 'cookie', name: 'sid' }],
      compileTrust([]),
    )
    const ip = (await chain.identify(req({}, '/', '127.0.0.2'), NOW)).account
    expect(ip).toBe('ip:127.0.0.2')
    const viaJwt = (
      await chain.identify(
        req({ authorization: `Bearer ${await token({ sub: 'ip:127.0.0.2' }, NOW / 1000 + 600)}` }),
        NOW,
      )
    ).account
    const viaHeader = (await chain.identify(req({ 'x-user': 'ip:127.0.0.2' }), NOW)).account
    const viaBasic = (await chain.identify(req(basic('ip', '127.0.0.2')), NOW)).account
    expect(new Set([ip, viaJwt, viaHeader, viaBasic, 'user:ip:127.0.0.2']).size).toBe(5)
    expect(viaJwt).toBe('jwt:ip:127.0.0.2')
    expect(viaHeader).toBe('header:ip:127.0.0.2')
  })
})
