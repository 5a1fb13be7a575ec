// Semantic config errors: well-typed YAML that cannot work as written.
import { describe, expect, it } from 'vitest'
import { compileConfigText } from '../../src/config/index.js'
import { ConfigError } from '../../src/errors.js'

const base = (routes: string, extra = '') => `version: 1
upstream: { url: http://127.0.0.1:3000 }
${extra}
routes:
${routes}
`

function issues(yaml: string, env: Record<string, string> = {}) {
  try {
    compileConfigText(yaml, 'bad.yaml', { env })
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return (err as ConfigError).issues
  }
  throw new Error('expected a ConfigError')
}

describe('compile', () => {
  it('compiles a valid config with durations in ms and HEAD folded into GET', () => {
    const c = compileConfigText(
      base(
        `  - name: c
    methods: [GET, HEAD]
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 10m, distinctRecords: 100, action: challenge }
      - { window: 1m, requests: 60, action: throttle }`,
        'actions: { disable: { duration: forever } }',
      ),
      'ok.yaml',
      { env: {} },
    )
    expect(c.routes[0]?.methods).toEqual(new Set(['GET']))
    expect(c.routes[0]?.policy.limits.map((l) => [l.kind, l.windowMs, l.max])).toEqual([
      ['distinctRecords', 600_000, 100],
      ['requests', 60_000, 60],
    ])
    expect(c.actions.disableForMs).toBe(Infinity)
    expect(c.upstream.timeoutMs).toBe(30_000)
  })

  it('reports a bad route pattern at its line', () => {
    const [issue] = issues(
      base(`  - name: c
    path: /api/contacts/:id/:id
    limits: [ { window: 1m, requests: 1, action: log } ]`),
    )
    expect(issue).toMatchObject({ code: 'SLUICE_ERR_CONFIG_ROUTE', line: 6 })
    expect(issue?.message).toContain('twice')
  })

  it('reports records.param that is not in the path, limits with both or neither count, and distinctRecords without records', () => {
    const found = issues(
      base(`  - name: a
    path: /api/contacts/:id
    records: { param: contactId }
    limits:
      - { window: 1m, requests: 1, distinctRecords: 2, action: log }
      - { window: 1m, action: log }
  - name: b
    path: /api/b
    limits:
      - { window: 1m, distinctRecords: 2, action: log }`),
    )
    expect(found.map((i) => [i.code, i.line])).toEqual([
      ['SLUICE_ERR_CONFIG_ROUTE', 7],
      ['SLUICE_ERR_CONFIG_LIMIT', 9],
      ['SLUICE_ERR_CONFIG_LIMIT', 10],
      ['SLUICE_ERR_CONFIG_LIMIT', 14],
    ])
    expect(found[0]?.message).toContain(':id')
  })

  it('reports a window longer than 49 days (times are 32-bit millisecond offsets)', () => {
    const found = issues(
      base(`  - name: a
    path: /a
    limits:
      - { window: 49d, requests: 1, action: log }
      - { window: 50d, requests: 1, action: log }
      - { window: 1200h, requests: 1, action: log }`),
    )
    expect(found.map((i) => [i.code, i.line, i.path.join('.')])).toEqual([
      ['SLUICE_ERR_CONFIG_LIMIT', 9, 'routes.0.limits.1.window'],
      ['SLUICE_ERR_CONFIG_LIMIT', 10, 'routes.0.limits.2.window'],
    ])
    expect(found[0]?.message).toContain('longer than 49d')
  })

  it('reports duplicate route names and a zero window', () => {
    const found = issues(
      base(`  - name: a
    path: /a
    limits: [ { window: 0s, requests: 1, action: log } ]
  - name: a
    path: /b
    limits: [ { window: 1m, requests: 1, action: log } ]`),
    )
    expect(found.map((i) => i.code).sort()).toEqual(['SLUICE_ERR_CONFIG_DURATION', 'SLUICE_ERR_CONFIG_ROUTE'])
  })

  it('refuses JWT extractors that cannot be verified safely', () => {
    const found = issues(
      base(
        `  - name: a
    path: /a
    limits: [ { window: 1m, requests: 1, action: log } ]`,
        `identity:
  - { type: jwt, algorithms: [HS256, RS256], secret: x }
  - { type: jwt, algorithms: [HS256] }
  - { type: jwt, algorithms: [RS256], publicKey: not-a-pem }`,
      ),
    )
    expect(found.map((i) => i.code)).toEqual([
      'SLUICE_ERR_CONFIG_IDENTITY',
      'SLUICE_ERR_CONFIG_IDENTITY',
      'SLUICE_ERR_CONFIG_IDENTITY',
    ])
    expect(found.map((i) => i.message).join(' ')).toMatch(/mix.*needs a secret.*PEM/s)
  })

  it('refuses trustedProxies entries that are not addresses', () => {
    const [issue] = issues(
      base(
        `  - name: a
    path: /a
    limits: [ { window: 1m, requests: 1, action: log } ]`,
        'trustedProxies: [10.0.0.0/8, "not-an-ip"]',
      ),
    )
    expect(issue).toMatchObject({ code: 'SLUICE_ERR_CONFIG_VALUE', path: ['trustedProxies', 1] })
  })
})
