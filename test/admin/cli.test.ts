// `sluice accounts …`, `sluice incidents`, `sluice reload` against a real admin listener,
// through a Command built the way main.ts builds it.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { IncidentLog } from '../../src/admin/incidents.js'
import { buildAdmin } from '../../src/admin/server.js'
import { registerAccounts, table } from '../../src/cli/accounts.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { freePort } from '../helpers/redis.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'
import { adminConfig, call, policiesOf, readAs, TOKEN } from './helpers.js'
import { runCommand, type CliRun } from '../helpers/cli.js'

const CONFIG = adminConfig()

let upstream: Upstream
let proxy: RunningProxy
let admin: Awaited<ReturnType<typeof buildAdmin>>
let url: string
const incidents = new IncidentLog(100)

const read = (user: string, route: string, ids: number[]) => readAs(proxy.url, user, route, ids)

beforeAll(async () => {
  upstream = await startUpstream()
  proxy = await startProxy(CONFIG, { upstream: upstream.url })
  admin = await buildAdmin({
    token: TOKEN,
    metrics: proxy.app.sluice.metrics,
    store: proxy.app.sluice.store,
    policies: policiesOf(CONFIG),
    incidents,
  })
  url = await admin.listen({ host: '127.0.0.1', port: 0 })
  await read('header:mallory', 'contacts', [1, 2, 3, 4, 5, 6])
  await read('header:bob', 'invoices', [1, 2, 3, 4, 5, 6, 7, 8, 9])
  await read('header:bob', 'contacts', [1])
  incidents.record({
    time: Date.parse('2024-05-01T11:00:00Z'),
    account: 'header:\u001b[31mred',
    route: 'contact',
    limit: null,
    action: null,
    decision: 'disabled',
    counts: {},
    shadow: true,
  })
  incidents.record({
    time: Date.parse('2024-05-01T12:00:00Z'),
    account: 'header:mallory',
    route: 'contact',
    limit: '10m distinctRecords 5 → disable',
    action: 'disable',
    decision: 'disable',
    counts: { '10m distinctRecords 5 → disable': 6, '1m requests 50 → throttle': 6 },
    shadow: false,
    clientIp: '10.0.0.7',
  })
})
afterAll(async () => {
  await admin.close()
  await proxy.close()
  await upstream.close()
})
afterEach(() => {
  vi.restoreAllMocks()
  delete process.env.SLUICE_ADMIN_URL
  delete process.env.SLUICE_ADMIN_TOKEN
})

const run = (...args: string[]): Promise<CliRun> => runCommand(registerAccounts, args)

const auth = () => ['--url', url, '--token', TOKEN]

