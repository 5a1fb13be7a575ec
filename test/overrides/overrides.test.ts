// overrides: compiled with the config (errors with paths), matched first-wins, scaled policies.
import { describe, expect, it } from 'vitest'
import { compileConfigText } from '../../src/config/index.js'
import { ConfigError } from '../../src/errors.js'
import { accountMatcher, overrideFor, scaledMax } from '../../src/overrides/overrides.js'
import { describeConfig } from '../../src/cli/describe.js'

const base = (overrides: string, identity = '[ { type: header, name: x-user, trusted: true } ]') => `
version: 1
upstream: { url: http://127.0.0.1:1 }
identity: ${identity}
routes:
  - name: contact
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 10m, distinctRecords: 10, action: throttle }
      - { per: network, window: 1h, requests: 100, action: throttle }
      - { per: route, window: 1h, requests: 1000, action: log }
  - name: invoice
    path: /api/invoices/:id
    records: { param: id }
    limits:
      - { window: 10m, distinctRecords: 20, action: disable }
overrides:
${overrides}
`
const JWT = '[ { type: jwt, secret: "0123456789abcdef0123456789abcdef", algorithms: [HS256] } ]'

function issues(yaml: string): string[] {
  try {
    compileConfigText(yaml, 'o.yaml', { env: {} })
  } catch (err) {
    if (err instanceof ConfigError) return err.format().split('\n')
    throw err
  }
  return []
}

describe('overrides: config', () => {
  it('compiles each override into a scaled (or exempt) copy of the routes it applies to', () => {
    const c = compileConfigText(
      base(
        `  - { accounts: [svc-nightly-report], exempt: true }
  - { accounts: ["user:corp-*"], routes: [contact], scale: 10 }
  - { networks: [10.20.0.0/16], scale: 5 }
  - { claims: { role: staff }, exempt: true }`,
        JWT,
      ),
      'o.yaml',
      { env: {} },
    )
    expect(c.overrides).toHaveLength(4)
    const [exempt, corp, net] = c.overrides
    expect(exempt?.compiled.get('contact')?.policy.shadow).toBe(true)
    expect(exempt?.compiled.get('contact')?.policy.limits.map((l) => l.max)).toEqual([10, 100, 1000])
    expect([...(corp?.compiled.keys() ?? [])]).toEqual(['contact'])
    // Per-account thresholds only: the network's and the route's are shared with others.
    expect(corp?.compiled.get('contact')?.policy.limits.map((l) => l.max)).toEqual([100, 100, 1000])
    expect(corp?.compiled.get('contact')?.policy.shadow).toBe(false)
    // Matched by networks alone: the network's thresholds too, never the route's.
    expect(net?.compiled.get('contact')?.policy.limits.map((l) => l.max)).toEqual([50, 500, 1000])
    expect(net?.compiled.get('invoice')?.policy.limits.map((l) => l.max)).toEqual([100])
    // Same name: the same windows.
    expect(corp?.compiled.get('contact')?.policy.name).toBe('contact')
    // Every shape of a route holds the history of the largest: counts carry over between them.
    const contact = c.routes.find((r) => r.name === 'contact')?.policy
    const shapes = [contact, ...c.overrides.map((o) => o.compiled.get('contact')?.policy)]
    for (const p of shapes) expect(p?.parts?.map((x) => x.policy.distinctCapacity)).toEqual([101, 1, 1])
    for (const p of shapes) expect(p?.parts?.map((x) => x.policy.requestCapacity)).toEqual([1, 501, 1001])
    const text = describeConfig(c)
    expect(text).toContain('overrides[1] (accounts user:corp-* on contact): ×10')
    expect(text).toMatch(/10m\s+distinctRecords\s+100\s+per account\s+→ throttle\s+\(was 10\)/)
    expect(text).toContain('never blocked')
  })

  it('reports every bad override with its path', () => {
    const out = issues(
      base(`  - { exempt: true }
  - { accounts: [a], exempt: true, scale: 2 }
  - { accounts: [a] }
  - { networks: [10.0.0.0/33], scale: 2 }
  - { accounts: [a], routes: [nope], scale: 2 }
  - { claims: { role: staff }, exempt: true }`),
    ).join('\n')
    expect(out).toContain('SLUICE_ERR_CONFIG_OVERRIDE')
    expect(out).toMatch(/overrides\[0\].*needs accounts, networks or claims/)
    expect(out).toMatch(/overrides\[1\]\.scale.*either exempt or scaled/)
    expect(out).toMatch(/overrides\[2\].*changes nothing/)
    expect(out).toMatch(/overrides\[3\]\.networks\[0\].*not a CIDR/)
    expect(out).toMatch(/overrides\[4\]\.routes\[0\].*no route named "nope"/)
    expect(out).toMatch(/overrides\[5\]\.claims.*no identity is of type jwt/)
  })

  it('refuses scale <= 0 (schema)', () => {
    expect(issues(base('  - { accounts: [a], scale: 0 }')).join('\n')).toMatch(/overrides\[0\]\.scale|scale/)
    expect(issues(base('  - { accounts: [a], scale: -1 }')).length).toBeGreaterThan(0)
  })
})

