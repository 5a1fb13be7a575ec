// Accounts per bucket of a count, buckets on a 1-2-5 scale (0, 1, 2, 3–5, 6–10, 11–20, …):
// the report's charts and the JSON output share it.

export interface Bucket {
  /** Values in (low, high]; the first bucket is exactly 0. */
  low: number
  high: number
  label: string
  accounts: number
}

/** Upper bounds 0, 1, 2, 5, 10, 20, 50, … up to the first one ≥ `top`. */
export function bucketBounds(top: number): number[] {
  const bounds = [0, 1, 2]
  let decade = 1
  while ((bounds[bounds.length - 1] as number) < top) {
    for (const f of [5, 10, 20]) bounds.push(f * decade)
    decade *= 10
  }
  // The loop adds three at a time; trim those past the first bound ≥ top.
  while (bounds.length > 2 && (bounds[bounds.length - 2] as number) >= top) bounds.pop()
  return bounds
}

export function histogram(values: readonly number[], top = 0): Bucket[] {
  let max = top
  for (const v of values) if (v > max) max = v
  const bounds = bucketBounds(max)
  const buckets: Bucket[] = bounds.map((high, i) => {
    const low = i === 0 ? -1 : (bounds[i - 1] as number)
    return { low, high, label: i === 0 ? '0' : high - low === 1 ? String(high) : `${low + 1}–${high}`, accounts: 0 }
  })
  for (const v of values) {
    let i = 0
    while ((bounds[i] as number) < v) i++
    ;(buckets[i] as Bucket).accounts++
  }
  return buckets
}