describe('sluice accounts', () => {
  it('list prints an aligned table, most pressed first', async () => {
    const res = await run('accounts', 'list', ...auth())
    expect(res.code).toBe(0)
    expect(res.stderr).toBe('')
    const lines = res.stdout.split('\n')
    expect(lines[0]).toMatch(/^ACCOUNT\s+PRESSURE\s+DISABLED\s+ROUTE\s+COUNTS$/)
    expect(lines[1]).toMatch(
      /^header:mallory\s+100%\s+enforce, until unlocked\s+contact\s+5\/5 records\/10m, 6\/50 requests\/1m$/,
    )
    expect(lines[2]).toMatch(/^header:bob\s+90%\s+-\s+contact\s+1\/5 records\/10m, 1\/50 requests\/1m$/)
    expect(lines[3]).toMatch(/^\s+invoice\s+9\/10 records\/10m$/)
    // Columns line up: every row's ROUTE starts where the header's does.
    const at = (lines[0] as string).indexOf('ROUTE')
    for (const line of lines.slice(1, 4)) expect(line.slice(at)).toMatch(/^(contact|invoice) /)
    expect(res.stdout).toMatch(
      /\n\n2 accounts by distinct records, all routes \(2 with counts\); pressure = highest count \/ limit; at \d{4}-/,
    )
  })

  it("list --route, --by, --limit and --json (the API's JSON as is)", async () => {
    const res = await run('accounts', 'list', ...auth(), '--route', 'invoice', '--json')
    expect(res.code).toBe(0)
    const api = await call(url, 'GET', '/accounts?by=distinct&limit=20&route=invoice')
    expect({ ...JSON.parse(res.stdout), at: undefined }).toEqual({ ...api.json, at: undefined })
    const top = await run('accounts', 'list', ...auth(), '--by', 'requests', '--limit', '1', '--json')
    expect(JSON.parse(top.stdout).accounts.map((a: { account: string }) => a.account)).toEqual(['header:mallory'])
    expect((await run('accounts', 'list', ...auth(), '--by', 'records')).code).toBe(2)
    expect((await run('accounts', 'list', ...auth(), '--limit', '0')).code).toBe(2)
  })

  it('show prints the account and one row per window', async () => {
    const res = await run('accounts', 'show', 'header:bob', ...auth())
    expect(res.code).toBe(0)
    expect(res.stdout).toMatch(/^account {3}header:bob\ndisabled {2}no\nat {8}\d{4}-/)
    expect(res.stdout).toMatch(/\n\nROUTE\s+WINDOW\s+PER\s+KIND\s+COUNT\s+MAX\s+USED\s+ACTION\n/)
    expect(res.stdout).toMatch(/\ncontact\s+10m\s+account\s+distinct records\s+1\s+5\s+20%\s+disable\n/)
    expect(res.stdout).toMatch(/\ncontact\s+1m\s+account\s+requests\s+1\s+50\s+2%\s+throttle\n/)
    expect(res.stdout).toMatch(/\ninvoice\s+10m\s+account\s+distinct records\s+9\s+10\s+90%\s+throttle$/)
  })

  it("show of an unknown account: the API's reason on stderr, exit 1", async () => {
    const res = await run('accounts', 'show', 'header:nobody', ...auth())
    expect(res.code).toBe(1)
    expect(res.stdout).toBe('')
    expect(res.stderr).toMatch(
      /^sluice: the store holds nothing for account "header:nobody" .*\(SLUICE_ERR_ADMIN_NOT_FOUND\)$/,
    )
  })

  it('unlock and reset say what they did; the account is served again', async () => {
    expect(await read('header:mallory', 'contacts', [1])).toEqual([403])
    const unlock = await run('accounts', 'unlock', 'header:mallory', ...auth())
    expect(unlock).toEqual({
      code: 0,
      stdout: 'unlocked header:mallory (was disabled: enforce, until unlocked)',
      stderr: '',
    })
    expect(await read('header:mallory', 'contacts', [1])).toEqual([200])
    expect((await run('accounts', 'unlock', 'header:mallory', ...auth())).stdout).toBe(
      'header:mallory was not disabled; nothing changed',
    )

    const one = await run('accounts', 'reset', 'header:bob', '--route', 'invoice', ...auth())
    expect(one).toEqual({ code: 0, stdout: 'reset header:bob: counters of route invoice cleared', stderr: '' })
    const all = await run('accounts', 'reset', 'header:mallory', ...auth(), '--json')
    expect(JSON.parse(all.stdout)).toEqual({ account: 'header:mallory', route: null, reset: true, lifted: [] })
    expect(await read('header:mallory', 'contacts', [11, 12, 13, 14, 15])).toEqual([200, 200, 200, 200, 200])
  })

  it('takes the URL and token from SLUICE_ADMIN_URL and SLUICE_ADMIN_TOKEN', async () => {
    process.env.SLUICE_ADMIN_URL = url
    process.env.SLUICE_ADMIN_TOKEN = TOKEN
    const res = await run('accounts', 'list', '--json')
    expect(res.code).toBe(0)
    expect(JSON.parse(res.stdout).accounts.length).toBeGreaterThan(0)
  })

  it('a refused token: "the admin token was refused", exit 1', async () => {
    const res = await run('accounts', 'list', '--url', url, '--token', 'wrong')
    expect(res.code).toBe(1)
    expect(res.stdout).toBe('')
    expect(res.stderr).toBe(
      `sluice: the admin token was refused by ${url} (check SLUICE_ADMIN_TOKEN against admin.token in the config)`,
    )
  })

  it('an unreachable URL: "cannot reach the admin API at …", exit 1', async () => {
    const port = await freePort()
    const res = await run('accounts', 'show', 'header:bob', '--url', `http://127.0.0.1:${port}`, '--token', TOKEN)
    expect(res.code).toBe(1)
    expect(res.stderr).toBe(
      `sluice: cannot reach the admin API at http://127.0.0.1:${port} (ECONNREFUSED); the URL came from --url: set it with --url, SLUICE_ADMIN_URL or -c sluice.yaml`,
    )
  })

  it('no token, or a URL that is not http(s): usage error, exit 2', async () => {
    const none = await run('accounts', 'list', '--url', url)
    expect(none.code).toBe(2)
    expect(none.stderr).toContain('no admin token: set SLUICE_ADMIN_TOKEN, pass --token, or name the config with -c')
    const bad = await run('accounts', 'list', '--url', 'ftp://x', '--token', TOKEN)
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('"ftp://x" is not an http(s) URL')
  })
})

describe('sluice incidents and reload', () => {
  it("incidents prints a table, --json the API's answer", async () => {
    const res = await run('incidents', ...auth())
    expect(res.code).toBe(0)
    const lines = res.stdout.split('\n')
    expect(lines[0]).toMatch(
      /^FIRST \(UTC\)\s+LAST \(UTC\)\s+REQUESTS\s+ACCOUNT\s+ROUTE\s+DECISION\s+LIMIT\s+CLIENT\s+REFERENCE \(LAST\)$/,
    )
    expect(lines[1]).toMatch(
      /^2024-05-01 12:00:00\s+2024-05-01 12:00:00\s+1\s+header:mallory\s+contact\s+disable\s+10m distinctRecords 5 → disable\s+10.0.0.7\s+-$/,
    )
    expect(res.stdout).toMatch(/\n\n2 shown, one row per episode .* \(2 episodes, 2 decisions since it started\)/)
    // A terminal escape in an account id (a header value, a user name) is shown, not obeyed.
    expect(lines[2]).toMatch(/^2024-05-01 11:00:00\s+2024-05-01 11:00:00\s+1\s+header:\\x1B\[31mred\s/)
    expect(res.stdout).not.toContain('\u001b')
    const json = await run('incidents', ...auth(), '--account', 'header:bob', '--json')
    expect(JSON.parse(json.stdout)).toEqual({ incidents: [], capacity: 100, recorded: 2, episodes: 2 })
    expect((await run('incidents', ...auth(), '--account', 'header:bob')).stdout).toBe('no incidents')
  })

  it("reload without a hook: the API's reason, exit 1", async () => {
    const res = await run('reload', ...auth())
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(
      /^sluice: this sluice cannot reload through the admin API .*\(SLUICE_ERR_ADMIN_RELOAD_UNSUPPORTED\)$/,
    )
  })
})

describe('table', () => {
  it('pads every column but the last to its widest cell', () => {
    expect(
      table([
        ['A', 'BB', 'C'],
        ['aaa', 'b', 'c→d'],
      ]),
    ).toBe('A    BB  C\naaa  b   c→d')
  })
})
