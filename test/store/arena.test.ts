import { describe, expect, it } from 'vitest'
import { Arena } from '../../src/store/arena.js'

describe('arena', () => {
  it('hands out blocks of a size class, and takes freed ones back for the next of that class', () => {
    const arena = new Arena()
    const a = arena.alloc(20)
    const b = arena.alloc(20)
    expect(arena.capacity(a)).toBe(24)
    expect(b).not.toBe(a)
    expect(arena.stats()).toMatchObject({ blocks: 2, bytesInUse: 2 * 24 * 4, freeBlocks: 0 })
    arena.free(a)
    expect(arena.stats()).toMatchObject({ blocks: 1, bytesInUse: 24 * 4, freeBlocks: 1 })
    expect(arena.alloc(100)).not.toBe(a) // another class
    expect(arena.alloc(17)).toBe(a) // the same class: reused
    expect(arena.stats().freeBlocks).toBe(0)
  })

  it('keeps blocks apart: what one owner writes another never sees', () => {
    const arena = new Arena()
    const handles = Array.from({ length: 1000 }, (_, i) => arena.alloc(16 + (i % 300)))
    handles.forEach((h, i) => arena.mem(h).fill(i + 1, arena.offset(h) + 1, arena.offset(h) + arena.capacity(h)))
    handles.forEach((h, i) => {
      const words = arena.mem(h).subarray(arena.offset(h) + 1, arena.offset(h) + arena.capacity(h))
      expect(words.every((w) => w === i + 1)).toBe(true)
    })
  })

  it('refuses a freed block: reading it or freeing it again throws', () => {
    const arena = new Arena()
    const h = arena.alloc(30)
    arena.free(h)
    expect(() => arena.mem(h)).toThrow(/not allocated/)
    expect(() => arena.free(h)).toThrow(/not allocated/)
  })

  it('gives a very large block a buffer of its own, dropped when freed', () => {
    const arena = new Arena()
    const small = arena.alloc(16)
    const reserved = arena.stats().bytesReserved
    const big = arena.alloc(300_001)
    expect(arena.capacity(big)).toBeGreaterThanOrEqual(300_001)
    expect(arena.offset(big)).toBe(0)
    expect(arena.stats().bytesReserved).toBeGreaterThanOrEqual(reserved + 300_001 * 4)
    // Doubles at even words line up with the Float64Array view.
    arena.floats64(big)[1] = Math.PI
    expect(new Float64Array(arena.mem(big).buffer, 8, 1)[0]).toBe(Math.PI)
    arena.free(big)
    expect(arena.stats()).toMatchObject({ blocks: 1, bytesReserved: reserved })
    arena.free(small)
    arena.reset()
    expect(arena.stats()).toEqual({ blocks: 0, bytesInUse: 0, freeBlocks: 0, bytesReserved: 0 })
  })

  it('will not drop its chunks while a block is in use', () => {
    const arena = new Arena()
    arena.alloc(16)
    expect(() => arena.reset()).toThrow(/in use/)
  })
})
