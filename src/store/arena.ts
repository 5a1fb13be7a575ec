// A slab arena for the memory store's windows: every account's window data lives in a few
// large Uint32Array chunks instead of small JS objects and arrays.
//
// Why: 100,000 accounts × 3 routes as objects and number arrays cost ~3 KB an account, half of
// it object and array headers, and the garbage collector walks all of it on every major
// collection. Typed-array chunks are external memory: counted in RSS, never walked, and a
// block of 32-bit words holds exactly what the windows need (src/engine/windows.ts).
//
// How: a chunk of 4 MiB is carved, by bumping a pointer, into blocks of size classes (16 to 256
// words in steps of 8, then sixteen steps per doubling: at most 6% of a block is slack, where
// power-of-two classes would waste up to half; 100,000 blocks of 302 words are 1216 bytes each
// instead of 2048). A freed block goes onto its class's free list,
// linked through its own words, and the next allocation of that class takes it back. Blocks
// larger than a quarter chunk get a buffer of their own, dropped when freed. Nothing is ever
// moved: a block keeps its place until freed, and its owner copies it to a larger or smaller
// class when it must grow or shrink (src/store/memory.ts).
//
// A block is addressed by a handle, chunk index × 2^20 + word offset: a small integer, so a
// map of accounts to blocks holds no object per account. Word 0 of every block is the arena's
// (its class, and a mark while free: using or freeing a freed block throws); its owner uses
// words 1 and up. Blocks start at multiples of 8 words, so a Float64Array view of the chunk
// can read an aligned double at any even word of a block.

const CHUNK_BITS = 20
const CHUNK_WORDS = 1 << CHUNK_BITS
const OFFSET_MASK = CHUNK_WORDS - 1
/** Handles are uint32 (`>>>` arithmetic): at most 4096 chunks (16 GiB of regular chunks). */
const MAX_CHUNKS = 4096
const LARGEST_CLASS = CHUNK_WORDS / 4
const FREE_MARK = 0x80000000
/** The class of a block that has a buffer of its own. */
const DEDICATED = 0x7fff
const NONE = -1

/** Words per size class, ascending: 16 to 256 in steps of 8, then sixteen steps per doubling. */
const CLASS_WORDS: number[] = []
for (let w = 16; w <= 256; w += 8) CLASS_WORDS.push(w)
for (let lo = 256; lo < LARGEST_CLASS; lo *= 2) for (let i = 1; i <= 16; i++) CLASS_WORDS.push(lo + (i * lo) / 16)

/** The smallest class holding `words`, or -1 when the block gets a buffer of its own. */
function classOf(words: number): number {
  if (words > LARGEST_CLASS) return -1
  let lo = 0
  let hi = CLASS_WORDS.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if ((CLASS_WORDS[mid] as number) >= words) hi = mid
    else lo = mid + 1
  }
  return lo
}

export interface ArenaStats {
  /** Blocks allocated and not yet freed. */
  blocks: number
  /** Their size, slack included. */
  bytesInUse: number
  /** Freed blocks waiting on free lists for reuse. */
  freeBlocks: number
  /** Memory the arena holds: chunks and dedicated buffers. */
  bytesReserved: number
}

export class Arena {
  /** By chunk index: 4 MiB chunks and dedicated buffers; null where a dedicated buffer was freed. */
  private chunks: (Uint32Array | null)[] = []
  private floats: (Float64Array | null)[] = []
  /** Per class, the first free block's handle (NONE when empty); the next one is in its word 1. */
  private freeHeads: number[] = CLASS_WORDS.map(() => NONE)
  /** Chunk indices of freed dedicated buffers, for reuse. */
  private freeSlots: number[] = []
  /** The chunk being carved, and its first unused word. */
  private current = -1
  private top = CHUNK_WORDS
  private live = 0
  private liveWords = 0
  private freeCount = 0

