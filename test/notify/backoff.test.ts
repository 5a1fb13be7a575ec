import { describe, expect, it } from 'vitest'
import { DEFAULT_RETRY, retryDelay } from '../../src/notify/index.js'

describe('retryDelay', () => {
  it('doubles from the initial delay, jittered between half and all of it, capped', () => {
    const policy = { ...DEFAULT_RETRY, initialDelayMs: 1000, maxDelayMs: 10_000 }
    expect([1, 2, 3, 4, 5, 6].map((n) => retryDelay(n, policy, () => 0))).toEqual([500, 1000, 2000, 4000, 5000, 5000])
    expect([1, 2, 3, 4, 5, 6].map((n) => retryDelay(n, policy, () => 1))).toEqual([
      1000, 2000, 4000, 8000, 10_000, 10_000,
    ])
  })

  it('honours Retry-After up to the cap', () => {
    const policy = { ...DEFAULT_RETRY, initialDelayMs: 100, maxDelayMs: 5000 }
    expect(retryDelay(1, policy, () => 0, 3000)).toBe(3000)
    expect(retryDelay(1, policy, () => 0, 60_000)).toBe(5000)
  })
})
