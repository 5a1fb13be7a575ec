// The memory store's state file (src/store/state.ts): a restored store decides exactly as the
// one that wrote it would have, in wall-clock time; every kind of damage is reported and never
// throws, and disables verify on their own; writes are atomic and sliced.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { crc32 } from 'node:zlib'
import { afterAll, describe, expect, it } from 'vitest'
import { Engine, type Decision } from '../../src/engine/engine.js'
import { buildPolicy, type RoutePolicy } from '../../src/engine/policy.js'
import { recordSeed, useRecordSeed } from '../../src/engine/windows.js'
import { SluiceError } from '../../src/errors.js'
import { MemoryStore } from '../../src/store/memory.js'
import { readState, StateKeeper, writeState, type StateLog } from '../../src/store/state.js'

const MIN = 60_000
const T0 = Date.UTC(2026, 11, 8, 9, 0, 0)
const dir = mkdtempSync(join(tmpdir(), 'sluice-state-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let n = 0
const fresh = () => join(dir, `state-${++n}`)

const ROUTES = ['contact', 'parcel', 'invoice'].map((name) =>
  buildPolicy(
    name,
    [
      { kind: 'requests', windowMs: MIN, max: 30, action: 'throttle' },
      { kind: 'distinctRecords', windowMs: 10 * MIN, max: 20, action: 'challenge' },
      { kind: 'distinctRecords', windowMs: 60 * MIN, max: 40, action: 'disable' },
    ],
    false,
  ),
)
const route = (i: number) => ROUTES[i % 3] as RoutePolicy
const engineOf = (store: MemoryStore, disableForMs = 15 * MIN) => new Engine(store, { disableForMs })
const see = (e: Engine, account: string, p: RoutePolicy, records: string[], now: number, network = '198.51.100.0/24') =>
  e.observe(account, p, records, now, { overflowKey: () => network }) as Decision
const summary = (d: Decision) => `${d.kind} ${d.account} ${d.counts.join(',')}`

/** A store with tracked and overflow accounts, disables of every kind, bindings, claims and counters. */
function populated(maxAccounts = 40): { store: MemoryStore; engine: Engine; now: number } {
  const store = new MemoryStore({ maxAccounts })
  const engine = engineOf(store)
  let now = T0
  for (let a = 0; a < maxAccounts + 20; a++) {
    // The 20 past maxAccounts overflow into their networks' keys (every tracked window is open).
    for (let i = 0; i < 12; i++)
      see(engine, `user:${a}`, route(a + i), [`r${(a * 7 + i) % 50}`], (now += 1000), `10.0.${a % 3}.0/24`)
  }
  // A scraper disabled for 15 minutes, another forever, a shadow disable.
  for (let i = 0; i < 45; i++) see(engine, 'user:3', route(0), [`x${i}`], (now += 10))
  store.count('pass:abc', 3, 10 * MIN)
  store.claimOnce('solution-1', 10 * MIN)
  store.bindSession('session:s1', 'user:1', 60 * MIN)
  return { store, engine, now }
}

function disableForever(store: MemoryStore, account: string, now: number): void {
  const e = engineOf(store, Infinity)
  const p = buildPolicy('admin-walk', [{ kind: 'distinctRecords', windowMs: MIN, max: 1, action: 'disable' }], false)
  see(e, account, p, ['a'], now)
  see(e, account, p, ['b'], now + 1)
}

/** A pool's keys in the order a snapshot writes them: least recently used first. */
async function order(store: MemoryStore, pool: string): Promise<string[]> {
  const names: string[] = []
  for await (const section of store.exportPool(pool, 1000)) names.push(...section.names)
  return names
}

const lastError = (lines: { level: string; msg: string }[]) => [...lines].reverse().find((l) => l.level === 'error')

async function restored(path: string, maxAccounts = 40): Promise<{ store: MemoryStore; problems: string[] }> {
  const store = new MemoryStore({ maxAccounts })
  const report = await readState(store, path)
  return { store, problems: report.problems }
}

describe('a restored store', () => {
  it('decides exactly as the one that wrote it, on tracked and overflow keys, with disables, bindings, claims and counters', async () => {
    const { store, engine, now } = populated()
    disableForever(store, 'user:9', now)
    const shadow = buildPolicy('shadowed', [{ kind: 'requests', windowMs: MIN, max: 1, action: 'disable' }], true)
    see(engine, 'user:8', shadow, [], now)
    see(engine, 'user:8', shadow, [], now + 1)
    const path = fresh()
    const stats = await writeState(store, path)
    expect(stats.accounts).toBe(store.size)
    expect((await order(store, 'overflow')).length).toBeGreaterThan(0)

    // A new process: another hash seed until the file restores its own.
    const seed = recordSeed()
    useRecordSeed(seed[0] ^ 0xdeadbeef, seed[1] ^ 0x12345678)
    const { store: back, problems } = await restored(path)
    expect(problems).toEqual([])
    expect(recordSeed()).toEqual(seed)
    expect(back.size).toBe(store.size)
    for (const pool of store.poolNames()) expect(await order(back, pool)).toEqual(await order(store, pool))

    // Admin views, disables and the rest.
    const at = now + 5000
    for (const account of ['user:0', 'user:3', 'user:9', 'user:8', 'overflow:10.0.1.0/24', 'user:55'])
      expect(back.account(account, [...ROUTES, shadow], at)).toEqual(store.account(account, [...ROUTES, shadow], at))
    // Restored with what made it (which limit, since when).
    expect(back.disabled('user:9', at + 365 * 24 * 60 * MIN)).toEqual(
      store.disabled('user:9', at + 365 * 24 * 60 * MIN),
    )
    expect(back.disabled('user:9', at + 365 * 24 * 60 * MIN)).toMatchObject([
      { account: 'user:9', until: Infinity, shadow: false },
    ])
    expect(back.disabled('user:8', at).map((d) => d.shadow)).toEqual([true])
    expect(back.held).toEqual(store.held)
    expect(back.sessionAccount('session:s1')).toBe('user:1')
    expect(back.claimOnce('solution-1', 10 * MIN)).toBe(false)
    expect(back.claimOnce('solution-2', 10 * MIN)).toBe(true)
    expect(back.count('pass:abc', 1, 10 * MIN)).toBe(4)

    // The same traffic from here on: the same decisions, re-reads included (the seed came back).
    const other = engineOf(back)
    let t = at
    for (let i = 0; i < 400; i++) {
      const a = (i * 13) % 70
      const records = [`r${(a * 7 + i) % 50}`, ...(i % 5 === 0 ? [`new${i}`] : [])]
      t += 700
      expect(summary(see(other, `user:${a}`, route(i), records, t, `10.0.${a % 3}.0/24`))).toBe(
        summary(see(engine, `user:${a}`, route(i), records, t, `10.0.${a % 3}.0/24`)),
      )
    }
  })

  it('continues in wall-clock time: an event 9 minutes old before a 2-minute restart is 11 minutes old after it', async () => {
    const p = buildPolicy(
      'contact',
      [{ kind: 'distinctRecords', windowMs: 10 * MIN, max: 2, action: 'throttle' }],
      false,
    )
    const store = new MemoryStore({ maxAccounts: 10 })
    const e = engineOf(store)
    see(e, 'alice', p, ['1', '2'], T0)
    const path = fresh()
    await writeState(store, path) // at T0 + 9m, say: the store keeps absolute times
    const snapshotAt = T0 + 9 * MIN

    // Restarted 30 s later: the two records are 9.5 minutes old, a third is one too many.
    const soon = engineOf((await restored(path)).store)
    expect(see(soon, 'alice', p, ['3'], snapshotAt + 30_000).kind).toBe('throttle')
    expect(see(soon, 'alice', p, ['1'], snapshotAt + 30_000).kind).toBe('allow')
    // Restarted 2 minutes later: they are 11 minutes old, out of the window.
    const later = engineOf((await restored(path)).store)
    const d = see(later, 'alice', p, ['3'], snapshotAt + 2 * MIN)
    expect(d.kind).toBe('allow')
    expect(d.counts).toEqual([1])
  })

  it('a restart lower maxAccounts keeps the most recently used', async () => {
    const { store } = populated(40)
    const path = fresh()
    await writeState(store, path)
    const { store: small } = await restored(path, 10)
    expect(await order(small, 'tracked')).toEqual((await order(store, 'tracked')).slice(-10))
  })

  it('a forever disable survives any number of restarts', async () => {
    const store = new MemoryStore({ maxAccounts: 5 })
    disableForever(store, 'mallory', T0)
    let current = store
    for (let i = 0; i < 3; i++) {
      const path = fresh()
      await writeState(current, path)
      current = (await restored(path, 5)).store
    }
    expect(current.disabled('mallory', Date.now() + 1e12)).toMatchObject([
      { account: 'mallory', until: Infinity, shadow: false, limit: expect.stringMatching(/#/) },
    ])
  })
})

describe('a snapshot while the store keeps changing', () => {
  it('has every account: those used during it, and all after a use of the very account the walk paused at', async () => {
    const store = new MemoryStore({ maxAccounts: 3000 })
    const e = engineOf(store)
    let now = T0
    for (let a = 0; a < 2000; a++) see(e, `u${a}`, route(a), [`${a}`], (now += 1))
    const names: string[] = []
    let sections = 0
    for await (const section of store.exportPool('tracked', 300)) {
      names.push(...section.names)
      sections++
      // Between two sections: the account the walk stopped at is used (three times), others
      // not yet written and already written are used, some leave, newcomers arrive.
      const last = section.names.at(-1) as string
      if (sections <= 3) see(e, last, route(0), ['again'], (now += 1))
      see(e, `u${(sections * 37) % 2000}`, route(1), ['x'], (now += 1))
      see(e, `new${sections}`, route(2), ['y'], (now += 1))
      if (sections % 10 === 0) store.reset(`u${1999 - sections}`, { policies: ROUTES })
    }
    const unique = new Set(names)
    expect(unique.size).toBe(names.length)
    const expected = (await order(store, 'tracked')).filter((k) => !k.startsWith('new'))
    expect(expected.filter((k) => !unique.has(k))).toEqual([])
    expect(sections).toBeGreaterThan(50)
  })
})

describe('a damaged state file', () => {
  /** A file with disables and a few windows sections (enough accounts for several). */
  async function written(): Promise<{ path: string; bytes: Buffer; store: MemoryStore }> {
    const store = new MemoryStore({ maxAccounts: 3001 })
    const e = engineOf(store)
    let now = T0
    for (let a = 0; a < 3000; a++)
      for (const p of ROUTES) for (let i = 0; i < 31; i++) see(e, `u${a}`, p, i < 21 ? [`${a}-${i}`] : [], (now += 1))
    disableForever(store, 'mallory', now)
    for (let i = 0; i < 12_000; i++) store.bindSession(`session:${i}`, `u${i % 3000}`, 60 * MIN)
    const path = fresh()
    await writeState(store, path)
    return { path, bytes: readFileSync(path), store }
  }

  /** Where each section starts, by tag. */
  function sections(bytes: Buffer): { tag: string; at: number; length: number }[] {
    const out = []
    for (let at = 32; at < bytes.length;) {
      const length = bytes.readUInt32LE(at + 4)
      out.push({ tag: bytes.toString('latin1', at, at + 4), at, length })
      at += 16 + length + ((4 - (length & 3)) & 3)
    }
    return out
  }

  it('is sectioned: tables, disables and bindings first, then windows a MiB at a time, then the end', async () => {
    const { bytes } = await written()
    const tags = sections(bytes).map((s) => s.tag)
    expect(tags[0]).toBe('META')
    expect(tags.indexOf('ENTS')).toBe(1)
    expect(tags.lastIndexOf('ENTS')).toBeLessThan(tags.indexOf('WIND'))
    expect(tags.filter((t) => t === 'WIND').length).toBeGreaterThan(2)
    expect(tags.at(-1)).toBe('END.')
  })

  it('corrupted windows: the other sections, disables included, are restored; the damage is reported', async () => {
    const { path, bytes, store } = await written()
    const wind = sections(bytes).filter((s) => s.tag === 'WIND')
    const hit = wind[1] as { at: number; length: number }
    const bad = Buffer.from(bytes)
    const at = hit.at + 16 + Math.floor(hit.length / 2)
    bad[at] = (bad[at] as number) ^ 0x55
    writeFileSync(path, bad)
    const { store: back, problems } = await restored(path, 3001)
    expect(problems.join('\n')).toMatch(/section WIND at byte \d+ does not verify/)
    expect(back.disabled('mallory', Date.now())).toHaveLength(1)
    expect(back.sessionAccount('session:11999')).toBe('u2999')
    expect(back.size).toBeGreaterThan(0)
    expect(back.size).toBeLessThan(store.size)
  })

  it('truncated anywhere: never throws, always reported; disables survive every cut past their section', async () => {
    const { path, bytes } = await written()
    const list = sections(bytes)
    const afterDisables = (list[2] as { at: number }).at
    for (const fraction of [0, 0.001, 0.01, 0.05, 0.2, 0.5, 0.9, 0.999]) {
      const cut = Math.floor(bytes.length * fraction)
      writeFileSync(path, bytes.subarray(0, cut))
      const { store: back, problems } = await restored(path, 3001)
      expect(problems.length, `cut at ${cut}`).toBeGreaterThan(0)
      if (cut > afterDisables) expect(back.disabled('mallory', Date.now()), `cut at ${cut}`).toHaveLength(1)
    }
  })

  it('from a future format, not a state file, empty, a directory: reported, nothing restored', async () => {
    const { path, bytes } = await written()
    const future = Buffer.from(bytes)
    future.writeUInt32LE(2, 8)
    future.writeUInt32LE(2, 12)
    future.writeUInt32LE(crc32(future.subarray(0, 28)), 28)
    writeFileSync(path, future)
    let r = await restored(path)
    expect(r.problems).toEqual([expect.stringMatching(/written by a newer sluice \(state format 2/)])
    expect(r.store.held.disabled).toBe(0)

    // A later version that keeps readable-by at 1 only added sections: this one reads it.
    const compatible = Buffer.from(bytes)
    compatible.writeUInt32LE(7, 8)
    compatible.writeUInt32LE(crc32(compatible.subarray(0, 28)), 28)
    writeFileSync(path, compatible)
    expect((await restored(path, 3001)).problems).toEqual([])

    writeFileSync(path, 'version: 1\nlisten: { port: 8080 }\n'.repeat(10))
    expect((await restored(path)).problems).toEqual(['not a sluice state file'])
    writeFileSync(path, '')
    expect((await restored(path)).problems).toEqual(['truncated: 0 bytes, no header'])
    const folder = fresh()
    mkdirSync(folder)
    r = await restored(folder)
    expect(r.problems).toEqual([expect.stringMatching(/cannot be read \(.*EISDIR/)])
    expect((await readState(new MemoryStore({ maxAccounts: 1 }), fresh())).found).toBe(false)
  })

  it('a corrupted section head: what comes after it cannot be located, what came before stays', async () => {
    const { path, bytes } = await written()
    const wind = sections(bytes).filter((s) => s.tag === 'WIND')
    const bad = Buffer.from(bytes)
    const at = (wind[2] as { at: number }).at + 5 // its length
    bad[at] = (bad[at] as number) ^ 1
    writeFileSync(path, bad)
    const { store: back, problems } = await restored(path, 3001)
    expect(problems.join('\n')).toMatch(/section head at byte \d+ is corrupted/)
    expect(back.disabled('mallory', Date.now())).toHaveLength(1)
    expect(back.size).toBeGreaterThan(0)
  })
})

describe('StateKeeper', () => {
  const lines: { level: string; msg: string; obj: object }[] = []
  const log: StateLog = {
    debug: (obj, msg) => void lines.push({ level: 'debug', obj, msg }),
    info: (obj, msg) => void lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => void lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => void lines.push({ level: 'error', obj, msg }),
  }

  it('restores, writes every `every` and on close; a file that does not verify is moved aside, or refused', async () => {
    const path = fresh()
    const store = new MemoryStore({ maxAccounts: 10, keepKeys: true })
    let writes = 0
    await StateKeeper.open(store, { path, everyMs: 30, onCorrupt: 'start', log, onWrite: () => void writes++ })
    expect(lines.at(-1)?.msg).toMatch(/no state file .* yet/)
    const key = await store.sharedKey('identity')
    disableForever(store, 'mallory', T0)
    for (let i = 0; i < 100 && writes < 2; i++) await new Promise((r) => setTimeout(r, 20))
    expect(writes).toBeGreaterThanOrEqual(2)
    await store.close()
    expect(lines.at(-1)?.msg).toMatch(/state saved to .*: 1 accounts/)

    // Restored, with the shared key (Basic fingerprints) it made.
    const again = new MemoryStore({ maxAccounts: 10, keepKeys: true })
    await StateKeeper.open(again, { path, everyMs: 60_000, onCorrupt: 'start', log })
    expect(again.disabled('mallory', Date.now())).toHaveLength(1)
    expect(await again.sharedKey('identity')).toBe(key)
    await again.close()

    // Damaged: refused (the file stays where it is) …
    const bytes = readFileSync(path)
    truncateSync(path, bytes.length - 3)
    let corrupt = 0
    const refused = StateKeeper.open(new MemoryStore({ maxAccounts: 10 }), {
      path,
      everyMs: 60_000,
      onCorrupt: 'refuse',
      log,
      onCorruptFile: () => void corrupt++,
    })
    await expect(refused).rejects.toThrow(SluiceError)
    await expect(refused).rejects.toMatchObject({ code: 'SLUICE_ERR_STATE_CORRUPT' })
    await expect(refused).rejects.toThrow(/does not verify \(truncated.*\); not started/)
    expect(existsSync(path)).toBe(true)
    // … or moved aside, logged, counted, and what verified is kept.
    const third = new MemoryStore({ maxAccounts: 10 })
    await StateKeeper.open(third, {
      path,
      everyMs: 60_000,
      onCorrupt: 'start',
      log,
      onCorruptFile: () => void corrupt++,
    })
    expect(corrupt).toBe(2)
    expect(existsSync(path)).toBe(false)
    const aside = readdirSync(dir).filter((f) => f.startsWith(`${path.split('/').at(-1)}.corrupt-`))
    expect(aside).toHaveLength(1)
    expect(lastError(lines)?.msg).toMatch(
      /does not verify .* moved to .*\.corrupt-.*started with what verified: 1 accounts, 1 disables/,
    )
    expect(third.disabled('mallory', Date.now())).toHaveLength(1)
    await third.close()
  })

  it('refuses a state path whose directory is missing', async () => {
    await expect(
      StateKeeper.open(new MemoryStore({ maxAccounts: 1 }), {
        path: join(dir, 'missing', 'state'),
        everyMs: 1000,
        onCorrupt: 'start',
        log,
      }),
    ).rejects.toMatchObject({ code: 'SLUICE_ERR_STATE_PATH', message: expect.stringMatching(/does not exist/) })
  })

  it('a write that fails leaves the previous snapshot in place (logged, counted)', async () => {
    const path = fresh()
    const store = new MemoryStore({ maxAccounts: 10 })
    disableForever(store, 'mallory', T0)
    const outcomes: boolean[] = []
    const keeper = await StateKeeper.open(store, {
      path,
      everyMs: 60_000,
      onCorrupt: 'start',
      log,
      onWrite: (s) => void outcomes.push(s !== null),
    })
    expect(await keeper.snapshot()).not.toBeNull()
    mkdirSync(`${path}.tmp`) // the temporary file cannot be made
    writeFileSync(join(`${path}.tmp`, 'x'), 'x')
    expect(await keeper.snapshot()).toBeNull()
    expect(outcomes).toEqual([true, false])
    expect(lastError(lines)?.msg).toMatch(/cannot write the state file .*previous snapshot stays/)
    const { problems, store: back } = await restored(path, 10)
    expect(problems).toEqual([])
    expect(back.disabled('mallory', Date.now())).toHaveLength(1)
    rmSync(`${path}.tmp`, { recursive: true })
    await store.close()
  })
})

describe('writing a large store', () => {
  it('mid-write, the file at the path is the previous snapshot, whole; the event loop is never held long', async () => {
    const accounts = 20_000
    const store = new MemoryStore({ maxAccounts: accounts })
    const e = engineOf(store)
    let now = T0
    for (let a = 0; a < accounts; a++)
      for (const p of ROUTES)
        for (let i = 0; i < 31; i++) see(e, `acct-${a}`, p, i < 21 ? [`${a}-${i}`] : [], (now += 1))
    const path = fresh()
    await writeState(store, path)
    const before = readFileSync(path)

    const delay = monitorEventLoopDelay({ resolution: 1 })
    delay.enable()
    let turns = 0
    let done = false
    let sawTmp = false
    const writing = writeState(store, path).finally(() => (done = true))
    let delayMax = 0
    while (!done) {
      turns++
      // Looked at a few times only: reading 30 MiB here would itself hold the event loop.
      if (!sawTmp && existsSync(`${path}.tmp`)) {
        sawTmp = true
        delayMax = delay.max
        expect(readFileSync(path).equals(before)).toBe(true)
        delay.reset()
      }
      await nextTurn()
    }
    const stats = await writing
    delay.disable()
    delayMax = Math.max(delayMax, delay.max)
    expect(sawTmp).toBe(true)
    expect((await restored(path, accounts)).problems).toEqual([])
    // Reported, not asserted: timings depend on the machine.
    console.log(
      `state of ${accounts} accounts × 3 routes: ${(stats.bytes / 2 ** 20).toFixed(1)} MiB in ${Math.round(stats.ms)} ms, ` +
        `longest slice ${stats.longestSliceMs.toFixed(1)} ms, event-loop delay max ${(delayMax / 1e6).toFixed(1)} ms, ${turns} turns`,
    )
  }, 60_000)
})
