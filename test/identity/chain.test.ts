import type { IncomingMessage } from 'node:http'
import { generateKeyPairSync } from 'node:crypto'
import { SignJWT } from 'jose'
import { describe, expect, it } from 'vitest'
import type { IdentityConfig } from '../../src/config/schema.js'
import { buildIdentityChain } from '../../src/identity/chain.js'
import { AmbiguousIdentityError } from '../../src/identity/credentials.js'
import { compileTrust, ipAccount } from '../../src/identity/ip.js'

const SECRET = 'a-very-long-shared-secret-of-the-app-0123456789'
const NOW = Date.UTC(2026, 10, 25, 12)

function req(headers: Record<string, string | string[]>, remoteAddress = '203.0.113.9'): IncomingMessage {
  return { headers, socket: { remoteAddress }, connection: { remoteAddress } } as unknown as IncomingMessage
}

async function hs256(claims: Record<string, unknown>, secret = SECRET, exp = NOW / 1000 + 600) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(secret))
}

const jwt: IdentityConfig = {
  type: 'jwt',
  header: 'authorization',
  secret: SECRET,
  algorithms: ['HS256'],
  claim: 'sub',
}

describe('identity chain', () => {
  const chain = buildIdentityChain(
    [
      jwt,
      { type: 'header', name: 'x-account-id', trusted: false },
      { type: 'basic' },
      { type: 'cookie', name: 'JSESSIONID' },
    ],
    compileTrust(['10.0.0.0/8']),
  )

  it('takes the account from a verified JWT', async () => {
    const token = await hs256({ sub: 'alice' })
    expect(await chain.identify(req({ authorization: `Bearer ${token}` }), NOW)).toMatchObject({
      account: 'jwt:alice',
      source: 'jwt',
    })
  })

  it('never believes a forged, unsigned or garbage token (falls through to the next extractor)', async () => {
    const forged = await hs256({ sub: 'alice' }, 'another-secret-another-secret-another-secret')
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')
    const body = Buffer.from(JSON.stringify({ sub: 'alice', exp: NOW / 1000 + 600 })).toString('base64url')
    const unsigned = `${header}.${body}.`
    for (const token of [forged, unsigned, 'garbage', 'a.b.c', '....', 'x'.repeat(20_000)]) {
      const id = await chain.identify(req({ authorization: `Bearer ${token}` }), NOW)
      expect(id.source).toBe('ip')
      expect(id.account).toBe('ip:203.0.113.9')
    }
  })

  it('rejects an RS256 token against an HS256 allow-list', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const token = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'RS256' })
      .setExpirationTime(NOW / 1000 + 600)
      .sign(privateKey)
    expect((await chain.identify(req({ authorization: `Bearer ${token}` }), NOW)).source).toBe('ip')
  })

  it('believes an identity header only from a trusted proxy', async () => {
    expect((await chain.identify(req({ 'x-account-id': 'victim' }), NOW)).account).toBe('ip:203.0.113.9')
    expect(chain.untrustedHeaders(req({}))).toEqual(['x-account-id'])
    const viaProxy = await chain.identify(
      req({ 'x-account-id': 'alice', 'x-forwarded-for': '198.51.100.7' }, '10.1.2.3'),
      NOW,
    )
    expect(viaProxy).toMatchObject({ account: 'header:alice', source: 'header' })
    expect(chain.clientIp(req({ 'x-forwarded-for': '198.51.100.7' }, '10.1.2.3'))).toBe('198.51.100.7')
    expect(chain.untrustedHeaders(req({}, '10.1.2.3'))).toEqual([])
  })

  it('ignores X-Forwarded-For from untrusted peers, and takes the right-most untrusted hop through trusted ones', async () => {
    expect((await chain.identify(req({ 'x-forwarded-for': '1.1.1.1' }), NOW)).account).toBe('ip:203.0.113.9')
    const hops = await chain.identify(req({ 'x-forwarded-for': '1.1.1.1, 198.51.100.7, 10.0.0.5' }, '10.0.0.1'), NOW)
    expect(hops.account).toBe('ip:198.51.100.7')
  })

  it('keys Basic auth by user and a password fingerprint', async () => {
    const basic = (u: string, p: string) =>
      req({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` })
    const right = await chain.identify(basic('alice', 'pw'), NOW)
    const again = await chain.identify(basic('alice', 'pw'), NOW)
    const wrong = await chain.identify(basic('alice', 'guess'), NOW)
    expect(right.account).toMatch(/^basic:alice#[0-9a-f]{16}$/)
    expect(again.account).toBe(right.account)
    expect(wrong.account).not.toBe(right.account)
  })

  it('hashes session cookies and refuses a cookie sent twice with different values', async () => {
    const id = await chain.identify(req({ cookie: 'theme=dark; JSESSIONID=ABCDEF0123' }), NOW)
    expect(id.account).toMatch(/^session:[0-9a-f]{16}$/)
    expect(id.account).not.toContain('ABCDEF')
    expect(() => chain.identify(req({ cookie: 'JSESSIONID=a; JSESSIONID=b' }), NOW)).toThrow(AmbiguousIdentityError)
    expect((await chain.identify(req({ cookie: 'JSESSIONID=a; JSESSIONID=a' }), NOW)).source).toBe('cookie')
  })

  it('keys IPv6 clients by /64 and folds IPv4-mapped addresses', () => {
    expect(ipAccount('2001:db8:1:2:aaaa::1')).toBe(ipAccount('2001:db8:1:2:ffff::9'))
    expect(ipAccount('2001:db8:1:2:aaaa::1')).toBe('ip:2001:db8:1:2::/64')
    expect(ipAccount('::ffff:192.0.2.1')).toBe('ip:192.0.2.1')
  })
})
