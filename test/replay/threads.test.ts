// A replay on several threads gives the single-threaded replay's result, byte for byte: the
// built CLI (`npm test` builds first) on the same generated logs with --threads 1, 2 and 3 (two
// workers: batches come back out of order), JSON and text output compared whole; then, in
// process, every decision in order. The logs have what makes a reader's life hard: bad lines,
// blank lines, CRLF, paths the proxy refuses, anonymous requests, two files (gzip and plain),
// per-network and per-route limits, a store small enough to overflow.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ReplayedRequest, ReplayOptions, ReplayResult } from '../../src/replay/replay.js'
import type { CompiledConfig } from '../../src/config/index.js'
import { combined, population } from './population.js'

const ROOT = join(import.meta.dirname, '../..')
const BIN = join(ROOT, 'bin/sluice.js')
const dir = mkdtempSync(join(tmpdir(), 'sluice-replay-threads-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const CONFIG = `
version: 1
upstream: { url: http://127.0.0.1:9 }
identity:
  - { type: basic }
store: { type: memory, maxAccounts: 150 }
routes:
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 1m, distinctRecords: 20, action: throttle }
      - { window: 1m, requests: 40, action: disable }
      - { window: 1d, distinctRecords: 200, action: challenge }
      - { per: network, window: 1h, distinctRecords: 400, action: throttle }
      - { per: route, window: 1h, distinctRecords: 5000, action: log }
  - name: contact-list
    methods: [GET]
    path: /api/contacts
    records: { query: ids, split: "," }
    limits:
      - { window: 10m, distinctRecords: 100, action: challenge }
  - name: contact-search
    methods: [POST]
    path: /api/contacts/search
    limits:
      - { window: 1m, requests: 20, action: throttle }
`

let config: string
let logs: string[]

beforeAll(() => {
  if (!existsSync(join(ROOT, 'dist/replay/worker.js')))
    throw new Error('run `npm run build` first: these tests run the built bin and its workers')
  config = join(dir, 'sluice.yaml')
  writeFileSync(config, CONFIG)
  const lines: string[] = []
  let n = 0
  for (const hit of population({ clerks: 300, days: 2, maxLines: 160_000 })) {
    lines.push(combined(hit))
    n++
    if (n % 997 === 0) lines.push('')
    if (n % 1999 === 0) lines.push('not a log line at all')
    if (n % 2503 === 0) lines.push(combined({ ...hit, target: '/api/contacts/%2e%2e/%2e%2e/admin' }))
    if (n % 3001 === 0) lines.push(combined({ ...hit, account: '-', client: '-' }))
    if (n % 4001 === 0) lines.push(combined({ ...hit, account: '-', client: `192.0.2.${n % 250}` }))
    if (n % 5003 === 0) lines.push(combined({ ...hit, target: '/api/contacts/%zz' }))
  }
  const cut = Math.floor(lines.length * 0.7)
  const first = join(dir, 'access.log.1.gz')
  const second = join(dir, 'access.log')
  // The first file with CRLF in a stretch, the second ending without a newline.
  const head = lines.slice(0, cut)
  writeFileSync(
    first,
    gzipSync(`${head.slice(0, 20_000).join('\r\n')}\r\n${head.slice(20_000).join('\n')}\n`, { level: 1 }),
  )
  writeFileSync(second, lines.slice(cut).join('\n'))
  logs = [first, second]
}, 60_000)

function cli(command: string, threads: number, ...extra: string[]): string {
  const res = spawnSync(
    process.execPath,
    [BIN, command, '--config', config, '--threads', String(threads), '--top', '50', ...extra, ...logs],
    { encoding: 'utf8', timeout: 120_000, maxBuffer: 1 << 28 },
  )
  expect(res.stderr.replace(/sluice: warning: [^\n]*\n/g, '')).toBe('')
  expect(res.status).toBe(0)
  return res.stdout
}

/** The JSON answer without how long it took. */
const withoutElapsed = (out: string) => out.replace(/\n {2}"elapsedMs": [\d.e+-]+,?/, '')

describe('replay on several threads', () => {
  it('the CLI: the same JSON, text and suggestion with 1, 2 and 3 threads', () => {
    const one = withoutElapsed(cli('replay', 1, '--json', '--blocked', '1000'))
    expect(JSON.parse(one)).toMatchObject({
      bad: { count: expect.any(Number) },
      rejected: { count: expect.any(Number) },
    })
    const parsed = JSON.parse(one) as { lines: number; bad: { count: number }; blocked: { count: number } }
    expect(parsed.bad.count).toBeGreaterThan(100)
    expect(parsed.blocked.count).toBeGreaterThan(0)
    for (const t of [2, 3]) expect(withoutElapsed(cli('replay', t, '--json', '--blocked', '1000'))).toBe(one)
    const text = cli('replay', 1)
    expect(cli('replay', 2)).toBe(text)
    expect(cli('suggest', 2)).toBe(cli('suggest', 1))
  }, 300_000)

  it('in process: every decision, in order, the same', async () => {
    // The built modules: workers run the built worker.
    const { replayLogs } = (await import(pathToFileURL(join(ROOT, 'dist/replay/replay.js')).href)) as {
      replayLogs: (c: CompiledConfig, f: readonly string[], o?: ReplayOptions) => Promise<ReplayResult>
    }
    const { compileConfigText } = (await import(pathToFileURL(join(ROOT, 'dist/config/index.js')).href)) as {
      compileConfigText: (text: string, file?: string) => CompiledConfig
    }
    // One config for both: the result holds its routes.
    const compiled = compileConfigText(CONFIG, 'test.yaml')
    const run = async (threads: number) => {
      const seen: string[] = []
      const result = await replayLogs(compiled, logs, {
        threads,
        keepBad: 1000,
        keepBlocked: 1000,
        onDecision: (e: ReplayedRequest) =>
          seen.push(
            JSON.stringify([
              e.at,
              e.entry,
              e.account,
              e.route.name,
              e.records,
              { ...e.decision, limit: e.decision.limit?.label },
            ]),
          ),
      })
      return { seen, result: { ...result, elapsedMs: 0 } }
    }
    const one = await run(1)
    const two = await run(2)
    expect(two.seen.length).toBe(one.seen.length)
    for (let i = 0; i < one.seen.length; i++) if (two.seen[i] !== one.seen[i]) expect(two.seen[i]).toBe(one.seen[i])
    expect(two.result).toEqual(one.result)
  }, 300_000)
})
