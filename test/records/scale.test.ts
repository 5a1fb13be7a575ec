// A body's reading grows linearly with what it holds, and not with how many boundaries its
// Content-Type names: one request must not hold the event loop for everyone. Only ratios are
// asserted, each the best of a few runs (as test/engine/scale.test.ts does): ten times the
// pairs take about ten times as long (a quadratic step takes a hundred), and a thousand
// `boundary=` parameters cost what two do (servers read only the first and the last).
import { describe, expect, it } from 'vitest'
import { selectBody } from '../../src/records/body.js'
import { compileSelector } from '../../src/records/selector.js'

const BOUND = 50
const ids = compileSelector('$.id')

function best(read: () => string[], runs = 3): { ms: number; found: number } {
  let ms = Infinity
  let found = 0
  for (let r = 0; r < runs; r++) {
    const start = performance.now()
    found = read().length
    ms = Math.min(ms, performance.now() - start)
  }
  return { ms, found }
}

describe('reading a body', () => {
  it('takes linear time in repeated keys: 40,000 `id=` pairs against 4,000', () => {
    const form = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => `id=${i}`).join('&'))
    const small = best(() => selectBody(form(4_000), 'application/x-www-form-urlencoded', ids))
    const large = best(() => selectBody(form(40_000), 'application/x-www-form-urlencoded', ids))
    // (Each pair counts in the nested and the flat reading.)
    expect(small.found).toBe(8_000)
    expect(large.found).toBe(80_000)
    expect(large.ms).toBeLessThan(BOUND * small.ms)
  })

  it('reads a multipart body with the first and last boundary only, however many the type names', () => {
    // Parts whose boundaries start with one another (`q1`, `q10`, `q100`…): every boundary read
    // splits the body again into many parts.
    const parts = Array.from(
      { length: 4_000 },
      (_, i) => `--q${i % 200}\r\nContent-Disposition: form-data; name="id"\r\n\r\n${i}\r\n`,
    )
    const body = Buffer.from(parts.join(''))
    const type = (n: number) =>
      `multipart/form-data; ${Array.from({ length: n }, (_, i) => `boundary=q${i + 1}`).join('; ')}`
    const two = best(() => selectBody(body, `${type(1)}; boundary=q2`, ids))
    const many = best(() => selectBody(body, `${type(200)}; boundary=q2`, ids))
    expect(many.found).toBe(two.found)
    expect(many.ms).toBeLessThan(BOUND * Math.max(two.ms, 1))
  })
})