describe('overrides: matching', () => {
  it('a bare name matches header:, jwt:, user: and basic:<name>#…; a prefixed one only itself; globs', () => {
    const bare = accountMatcher(['svc-nightly-report'])
    for (const id of ['header:svc-nightly-report', 'jwt:svc-nightly-report', 'user:svc-nightly-report'])
      expect(bare(id)).toBe(true)
    expect(bare('basic:svc-nightly-report#3f2a1b0c9d8e7f60')).toBe(true)
    expect(bare('svc-nightly-report')).toBe(false)
    expect(bare('ip:svc-nightly-report')).toBe(false)
    expect(bare('header:svc-nightly-report2')).toBe(false)
    const corp = accountMatcher(['user:corp-*'])
    expect(corp('user:corp-acme')).toBe(true)
    expect(corp('header:corp-acme')).toBe(false)
    expect(corp('user:corpacme')).toBe(false)
    const dots = accountMatcher(['header:a.b'])
    expect(dots('header:axb')).toBe(false)
  })

  it('first match wins; routes restrict; networks and claims', () => {
    const c = compileConfigText(
      base(
        `  - { accounts: ["user:corp-*"], routes: [contact], scale: 10 }
  - { accounts: ["user:corp-*"], scale: 2 }
  - { networks: [10.20.0.0/16, "2001:db8::/32"], scale: 5 }
  - { claims: { role: staff }, exempt: true }`,
        JWT,
      ),
      'o.yaml',
      { env: {} },
    )
    const ip = (a: string) => () => a
    const o = c.overrides
    expect(overrideFor(o, 'contact', 'user:corp-a', ip('10.20.1.1'), undefined)?.index).toBe(0)
    expect(overrideFor(o, 'invoice', 'user:corp-a', ip('10.20.1.1'), undefined)?.index).toBe(1)
    expect(overrideFor(o, 'invoice', 'user:bob', ip('10.20.1.1'), undefined)?.index).toBe(2)
    expect(overrideFor(o, 'invoice', 'user:bob', ip('::ffff:10.20.9.9'), undefined)?.index).toBe(2)
    expect(overrideFor(o, 'invoice', 'user:bob', ip('2001:db8::1'), undefined)?.index).toBe(2)
    expect(overrideFor(o, 'invoice', 'user:bob', ip('10.21.0.1'), undefined)).toBeNull()
    expect(overrideFor(o, 'invoice', 'jwt:x', ip('1.2.3.4'), { role: 'staff' })?.index).toBe(3)
    expect(overrideFor(o, 'invoice', 'jwt:x', ip('1.2.3.4'), { role: ['dev', 'staff'] })?.index).toBe(3)
    expect(overrideFor(o, 'invoice', 'jwt:x', ip('1.2.3.4'), { role: 'user' })).toBeNull()
    expect(overrideFor(o, 'invoice', 'jwt:x', ip('1.2.3.4'), undefined)).toBeNull()
  })

  it('scales rounded, at least 1', () => {
    expect(scaledMax(10, 10)).toBe(100)
    expect(scaledMax(10, 0.5)).toBe(5)
    expect(scaledMax(1, 0.1)).toBe(1)
    expect(scaledMax(3, 1.5)).toBe(5)
  })
})
