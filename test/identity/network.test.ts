// networkOf: the client network per-network limits count under, remembered per address.
import { describe, expect, it } from 'vitest'
import { networkOf, networksHeld, NETWORKS_HELD } from '../../src/identity/ip.js'

describe('networkOf', () => {
  it('answers the same, remembered or not, for each prefix length asked', () => {
    for (let round = 0; round < 2; round++) {
      expect(networkOf('203.0.113.77')).toBe('203.0.113.0/24')
      expect(networkOf('203.0.113.77', 16)).toBe('203.0.0.0/16')
      expect(networkOf('::ffff:198.51.100.9')).toBe('198.51.100.0/24')
      expect(networkOf('2001:db8:1234:5678::1')).toBe('2001:db8:1234::/48')
      expect(networkOf('2001:db8:1234:5678::1', 24, 64)).toBe('2001:db8:1234:5678::/64')
      expect(networkOf('not an address')).toBe('not an address')
    }
  })

  it('stays bounded however many addresses (and prefix lengths) an attacker mints', () => {
    for (let i = 0; i < 50_000; i++) {
      const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
      expect(networkOf(address)).toBe(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.0/24`)
      networkOf(`2001:db8::${i.toString(16)}`, 24, 48)
      networkOf(address, 8 + (i % 20), 48)
    }
    // At most a few tables (prefix-length pairs), each emptied when full.
    expect(networksHeld()).toBeLessThanOrEqual(4 * NETWORKS_HELD)
    // Anything longer than an address is answered, never kept.
    const before = networksHeld()
    for (let i = 0; i < 1000; i++) networkOf(`${'x'.repeat(100)}${i}`)
    expect(networksHeld()).toBe(before)
  })
})
