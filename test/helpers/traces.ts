// Random traces for the property tests: small windows and pools so that limits, re-reads and
// exact window edges are hit often.
import fc from 'fast-check'
import type { ActionName } from '../../src/engine/policy.js'

const windowArb = fc.constantFrom(10, 50, 100, 250)

export const limitArb = fc.record({
  kind: fc.constantFrom('requests' as const, 'distinctRecords' as const),
  windowMs: windowArb,
  max: fc.integer({ min: 1, max: 6 }),
  action: fc.constantFrom<ActionName>('log', 'throttle', 'challenge', 'disable'),
})

export const stepArb = fc.record({
  // Gaps include 0 (same millisecond) and exact window lengths (edges).
  gap: fc.oneof(fc.integer({ min: 0, max: 30 }), windowArb),
  records: fc.array(fc.integer({ min: 1, max: 12 }).map(String), { maxLength: 3 }),
  shadow: fc.boolean(),
  /** The response step of an exchange: records only, the request is not counted again. */
  response: fc.boolean(),
  /** Challenge limits (by index) the request holds a solved pass for. */
  passes: fc.subarray([0, 1, 2, 3]),
})
