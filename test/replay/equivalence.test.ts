// The same trace through the live proxy (test clock) and through `sluice replay` of a log
// written from it: every request must get the same decision, with the same limit and counts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { compileConfigText } from '../../src/config/index.js'
import { replayLogs, type ReplayedRequest } from '../../src/replay/replay.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'
import { combinedLine, generateTrace, TRACE_CONFIG, type TraceRequest } from './trace.js'

interface Observed {
  status: number
  decision: {
    kind: string
    account: string
    route: string
    limit: string | null
    counts: Record<string, number>
    path: string
  } | null
}

const dir = mkdtempSync(join(tmpdir(), 'sluice-replay-eq-'))
let upstream: Upstream
let proxy: RunningProxy
let trace: TraceRequest[]
const live: Observed[] = []

beforeAll(async () => {
  trace = generateTrace()
  upstream = await startUpstream()
  let now = 0
  proxy = await startProxy(TRACE_CONFIG, { upstream: upstream.url, clock: () => now })
  let seen = 0
  for (const r of trace) {
    now = r.time
    const res = await fetch(`${proxy.url}${r.target}`, { headers: { 'x-user': r.account } })
    await res.arrayBuffer()
    // The proxy logs every decision but allow, before it answers.
    const logged = proxy.decisions()
    const d = logged.length > seen ? (logged[seen++] as Record<string, unknown>) : null
    live.push({
      status: res.status,
      decision: d && {
        kind: d.decision as string,
        // The proxy keys the header's user in its namespace; the log names the user bare.
        account: (d.account as string).replace(/^header:/, ''),
        route: d.route as string,
        limit: d.limit as string | null,
        counts: d.counts as Record<string, number>,
        path: d.path as string,
      },
    })
  }
}, 60_000)

afterAll(async () => {
  await proxy?.close()
  await upstream?.close()
  rmSync(dir, { recursive: true, force: true })
})

async function replayed(file: string, format: 'combined' | 'json'): Promise<Observed[]> {
  const config = compileConfigText(TRACE_CONFIG.replace('UPSTREAM', upstream.url), 'test.yaml')
  const out: Observed[] = []
  const result = await replayLogs(config, [file], {
    format,
    onDecision: (e: ReplayedRequest) => {
      const d = e.decision
      const counts: Record<string, number> = {}
      e.route.policy.limits.forEach((l, i) => (counts[l.label] = d.counts[i] ?? 0))
      out.push({
        status: !d.block ? 200 : d.kind === 'throttle' || d.kind === 'challenge' ? 429 : 403,
        decision:
          d.kind === 'allow'
            ? null
            : {
                kind: d.kind,
                account: d.account,
                route: d.route,
                limit: d.limit?.label ?? null,
                counts,
                path: e.entry.target,
              },
      })
    },
  })
  expect(result.bad.count).toBe(0)
  expect(result.requests).toBe(trace.length)
  // The proxy may log record ids as keyed pseudonyms (`~` and 32 hex digits, privacy.pseudonymise):
  // a replayed path matches when it is the same path with an id where the pseudonym is.
  out.forEach((o, i) => {
    const want = live[i]?.decision?.path
    if (o.decision && want !== undefined && samePath(want, o.decision.path)) o.decision.path = want
  })
  return out
}

function samePath(logged: string, replayed: string): boolean {
  if (!/~[0-9a-f]{32}/.test(logged)) return logged === replayed
  // Pseudonymised query values are re-encoded: a list's commas come back as %2C.
  const pattern = logged
    .replace(/%2C/gi, ',')
    .split(/~[0-9a-f]{32}/)
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('[^/?&=,]+')
  return new RegExp(`^${pattern}$`).test(replayed)
}

describe('replay reproduces the live proxy', () => {
  it('the trace exercises every kind of decision', () => {
    const kinds = new Set(live.map((o) => o.decision?.kind ?? 'allow'))
    expect([...kinds].sort()).toEqual(['allow', 'challenge', 'disable', 'disabled', 'log', 'throttle'])
    const blockedBy = (account: string) =>
      live.filter((o, i) => trace[i]?.account === account && o.status !== 200).length
    expect(blockedBy('slow-walker')).toBeGreaterThan(0)
    expect(blockedBy('fast-walker')).toBeGreaterThan(0)
    for (let u = 0; u < 6; u++) expect(blockedBy(`clerk-${u}`)).toBe(0)
  })

  it('from a combined log (in another time zone): the same decision for every request', async () => {
    const file = join(dir, 'access.log')
    writeFileSync(file, trace.map((r, i) => combinedLine(r, live[i]?.status, -300)).join('\n') + '\n')
    const replay = await replayed(file, 'combined')
    expect(replay.length).toBe(live.length)
    for (let i = 0; i < live.length; i++) {
      if (JSON.stringify(replay[i]) !== JSON.stringify(live[i])) {
        expect({ request: i, ...trace[i], replay: replay[i] }).toEqual({ request: i, ...trace[i], replay: live[i] })
      }
    }
  })

  it('from JSON lines: the same decision for every request', async () => {
    const file = join(dir, 'access.jsonl')
    writeFileSync(
      file,
      trace
        .map((r) =>
          JSON.stringify({
            ts: new Date(r.time).toISOString(),
            verb: 'GET',
            uri: r.target,
            user: r.account,
            remote_addr: '10.1.2.3',
          }),
        )
        .join('\n') + '\n',
    )
    const replay = await replayed(file, 'json')
    expect(replay).toEqual(live)
  })
})
