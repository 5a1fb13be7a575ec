// examples/prometheus/alerts.yaml and examples/grafana/sluice-dashboard.json: the rules are valid
// (promtool, when installed; always in CI) and every query of the rules and the dashboard names
// only metrics a running sluice exports (scraped from its admin /metrics).
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const root = join(import.meta.dirname, '../..')
const ALERTS = join(root, 'examples/prometheus/alerts.yaml')
const DASHBOARD = join(root, 'examples/grafana/sluice-dashboard.json')
const TOKEN = 'admin-token-0123456789abcdef'

interface Rule {
  alert?: string
  record?: string
  expr: string
  for?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
}
interface Panel {
  id: number
  type: string
  title: string
  gridPos: { h: number; w: number; x: number; y: number }
  targets?: { expr: string; refId: string }[]
}

let upstream: Upstream
let proxy: RunningProxy
let admin: FastifyInstance
/** Every series name sluice's /metrics can show: histograms with _bucket, _sum and _count. */
let exported: Set<string>

beforeAll(async () => {
  upstream = await startUpstream()
  proxy = await startProxy(
    `
version: 1
upstream: { url: UPSTREAM }
admin: { listen: { port: 0 }, token: ${TOKEN} }
routes:
  - name: contact
    path: /api/contacts/:id
    records: { param: id }
    limits: [ { window: 1m, distinctRecords: 100, action: throttle } ]
`,
    { upstream: upstream.url },
  )
  const started = await proxy.app.sluice.runtime.startAdmin(() => Promise.resolve({ ok: true }))
  if (!started) throw new Error('no admin listener')
  admin = started
  const { port } = admin.server.address() as AddressInfo
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })
  expect(res.status).toBe(200)
  exported = new Set()
  for (const m of (await res.text()).matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string]
    exported.add(name)
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(name + s)
    if (type === 'summary') for (const s of ['_sum', '_count']) exported.add(name + s)
  }
})
afterAll(async () => {
  await admin.close()
  await proxy.close()
  await upstream.close()
})

/** The sluice metric names a PromQL expression reads. */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\bsluice_[a-zA-Z0-9_]+\b/g)].map((m) => m[0])
}

function unknownIn(exprs: string[]): string[] {
  return [...new Set(exprs.flatMap(metricsIn))].filter((n) => !exported.has(n)).sort()
}

describe('the scraped /metrics', () => {
  it('exports the upstream, proxy and decision metrics the examples use', () => {
    for (const name of [
      'sluice_requests_total',
      'sluice_blocks_total',
      'sluice_upstream_latency_seconds_bucket',
      'sluice_upstream_errors_total',
      'sluice_upstream_up',
      'sluice_proxy_duration_seconds_count',
      'sluice_store_fallback_total',
      'sluice_audit_backlog',
    ])
      expect(exported).toContain(name)
  })
})

describe('examples/prometheus/alerts.yaml', () => {
  const doc = parse(readFileSync(ALERTS, 'utf8')) as { groups: { name: string; rules: Rule[] }[] }

  it('is YAML with the expected groups, each alert with a severity and a summary', () => {
    expect(doc.groups.map((g) => g.name)).toEqual([
      'sluice-blocks',
      'sluice-store',
      'sluice-audit',
      'sluice-upstream',
      'sluice-state',
    ])
    const alerts = doc.groups.flatMap((g) => g.rules.map((r) => r.alert))
    for (const name of [
      'SluiceBlocksHigh',
      'SluiceStoreErrors',
      'SluiceStoreFallback',
      'SluiceAuditBacklogGrowing',
      'SluiceAuditDropping',
      'SluiceUpstreamErrors',
      'SluiceUpstreamUnreachable',
    ])
      expect(alerts).toContain(name)
    expect(new Set(alerts).size).toBe(alerts.length)
    for (const rule of doc.groups.flatMap((g) => g.rules)) {
      expect(rule.expr.trim()).not.toBe('')
      expect(['warning', 'critical']).toContain(rule.labels?.severity)
      expect(rule.annotations?.summary).toBeTruthy()
    }
  })

  it('reads only metrics sluice exports', () => {
    const exprs = doc.groups.flatMap((g) => g.rules.map((r) => r.expr))
    for (const e of exprs) expect(metricsIn(e).length).toBeGreaterThan(0)
    expect(unknownIn(exprs)).toEqual([])
  })

  it('passes promtool check rules', (ctx) => {
    const version = spawnSync('promtool', ['--version'], { encoding: 'utf8' })
    if (version.error) {
      // CI installs Debian's prometheus package (.ci/run): there, a missing promtool is a failure.
      if (process.env.CI) throw new Error('promtool is not installed (apt-get install prometheus)', { cause: version.error })
      console.warn('skipped: promtool is not installed (apt-get install prometheus); CI runs this check')
      return ctx.skip()
    }
    const r = spawnSync('promtool', ['check', 'rules', ALERTS], { encoding: 'utf8' })
    expect(r.stdout + r.stderr).toContain('SUCCESS')
    expect(r.status).toBe(0)
  })
})

describe('examples/grafana/sluice-dashboard.json', () => {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    title: string
    uid: string
    schemaVersion: number
    panels: Panel[]
    templating: { list: { name: string; type: string; query?: unknown; definition?: string }[] }
  }
  const queryPanels = dash.panels.filter((p) => p.type !== 'row')

  it('is a Grafana dashboard with a Prometheus data source variable', () => {
    expect(dash.title).toBe('sluice')
    expect(dash.uid).toMatch(/^[a-z0-9-]{1,40}$/)
    expect(dash.schemaVersion).toBeGreaterThanOrEqual(36)
    expect(dash.templating.list.find((v) => v.name === 'datasource')).toMatchObject({
      type: 'datasource',
      query: 'prometheus',
    })
    const ids = dash.panels.map((p) => p.id)
    expect(new Set(ids).size).toBe(ids.length)
    for (const p of dash.panels) {
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24)
      expect(p.title).toBeTruthy()
    }
  })

  it('has the panels operators look at', () => {
    const titles = queryPanels.map((p) => p.title.toLowerCase()).join('\n')
    for (const t of [
      'blocks per minute by action',
      'decisions per minute',
      'store errors and fallbacks',
      'audit backlog',
      'upstream latency',
      'upstream responses and errors',
      'proxy duration',
      'challenge outcomes',
    ])
      expect(titles).toContain(t)
    const exprs = queryPanels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).join('\n')
    expect(exprs).toContain('histogram_quantile(0.5, sum by (le) (rate(sluice_upstream_latency_seconds_bucket')
    expect(exprs).toContain('histogram_quantile(0.99, sum by (le) (rate(sluice_upstream_latency_seconds_bucket')
  })

  it("every panel's queries read only metrics sluice exports", () => {
    for (const p of queryPanels) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0)
      for (const t of p.targets ?? []) expect(metricsIn(t.expr).length, `${p.title}: ${t.expr}`).toBeGreaterThan(0)
    }
    const exprs = queryPanels.flatMap((p) => (p.targets ?? []).map((t) => t.expr))
    const variables = dash.templating.list.flatMap((v) => (v.definition ? [v.definition] : []))
    expect(unknownIn([...exprs, ...variables])).toEqual([])
  })
})
