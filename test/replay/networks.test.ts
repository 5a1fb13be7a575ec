// Replay equivalence for per-network, per-route and distinct-account limits: the same trace
// through the live proxy (clients told apart by X-Forwarded-For from a trusted proxy) and
// through `sluice replay` of a JSON log with the client address, decision for decision.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { compileConfigText } from '../../src/config/index.js'
import { replayLogs } from '../../src/replay/replay.js'
import { formatSuggestionYaml, suggestLimits } from '../../src/replay/suggest.js'
import { startProxy } from '../helpers/proxy.js'
import { startUpstream } from '../helpers/upstream.js'

const CONFIG = `
version: 1
upstream: { url: UPSTREAM, timeout: 5s }
trustedProxies: [loopback]
identity:
  - { type: header, name: x-user, trusted: true }
routes:
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 10m, distinctRecords: 12, action: throttle }
      - { per: network, window: 1h, distinctRecords: 50, action: throttle }
      - { per: network, window: 1h, distinctAccounts: 8, action: challenge }
      - { per: route, window: 1h, distinctRecords: 60, action: log }
`

interface Seen {
  kind: string
  account: string
  limit: string | null
  counts: unknown
}

const dir = mkdtempSync(join(tmpdir(), 'sluice-replay-net-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('replay of network, route and distinct-account limits', () => {
  it('decides every request as the live proxy did, and suggest proposes per-network thresholds', async () => {
    // 40 accounts on 4 networks, each reading a few records, some many.
    let s = 11
    const rnd = (n: number) => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) % n) | 0
    const trace = Array.from({ length: 600 }, (_, i) => {
      const a = rnd(40)
      return {
        time: Date.parse('2026-12-07T08:00:00Z') + i * 1000,
        account: `u${a}`,
        ip: `10.${a % 4}.0.${1 + (a % 50)}`,
        target: `/api/contacts/${a < 4 ? 1000 + i : rnd(30)}`,
      }
    })
    const upstream = await startUpstream()
    let now = 0
    const proxy = await startProxy(CONFIG, { upstream: upstream.url, clock: () => now })
    const live: (Seen | null)[] = []
    try {
      let seen = 0
      for (const r of trace) {
        now = r.time
        const res = await fetch(`${proxy.url}${r.target}`, {
          headers: { 'x-user': r.account, 'x-forwarded-for': r.ip },
        })
        await res.arrayBuffer()
        const logged = proxy.decisions()
        const d = logged.length > seen ? (logged[seen++] as Record<string, unknown>) : null
        live.push(
          d && {
            kind: d.decision as string,
            account: (d.account as string).replace(/^header:/, ''),
            limit: d.limit as string | null,
            counts: d.counts,
          },
        )
      }
    } finally {
      await proxy.close()
      await upstream.close()
    }
    const accounts = live.flatMap((d) => (d ? [d.account] : []))
    for (const key of [/^net:10\.\d\.0\.0\/24$/, /^route:contact$/, /^u\d+$/])
      expect(accounts.some((a) => key.test(a))).toBe(true)

    const file = join(dir, 'access.jsonl')
    const lines = trace.map((r) =>
      JSON.stringify({
        ts: new Date(r.time).toISOString(),
        verb: 'GET',
        uri: r.target,
        user: r.account,
        remote_addr: r.ip,
      }),
    )
    writeFileSync(file, lines.join('\n') + '\n')
    const config = compileConfigText(CONFIG.replace('UPSTREAM', 'http://127.0.0.1:9'), 'test.yaml')
    const replayed: (Seen | null)[] = []
    const result = await replayLogs(config, [file], {
      format: 'json',
      onDecision: (e) => {
        const d = e.decision
        const counts: Record<string, number> = {}
        e.route.policy.limits.forEach((l, i) => (counts[l.label] = d.counts[i] ?? 0))
        replayed.push(
          d.kind === 'allow' ? null : { kind: d.kind, account: d.account, limit: d.limit?.label ?? null, counts },
        )
      },
    })
    expect(result.bad.count).toBe(0)
    // A per-route alert is reported once per episode by the proxy: compare what both decided.
    const episodeFree = (xs: (Seen | null)[]) => xs.map((x) => (x?.account === 'route:contact' ? null : x))
    expect(episodeFree(replayed).filter(Boolean).length).toBeGreaterThan(0)
    for (let i = 0; i < live.length; i++) {
      const got = episodeFree(replayed)[i]
      const want = episodeFree(live)[i]
      expect({ i, got }).toEqual({ i, got: want })
    }

    const s2 = suggestLimits(result)
    const contact = s2.routes[0]!
    const network = contact.limits.find((l) => l.limit.per === 'network' && l.limit.kind === 'distinctRecords')!
    expect(network.accounts).toBe(4) // four networks measured, not forty accounts
    expect(contact.limits.find((l) => l.limit.per === 'route')!.accounts).toBe(1)
    // The YAML it prints is a config sluice accepts, per-network limits included.
    const yaml = formatSuggestionYaml(s2, result)
    expect(yaml).toMatch(/- \{ per: network, window: 1h, distinctRecords: \d+, action: throttle \}/)
    expect(yaml).toMatch(/of 4 networks/)
  })
})
