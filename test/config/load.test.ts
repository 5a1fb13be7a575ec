// Every class of bad config gets the documented code, at the right line, with a fix.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadConfigFile, parseConfigText } from '../../src/config/load.js'
import { ConfigError, type ConfigIssue } from '../../src/errors.js'

const VALID = `version: 1
upstream: { url: http://127.0.0.1:3000 }
routes:
  - name: contact
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 10m, distinctRecords: 100, action: throttle }
`

function issuesOf(text: string, env: Record<string, string> = {}): ConfigIssue[] {
  try {
    parseConfigText(text, 'sluice.yaml', { env })
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return (err as ConfigError).issues
  }
  throw new Error('expected a ConfigError')
}

describe('loading a config', () => {
  it('fills in every default', () => {
    const c = parseConfigText(VALID, 'sluice.yaml', { env: {} })
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 8080 })
    expect(c.mode).toBe('enforce')
    expect(c.store).toEqual({ type: 'memory', maxAccounts: 100000 })
    expect(c.actions?.throttle.retryAfter).toBe('30s')
    expect(c.paths).toEqual({ caseSensitive: false, stripMatrixParams: true })
    expect(c.upstream.timeout).toBe('30s')
  })

  it('reports malformed YAML with its line and column', () => {
    const [issue] = issuesOf('version: 1\nupstream: { url: http://x\nroutes: []\n')
    expect(issue?.code).toBe('SLUICE_ERR_CONFIG_YAML')
    expect(issue?.line).toBeGreaterThanOrEqual(2)
    expect(issue?.col).toBeGreaterThan(0)
  })

  it('refuses duplicate keys and tabs', () => {
    const [dup] = issuesOf(VALID.replace('version: 1\n', 'version: 1\nversion: 1\n'))
    expect(dup).toMatchObject({ code: 'SLUICE_ERR_CONFIG_YAML', line: 2 })
    expect(dup?.hint).toContain('once')
    expect(issuesOf('version: 1\n\tupstream: x\n')[0]?.code).toBe('SLUICE_ERR_CONFIG_YAML')
  })

  it('says to check the indentation when a key is indented one space too far or too little', () => {
    const route = (records: string) =>
      `version: 1\nupstream: { url: http://x }\nroutes:\n  - name: a\n    path: /x/:id\n${records}\n`
    for (const text of [route('     records: { param: id }'), route('   records: { param: id }')]) {
      const issues = issuesOf(text)
      const [issue] = issues
      expect(issues, text).toHaveLength(1) // (the yaml library says it twice at one place)
      expect(issue?.code, text).toBe('SLUICE_ERR_CONFIG_YAML')
      expect(issue?.hint, text).toContain('indentation')
    }
  })

  it('refuses a document that is not a mapping', () => {
    expect(issuesOf('- a\n- b\n')[0]?.message).toContain('mapping')
    expect(issuesOf('')[0]?.code).toBe('SLUICE_ERR_CONFIG_YAML')
  })

  it('names an unknown key at its own line with a did-you-mean', () => {
    const issues = issuesOf(
      VALID.replace('    limits:', '    limts:').replace('distinctRecords: 100', 'distinctRecord: 100'),
    )
    const limts = issues.find((i) => i.path.at(-1) === 'limts')
    expect(limts).toMatchObject({
      code: 'SLUICE_ERR_CONFIG_UNKNOWN_KEY',
      line: 7,
      col: 5,
      hint: 'did you mean "limits"?',
    })
    const typo = issuesOf(VALID.replace('distinctRecords: 100', 'distinctRecord: 100')).find(
      (i) => i.code === 'SLUICE_ERR_CONFIG_UNKNOWN_KEY',
    )
    expect(typo).toMatchObject({ line: 8, hint: 'did you mean "distinctRecords"?' })
  })

  it('explains a bad duration', () => {
    const [issue] = issuesOf(VALID.replace('window: 10m', 'window: 10 minutes'))
    expect(issue).toMatchObject({
      code: 'SLUICE_ERR_CONFIG_DURATION',
      line: 8,
      path: ['routes', 0, 'limits', 0, 'window'],
    })
    expect(issue?.hint).toContain('30s')
  })

  it('lists the choices of an enum once', () => {
    const issues = issuesOf(`mode: enforcing\n${VALID}`)
    expect(issues).toHaveLength(1)
    expect(issues[0]).toMatchObject({ code: 'SLUICE_ERR_CONFIG_SCHEMA', line: 1, col: 7 })
    expect(issues[0]?.message).toBe('"enforcing" must be one of: enforce, shadow')
    expect(issuesOf(VALID.replace('action: throttle', 'action: block'))[0]?.message).toBe(
      '"block" must be one of: log, throttle, challenge, disable',
    )
  })

  it('names the identity types', () => {
    const [issue] = issuesOf(`identity:\n  - { type: oauth }\n${VALID}`)
    expect(issue?.message).toBe('type "oauth" is not one of: jwt, header, basic, cookie')
    expect(issue?.line).toBe(2)
  })

  it('reports missing keys and wrong types', () => {
    const issues = issuesOf('version: 1\nroutes: []\nlisten: { port: eighty }\n')
    expect(issues.map((i) => i.message)).toEqual([
      'missing required key "upstream"',
      'must be a whole number, got "eighty"',
    ])
  })

  it('explains empty lists and out-of-range numbers', () => {
    expect(issuesOf(VALID.replace(/ {4}limits:\n.*\n/, '    limits: []\n'))[0]?.message).toBe('needs at least 1 entry')
    expect(issuesOf(`listen: { port: 70000 }\n${VALID}`)[0]?.message).toBe('70000 must be <= 65535')
  })

  it('substitutes environment variables, with types and $${ escapes', () => {
    const text = VALID.replace(
      'version: 1',
      'version: 1\nlisten: { port: "${PORT}", host: "${HOST}" }\nlog: { level: "$${literal}" }'.replace(
        '"$${literal}"',
        'info',
      ),
    )
    const c = parseConfigText(text, 'x.yaml', { env: { PORT: '9000', HOST: '0.0.0.0' } })
    expect(c.listen).toEqual({ host: '0.0.0.0', port: 9000 })
    const escaped = parseConfigText(
      VALID.replace('name: contact', 'name: contact\n    path: /x').replace('    path: /api/contacts/:id\n', ''),
      'x.yaml',
      { env: {} },
    )
    expect(escaped.routes[0]?.path).toBe('/x')
    const literal = parseConfigText(`identity:\n  - type: header\n    name: $\${NOT_A_VAR}\n${VALID}`, 'x.yaml', {
      env: {},
    })
    expect(literal.identity?.[0]).toMatchObject({ name: '${NOT_A_VAR}' })
  })

  it('reports every missing environment variable at its line', () => {
    const issues = issuesOf(
      `identity:\n  - type: jwt\n    secret: \${JWT_SECRET}\n    algorithms: [HS256]\n    issuer: \${ISSUER}\n${VALID}`,
    )
    expect(issues.map((i) => [i.code, i.line, i.message])).toEqual([
      ['SLUICE_ERR_CONFIG_ENV', 3, 'environment variable JWT_SECRET is not set'],
      ['SLUICE_ERR_CONFIG_ENV', 5, 'environment variable ISSUER is not set'],
    ])
  })

  it('hints at quoting ${…} inside a flow map', () => {
    const issues = issuesOf(`identity:\n  - { type: jwt, secret: \${JWT_SECRET}, algorithms: [HS256] }\n${VALID}`, {
      JWT_SECRET: 'x',
    })
    expect(issues[0]?.code).toBe('SLUICE_ERR_CONFIG_YAML')
    expect(issues.map((i) => i.hint).join(' ')).toContain('"${JWT_SECRET}"')
  })

  it('reports several problems at once, sorted by line', () => {
    const issues = issuesOf(
      `mode: loud\n${VALID.replace('window: 10m', 'window: soon').replace('action: throttle', 'action: nuke')}`,
    )
    expect(issues.map((i) => i.line)).toEqual([1, 9, 9])
  })

  it('says which file cannot be read', async () => {
    await expect(loadConfigFile('/nonexistent/sluice.yaml')).rejects.toMatchObject({
      code: 'SLUICE_ERR_CONFIG_READ',
      file: '/nonexistent/sluice.yaml',
    })
    const dir = mkdtempSync(join(tmpdir(), 'sluice-load-'))
    writeFileSync(join(dir, 'ok.yaml'), VALID)
    expect((await loadConfigFile(join(dir, 'ok.yaml'), { env: {} })).routes).toHaveLength(1)
    rmSync(dir, { recursive: true, force: true })
  })

  it('formats issues as file:line:col: CODE at path: message, with the fix', () => {
    try {
      parseConfigText(VALID.replace('    limits:', '    limts:'), 'sluice.yaml', { env: {} })
    } catch (err) {
      expect((err as ConfigError).format()).toContain(
        'sluice.yaml:7:5: SLUICE_ERR_CONFIG_UNKNOWN_KEY at routes[0].limts: unknown key "limts"\n    fix: did you mean "limits"?',
      )
    }
  })
})
