// UpstreamBody: an upstream answer's body pushed by undici's dispatch handler, read with
// readCapped's rules or sent on as a stream. The order of chunks, undici's pause and resume,
// and every way a body ends (whole, past the cap, busy, refused by the extractor, broken,
// destroyed) — before the reader starts and while it reads.
import { text } from 'node:stream/consumers'
import { describe, expect, it } from 'vitest'
import { BrokenBodyError } from '../../src/errors.js'
import { UninspectableError } from '../../src/records/body.js'
import { UpstreamBody } from '../../src/proxy/upstream-body.js'

/** A body with undici's controls counted. */
function body(): { b: UpstreamBody; resumed: () => number; aborted: () => number } {
  const b = new UpstreamBody()
  let resumed = 0
  let aborted = 0
  b.resumeUpstream = () => void resumed++
  b.abortUpstream = () => void aborted++
  return { b, resumed: () => resumed, aborted: () => aborted }
}

const buf = (s: string) => Buffer.from(s)

describe('UpstreamBody', () => {
  it('reads chunks that came before the reader, then the rest, in order, feeding each as it is held', async () => {
    const { b } = body()
    expect(b.push(buf('ab'))).toBe(true)
    expect(b.push(buf('cd'))).toBe(true)
    const fed: string[] = []
    const reading = b.readCapped(100, undefined, undefined, (c) => void fed.push(c.toString()))
    expect(b.push(buf('ef'))).toBe(true)
    b.end()
    const r = await reading
    expect(r.complete && r.body.toString()).toBe('abcdef')
    expect(fed).toEqual(['ab', 'cd', 'ef'])
  })

  it('a body that ended before the reader came is read whole at once', async () => {
    const { b } = body()
    b.push(buf('hello'))
    b.end()
    const r = await b.readCapped(100, 5)
    expect(r.complete && r.body.toString()).toBe('hello')
  })

  it('asks undici to pause when too much arrives before the reader, and to resume when it starts', async () => {
    const { b, resumed } = body()
    expect(b.push(Buffer.alloc(40_000))).toBe(true)
    expect(b.push(Buffer.alloc(40_000))).toBe(false) // 80 KB held for nobody: pause
    const reading = b.readCapped(1_000_000, undefined)
    expect(resumed()).toBe(1)
    b.end()
    const r = await reading
    expect(r.complete && r.body.length).toBe(80_000)
  })

  it('past the cap: stops, pauses undici, and rest() streams every byte, held and unread, in order', async () => {
    const { b, resumed } = body()
    b.push(buf('aaaa'))
    b.push(buf('bbbb')) // past a cap of 6 while the reader catches up
    b.push(buf('cccc')) // not read: stays for rest()
    const r = await b.readCapped(6, undefined)
    expect(r.complete).toBe(false)
    if (r.complete) return
    expect(r.head.map(String)).toEqual(['aaaa', 'bbbb'])
    const rest = r.rest()
    const all = text(rest)
    await new Promise((resolve) => setImmediate(resolve))
    expect(resumed()).toBeGreaterThan(0) // read: the stream asked undici for more
    expect(b.push(buf('dddd'))).toBe(true)
    b.end()
    expect(await all).toBe('aaaabbbbccccdddd')
  })

  it('past the cap while reading: undici is told to pause (push returns false)', async () => {
    const { b } = body()
    const reading = b.readCapped(6, undefined)
    expect(b.push(buf('aaaa'))).toBe(true)
    expect(b.push(buf('bbbb'))).toBe(false)
    const r = await reading
    expect(!r.complete && r.head.map(String)).toEqual(['aaaa', 'bbbb'])
  })

  it('busy: the budget refuses the declared length, nothing is read, and rest() still has it all', async () => {
    const { b } = body()
    b.push(buf('xyz'))
    const r = await b.readCapped(100, 3, () => false)
    expect(r).toMatchObject({ complete: false, busy: true, head: [] })
    b.end()
    if (!r.complete) expect(await text(r.rest())).toBe('xyz')
  })

  it('an extractor that refuses a chunk stops the reading with its reason (uninspectable)', async () => {
    const { b } = body()
    const reading = b.readCapped(100, undefined, undefined, (c) => {
      if (c.toString() === 'bad') throw new UninspectableError('not JSON')
    })
    b.push(buf('ok'))
    expect(b.push(buf('bad'))).toBe(false)
    const r = await reading
    expect(r).toMatchObject({ complete: false, problem: 'not JSON' })
  })

  it('another error of the extractor rejects the reading as it is', async () => {
    const { b } = body()
    b.push(buf('x'))
    await expect(
      b.readCapped(100, undefined, undefined, () => {
        throw new TypeError('bug')
      }),
    ).rejects.toThrow(TypeError)
  })

  it('a body that breaks off is a BrokenBodyError, before or while it is read', async () => {
    const early = body().b
    early.push(buf('ab'))
    early.fail(new Error('socket hang up'))
    await expect(early.readCapped(100, undefined)).rejects.toBeInstanceOf(BrokenBodyError)
    const late = body().b
    const reading = late.readCapped(100, undefined)
    late.push(buf('ab'))
    late.fail(new Error('body timeout'))
    await expect(reading).rejects.toBeInstanceOf(BrokenBodyError)
  })

  it('a body sent on unread is an ordinary stream; its error reaches the stream', async () => {
    const { b } = body()
    b.push(buf('404 page'))
    b.end()
    expect(await text(b.stream())).toBe('404 page')
    const broken = body().b
    const s = broken.stream()
    broken.push(buf('par'))
    broken.fail(new Error('socket hang up'))
    await expect(text(s)).rejects.toThrow('socket hang up')
  })

  it('destroyed before its end, it aborts the upstream request once; after its end, never', async () => {
    const open = body()
    open.b.push(buf('a'))
    open.b.destroy()
    open.b.destroy()
    expect(open.aborted()).toBe(1)
    expect(open.b.push(buf('b'))).toBe(false)
    await expect(open.b.readCapped(100, undefined)).rejects.toBeInstanceOf(BrokenBodyError)

    const streamed = body()
    const s = streamed.b.stream()
    s.destroy() // the client went away mid-answer
    expect(streamed.aborted()).toBe(1)

    const whole = body()
    whole.b.push(buf('a'))
    whole.b.end()
    await whole.b.readCapped(100, undefined)
    whole.b.destroy()
    expect(whole.aborted()).toBe(0)
  })
})
