// What sluice's request-path metrics (FastCounter, FastHistogram) share: registered in
// prom-client's registries as any other metric, and each label set resolved once to a child
// that the request path keeps — no label hashing per observation, which is what prom-client's
// own metrics do on every call, even through a child from `labels()`.
import type { Registry } from 'prom-client'

export abstract class FastMetric<Child> {
  abstract readonly type: string
  readonly aggregator = 'sum'
  private readonly children = new Map<string, Child>()

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    registers: readonly Registry[],
  ) {
    for (const r of registers) r.registerMetric(this as never)
  }

  /**
   * The child of one label set, by values in labelNames' order (resolve it once, keep it; the
   * same set gives the same child).
   */
  labels(...values: string[]): Child {
    const key = values.join('\0')
    const known = this.children.get(key)
    if (known) return known
    const labels: Record<string, string> = {}
    this.labelNames.forEach((n, i) => (labels[n] = values[i] ?? ''))
    const child = this.newChild(labels, key)
    this.children.set(key, child)
    return child
  }

  /** A new label set's child, and its series. */
  protected abstract newChild(labels: Record<string, string>, key: string): Child
}