  /** A block of at least `words` words (word 0 included). Its words 1 and up hold whatever its previous owner left. */
  alloc(words: number): number {
    const c = classOf(words)
    if (c < 0) return this.allocDedicated(words)
    const size = CLASS_WORDS[c] as number
    let h = this.freeHeads[c] as number
    if (h !== NONE) {
      const mem = this.chunks[h >>> CHUNK_BITS] as Uint32Array
      const o = h & OFFSET_MASK
      const next = mem[o + 1] as number
      this.freeHeads[c] = next === 0xffffffff ? NONE : next
      this.freeCount--
    } else {
      if (this.top + size > CHUNK_WORDS) {
        // The rest of the chunk stays unused; it was never written, so it costs no RSS.
        this.current = this.newSlot(new Uint32Array(CHUNK_WORDS))
        this.top = 0
      }
      h = this.current * CHUNK_WORDS + this.top
      this.top += size
    }
    ;(this.chunks[h >>> CHUNK_BITS] as Uint32Array)[h & OFFSET_MASK] = c
    this.live++
    this.liveWords += size
    return h
  }

  free(h: number): void {
    const mem = this.mem(h)
    const o = h & OFFSET_MASK
    const c = mem[o] as number
    this.live--
    if (c === DEDICATED) {
      this.liveWords -= mem.length
      const slot = h >>> CHUNK_BITS
      this.chunks[slot] = null
      this.floats[slot] = null
      this.freeSlots.push(slot)
      return
    }
    this.liveWords -= CLASS_WORDS[c] as number
    mem[o] = c | FREE_MARK
    const head = this.freeHeads[c] as number
    mem[o + 1] = head === NONE ? 0xffffffff : head
    this.freeHeads[c] = h
    this.freeCount++
  }

  /** The chunk holding block `h` (its words start at `offset(h)`). Throws for a freed block. */
  mem(h: number): Uint32Array {
    const mem = this.chunks[h >>> CHUNK_BITS]
    if (!mem || ((mem[h & OFFSET_MASK] as number) & FREE_MARK) !== 0)
      throw new Error(`arena: block ${h} is not allocated`)
    return mem
  }

  offset(h: number): number {
    return h & OFFSET_MASK
  }

  /** A Float64Array over the same chunk: the double at even word `w` of the chunk is at index w / 2. */
  floats64(h: number): Float64Array {
    return this.floats[h >>> CHUNK_BITS] as Float64Array
  }

  /** Words block `h` can hold (word 0 included). */
  capacity(h: number): number {
    const mem = this.mem(h)
    const c = mem[h & OFFSET_MASK] as number
    return c === DEDICATED ? mem.length : (CLASS_WORDS[c] as number)
  }

  /** Whether a block of `words` words would take a smaller class than block `h` has. */
  shrinks(h: number, words: number): boolean {
    const c = classOf(words)
    return c >= 0 && (CLASS_WORDS[c] as number) < this.capacity(h)
  }

  stats(): ArenaStats {
    let reserved = 0
    for (const c of this.chunks) if (c) reserved += c.byteLength
    return { blocks: this.live, bytesInUse: this.liveWords * 4, freeBlocks: this.freeCount, bytesReserved: reserved }
  }

  /** Drop every chunk. Only once every block is freed: a handle held elsewhere would dangle. */
  reset(): void {
    if (this.live !== 0) throw new Error(`arena: reset with ${this.live} blocks in use`)
    this.chunks = []
    this.floats = []
    this.freeHeads = CLASS_WORDS.map(() => NONE)
    this.freeSlots = []
    this.current = -1
    this.top = CHUNK_WORDS
    this.freeCount = 0
  }

  private allocDedicated(words: number): number {
    // Even length, so that the Float64Array view covers every aligned double.
    const mem = new Uint32Array(words + (words & 1))
    mem[0] = DEDICATED
    this.live++
    this.liveWords += mem.length
    return this.newSlot(mem) * CHUNK_WORDS
  }

  private newSlot(mem: Uint32Array): number {
    const slot = this.freeSlots.pop() ?? this.chunks.length
    if (slot >= MAX_CHUNKS) throw new RangeError('arena: out of handles (16 GiB of windows in one process)')
    this.chunks[slot] = mem
    this.floats[slot] = new Float64Array(mem.buffer, mem.byteOffset, mem.length >>> 1)
    return slot
  }
}
