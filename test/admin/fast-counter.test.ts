// FastCounter (sluice_requests_total) against prom-client's own Counter: the same increments
// must expose the same text, reset alike and aggregate alike across cluster workers.
import { AggregatorRegistry, Counter, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { FastCounter } from '../../src/admin/fast-counter.js'

const LABELS = ['route', 'decision', 'shadow'] as const
const INCS: [string, string, string, number][] = [
  ['contact', 'allow', 'false', 1],
  ['contact', 'allow', 'false', 1],
  ['contact', 'throttle', 'false', 1],
  ['parcel "x"\\y', 'allow', 'true', 3],
  ['contact', 'allow', 'false', 0.5],
]

function both(): { fast: Registry; reference: Registry } {
  const fast = new Registry()
  const reference = new Registry()
  const f = new FastCounter('sluice_requests_total', 'Requests.', LABELS, [fast])
  const c = new Counter({
    name: 'sluice_requests_total',
    help: 'Requests.',
    labelNames: LABELS,
    registers: [reference],
  })
  for (const [route, decision, shadow, by] of INCS) {
    f.labels(route, decision, shadow).inc(by)
    c.labels(route, decision, shadow).inc(by)
  }
  return { fast, reference }
}

describe('FastCounter', () => {
  it("exposes what prom-client's Counter exposes for the same increments (escaped labels included)", async () => {
    const { fast, reference } = both()
    expect(await fast.metrics()).toBe(await reference.metrics())
    expect(await fast.metrics()).toContain('sluice_requests_total{route="contact",decision="allow",shadow="false"} 2.5')
  })

  it('resets with the registry, keeping its series at zero', async () => {
    const { fast } = both()
    fast.resetMetrics()
    const values = (await fast.getSingleMetric('sluice_requests_total')?.get())?.values ?? []
    expect(values).toHaveLength(3)
    expect(values.every((v) => v.value === 0)).toBe(true)
  })

  it('sums across workers as a Counter does (AggregatorRegistry)', async () => {
    const a = both()
    const b = both()
    const fast = AggregatorRegistry.aggregate([await a.fast.getMetricsAsJSON(), await b.fast.getMetricsAsJSON()])
    const reference = AggregatorRegistry.aggregate([
      await a.reference.getMetricsAsJSON(),
      await b.reference.getMetricsAsJSON(),
    ])
    expect(await fast.metrics()).toBe(await reference.metrics())
  })

  it('gives the same child for the same labels, and refuses to go down', () => {
    const f = new FastCounter('c_total', 'c', ['a'], [])
    expect(f.labels('x')).toBe(f.labels('x'))
    expect(() => f.labels('x').inc(-1)).toThrow(/cannot increment by -1/)
    expect(() => f.labels('x').inc(Number.NaN)).toThrow()
    expect(f.get().values).toEqual([{ labels: { a: 'x' }, value: 0 }])
  })
})
