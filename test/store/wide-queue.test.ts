// A wide log's queue of touches (src/store/wide.ts): compacted in place when full, so that it
// stays within a few times the records held however often they are touched again, and gives
// its memory back when the records leave their windows.
import { describe, expect, it } from 'vitest'
import { buildPolicy } from '../../src/engine/policy.js'
import { WideLog } from '../../src/store/wide.js'

const policy = (max: number) =>
  buildPolicy('r', [{ per: 'network', windowMs: 60_000, kind: 'distinctRecords', max, action: 'log' }], false)
    .parts![0]!.policy
const queueLength = (log: WideLog) => (log as unknown as { qt: Float64Array }).qt.length

function touch(log: WideLog, id: string, now: number): number[] {
  const counts = [0]
  log.decide([id], now, true, undefined, counts, null)
  log.commit([id])
  return counts
}

describe('a wide log’s queue', () => {
  it('stays within about four times the records held, however often they are touched again', () => {
    const log = new WideLog(policy(100_000))
    let now = 1_000
    for (let i = 0; i < 300_000; i++) {
      const counts = touch(log, `r${(i * 7919) % 5_000}`, (now += i % 7 === 0 ? 1 : 0))
      expect(counts[0]).toBe(Math.min(i + 1, 5_000))
    }
    expect(log.records).toBe(5_000)
    expect(queueLength(log)).toBeLessThanOrEqual(4 * 5_000 + 16)
  })

  it('shrinks when its records have left the window', () => {
    const log = new WideLog(policy(100_000))
    for (let i = 0; i < 50_000; i++) touch(log, `r${i}`, 1_000 + i)
    const large = queueLength(log)
    // Past the window everything is dropped; a few new touches follow.
    for (let i = 0; i < 20_000; i++) touch(log, `s${i % 10}`, 200_000 + i)
    expect(log.records).toBe(10)
    expect(queueLength(log)).toBeLessThan(large / 8)
  })
})
