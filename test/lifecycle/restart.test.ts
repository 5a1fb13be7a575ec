// State that survives a restart (store.state), as an operator runs sluice (the built bin): a
// disabled account stays disabled and counts continue exactly across SIGTERM and kill -9; a
// damaged, foreign or unreadable state file is moved aside and logged (or refused); a snapshot
// of a large store under load fails no request.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import autocannon from 'autocannon'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/index.js'
import { Engine } from '../../src/engine/engine.js'
import { MemoryStore } from '../../src/store/memory.js'
import { writeState } from '../../src/store/state.js'
import { basic } from '../helpers/http.js'
import { freePort } from '../helpers/redis.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const BIN = join(import.meta.dirname, '../../bin/sluice.js')
const TOKEN = 'restart-admin-token-0123456789'
let dir: string
let upstream: Upstream
let child: ChildProcess | undefined
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-restart-'))
  upstream = await startUpstream()
})
afterAll(async () => {
  await upstream.close()
  rmSync(dir, { recursive: true, force: true })
})
afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL')
    await new Promise((r) => child?.once('exit', r))
  }
  child = undefined
})

let files = 0
/** A config file whose state lives at `state` (none: no store.state). */
function configFile(state: string | null, options: { every?: string; extra?: string; admin?: number } = {}): string {
  const file = join(dir, `sluice-${++files}.yaml`)
  const stateLine = state ? `, state: { path: ${state}, every: ${options.every ?? '1s'}${options.extra ?? ''} }` : ''
  writeFileSync(
    file,
    `version: 1
listen: { host: 127.0.0.1, port: 0 }
upstream: { url: ${upstream.url} }
identity: [{ type: basic }]
store: { type: memory, maxAccounts: 100000${stateLine} }
actions: { disable: { duration: forever } }
${options.admin ? `admin: { listen: { host: 127.0.0.1, port: ${options.admin} }, token: ${TOKEN} }\n` : ''}routes:
  - name: contact
    path: /api/contacts/:id
    records: { param: id }
    limits: [ { window: 1h, distinctRecords: 10, action: throttle } ]
  - name: export
    path: /api/export/:id
    records: { param: id }
    limits: [ { window: 1h, distinctRecords: 3, action: disable } ]
`,
  )
  return file
}

interface Running {
  url: string
  out: () => string
  exited: Promise<number | null>
}

async function start(file: string, env: Record<string, string> = {}): Promise<Running> {
  const proc = spawn(process.execPath, [BIN, 'start', '-c', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  })
  child = proc
  let out = ''
  proc.stdout?.on('data', (c) => (out += String(c)))
  proc.stderr?.on('data', (c) => (out += String(c)))
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not started: ${out}`)), 30_000)
    const look = () => {
      const m = /sluice listening on (http:\/\/[^"\s]+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(m[1] as string)
      } else if (proc.exitCode !== null) {
        clearTimeout(timer)
        reject(new Error(`exited ${proc.exitCode}: ${out}`))
      } else setTimeout(look, 20)
    }
    look()
  })
  return { url, out: () => out, exited }
}

async function stop(run: Running, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  child?.kill(signal)
  return run.exited
}

const status = (url: string, path: string, user: string) =>
  fetch(url + path, { headers: basic(user) }).then(async (r) => (await r.arrayBuffer(), r.status))

async function statuses(url: string, user: string, paths: string[]): Promise<number[]> {
  const out: number[] = []
  for (const p of paths) out.push(await status(url, p, user))
  return out
}
const contacts = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `/api/contacts/${from + i}`)

async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (check()) return
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** Two snapshots completed after this moment: the second one began after it. */
async function snapshotAfter(path: string, since: number): Promise<void> {
  const seen = new Set<number>()
  await until(() => {
    if (existsSync(path) && statSync(path).mtimeMs > since) seen.add(statSync(path).mtimeMs)
    return seen.size >= 2
  }, 'two snapshots')
}

/** Section heads of a state file: where each starts, its tag and payload length. */
function sections(bytes: Buffer): { tag: string; at: number; length: number }[] {
  const out = []
  for (let at = 32; at + 16 <= bytes.length;) {
    const length = bytes.readUInt32LE(at + 4)
    out.push({ tag: bytes.toString('latin1', at, at + 4), at, length })
    at += 16 + length + ((4 - (length & 3)) & 3)
  }
  return out
}

const asideOf = (path: string) => readdirSync(dir).filter((f) => f.startsWith(`${path.split('/').at(-1)}.corrupt-`))

describe('state that survives a restart', () => {
  it('SIGTERM, restart: a disabled account is still refused, a forever disable survives every restart, an enumerator gets exactly its remaining budget', async () => {
    const state = join(dir, 'graceful')
    const file = configFile(state)
    let run = await start(file)
    expect(run.out()).toContain(`no state file at ${state} yet`)
    // mallory walks the export: the 4th record disables her, forever.
    expect(
      await statuses(run.url, 'mallory', ['/api/export/1', '/api/export/2', '/api/export/3', '/api/export/4']),
    ).toEqual([200, 200, 200, 403])
    // bob reads 6 of his 10 contacts.
    expect(await statuses(run.url, 'bob', contacts(1, 6))).toEqual(Array(6).fill(200))
    expect(await stop(run)).toBe(0)
    expect(run.out()).toMatch(/"outcome":"saved".*state saved to/)

    run = await start(file)
    expect(run.out()).toMatch(/state restored from .*: \d+ accounts, 1 disables/)
    expect(await status(run.url, '/api/export/5', 'mallory')).toBe(403)
    expect(await status(run.url, '/api/contacts/1', 'mallory')).toBe(403)
    // bob: what he read is free to read again, 4 new contacts, then throttled.
    expect(await statuses(run.url, 'bob', ['/api/contacts/1', '/api/contacts/6', ...contacts(7, 11)])).toEqual([
      200, 200, 200, 200, 200, 200, 429,
    ])
    expect(await status(run.url, '/api/contacts/1', 'alice')).toBe(200)
    expect(await stop(run)).toBe(0)

    for (let i = 0; i < 2; i++) {
      run = await start(file)
      expect(await status(run.url, '/api/contacts/1', 'mallory')).toBe(403)
      expect(await status(run.url, '/api/contacts/12', 'bob')).toBe(429)
      expect(await stop(run, i === 0 ? 'SIGINT' : 'SIGTERM')).toBe(0)
    }
  }, 60_000)

  it('SIGHUP keeps working: new limits apply to the counts so far; a changed state config is refused (restart for it)', async () => {
    const state = join(dir, 'reloaded')
    const file = configFile(state)
    const run = await start(file)
    expect(await statuses(run.url, 'bob', contacts(1, 6))).toEqual(Array(6).fill(200))
    writeFileSync(file, readFileSync(file, 'utf8').replace('distinctRecords: 10,', 'distinctRecords: 8,'))
    child!.kill('SIGHUP')
    await until(() => run.out().includes('"outcome":"applied"'), 'the reload')
    expect(await statuses(run.url, 'bob', contacts(7, 9))).toEqual([200, 200, 429])
    writeFileSync(file, readFileSync(file, 'utf8').replace('every: 1s', 'every: 5s'))
    child!.kill('SIGHUP')
    await until(() => run.out().includes('changing the store needs a restart'), 'the refusal')
    expect(await status(run.url, '/api/contacts/1', 'bob')).toBe(200)
    expect(await stop(run)).toBe(0)
  }, 60_000)

  it('kill -9 after a snapshot: the restart has the snapshot (at most `every` of counting lost)', async () => {
    const state = join(dir, 'killed')
    const file = configFile(state)
    let run = await start(file)
    expect(await statuses(run.url, 'carol', contacts(1, 4))).toEqual(Array(4).fill(200))
    expect(
      await statuses(run.url, 'mallory', ['/api/export/1', '/api/export/2', '/api/export/3', '/api/export/4']),
    ).toEqual([200, 200, 200, 403])
    await snapshotAfter(state, Date.now())
    expect(await stop(run, 'SIGKILL')).toBe(null)

    run = await start(file)
    expect(await status(run.url, '/api/contacts/1', 'mallory')).toBe(403)
    expect(await statuses(run.url, 'carol', contacts(5, 11))).toEqual([200, 200, 200, 200, 200, 200, 429])
  }, 60_000)

  it('a corrupted windows section: moved aside, logged, counted; the disables verify on their own and hold', async () => {
    const state = join(dir, 'corrupted')
    const port = await freePort()
    const file = configFile(state, { admin: port })
    let run = await start(file)
    expect(
      await statuses(run.url, 'mallory', ['/api/export/1', '/api/export/2', '/api/export/3', '/api/export/4']),
    ).toEqual([200, 200, 200, 403])
    expect(await statuses(run.url, 'bob', contacts(1, 10))).toEqual(Array(10).fill(200))
    expect(await stop(run)).toBe(0)

    const bytes = readFileSync(state)
    const wind = sections(bytes).find((s) => s.tag === 'WIND') as { at: number; length: number }
    const at = wind.at + 16 + wind.length - 8
    bytes[at] = (bytes[at] as number) ^ 0xff
    writeFileSync(state, bytes)

    run = await start(file)
    await until(() => /admin listening/.test(run.out()), 'the admin listener')
    expect(run.out()).toMatch(
      /"level":50.*"outcome":"corrupt".*does not verify \(section WIND at byte \d+ does not verify/,
    )
    expect(asideOf(state)).toHaveLength(1)
    expect(await status(run.url, '/api/export/5', 'mallory')).toBe(403)
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    }).then((r) => r.text())
    expect(metrics).toMatch(/^sluice_state_corrupt_total 1$/m)
    // The next snapshot writes a whole file again.
    await snapshotAfter(state, Date.now())
    const after = await fetch(`http://127.0.0.1:${port}/metrics`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    }).then((r) => r.text())
    expect(after).toMatch(/^sluice_state_writes_total\{outcome="ok"\} [1-9]/m)
    expect(after).toMatch(/^sluice_state_last_write_timestamp_seconds \d/m)
  }, 60_000)

  it('a truncated file: what verified is restored, the rest is reported', async () => {
    const state = join(dir, 'truncated')
    const file = configFile(state)
    let run = await start(file)
    expect(
      await statuses(run.url, 'mallory', ['/api/export/1', '/api/export/2', '/api/export/3', '/api/export/4']),
    ).toEqual([200, 200, 200, 403])
    expect(await stop(run)).toBe(0)
    truncateSync(state, statSync(state).size - 20)

    run = await start(file)
    expect(run.out()).toMatch(/"outcome":"corrupt".*(truncated|no end marker)/)
    expect(asideOf(state)).toHaveLength(1)
    expect(await status(run.url, '/api/export/5', 'mallory')).toBe(403)
  }, 60_000)

  it('a file from a future version: moved aside and started empty, loudly; with onCorrupt: refuse, not started', async () => {
    const state = join(dir, 'future')
    let run = await start(configFile(state))
    expect(await status(run.url, '/api/contacts/1', 'bob')).toBe(200)
    expect(await stop(run)).toBe(0)
    const bytes = readFileSync(state)
    bytes.writeUInt32LE(2, 8)
    bytes.writeUInt32LE(2, 12)
    bytes.writeUInt32LE(crc32(bytes.subarray(0, 28)), 28)
    writeFileSync(state, bytes)

    const refused = spawnSync(
      process.execPath,
      [BIN, 'start', '-c', configFile(state, { extra: ', onCorrupt: refuse' })],
      {
        encoding: 'utf8',
        timeout: 20_000,
      },
    )
    expect(refused.status).toBe(1)
    expect(refused.stderr).toMatch(
      /written by a newer sluice \(state format 2.*not started.*\(SLUICE_ERR_STATE_CORRUPT\)/,
    )
    expect(readFileSync(state).equals(bytes)).toBe(true)

    run = await start(configFile(state))
    expect(run.out()).toMatch(/"outcome":"corrupt".*written by a newer sluice/)
    expect(asideOf(state)).toHaveLength(1)
  }, 60_000)

  it('an unreadable state path is moved aside (or refused); a missing directory refuses to start', async () => {
    const state = join(dir, 'unreadable')
    mkdirSync(state)
    writeFileSync(join(state, 'inside'), 'x')
    const refused = spawnSync(
      process.execPath,
      [BIN, 'start', '-c', configFile(state, { extra: ', onCorrupt: refuse' })],
      {
        encoding: 'utf8',
        timeout: 20_000,
      },
    )
    expect(refused.status).toBe(1)
    expect(refused.stderr).toMatch(/cannot be read \(.*EISDIR.*SLUICE_ERR_STATE_CORRUPT/)

    const run = await start(configFile(state))
    expect(run.out()).toMatch(/"outcome":"corrupt".*cannot be read/)
    expect(asideOf(state)).toHaveLength(1)
    expect(await status(run.url, '/api/contacts/1', 'bob')).toBe(200)
    await snapshotAfter(state, Date.now())
    expect(await stop(run)).toBe(0)

    const missing = spawnSync(process.execPath, [BIN, 'start', '-c', configFile(join(dir, 'nowhere', 'state'))], {
      encoding: 'utf8',
      timeout: 20_000,
    })
    expect(missing.status).toBe(1)
    expect(missing.stderr).toMatch(/store\.state\.path .*nowhere.* does not exist.*\(SLUICE_ERR_STATE_PATH\)/)
  }, 60_000)

  it('without state, start and check say once that counts and disables do not survive, and name the remedies', async () => {
    const file = configFile(null)
    const run = await start(file)
    const said = run.out().match(/do not survive|kept in this process only/g) ?? []
    expect(said).toHaveLength(1)
    expect(run.out()).toMatch(/a restart .* forgets them.*store\.state.*Redis store/)
    expect(await stop(run)).toBe(0)

    const check = spawnSync(process.execPath, [BIN, 'check', '-c', file], { encoding: 'utf8' })
    expect(check.status).toBe(0)
    expect(check.stdout).toMatch(/note {6}counts and disables are kept in this process only.*store\.state.*Redis store/)
    expect(check.stdout.match(/kept in this process only/g)).toHaveLength(1)

    const kept = spawnSync(process.execPath, [BIN, 'check', '-c', configFile(join(dir, 'checked'))], {
      encoding: 'utf8',
    })
    expect(kept.stdout).toMatch(/state file .*checked, written every 1s and on stop/)
    expect(kept.stdout).not.toMatch(/kept in this process only/)
    const nowhere = spawnSync(process.execPath, [BIN, 'check', '-c', configFile('/nonexistent-dir/state')], {
      encoding: 'utf8',
    })
    expect(nowhere.status).toBe(0)
    expect(nowhere.stderr).toMatch(
      /warning: store\.state\.path \/nonexistent-dir\/state: the directory \/nonexistent-dir does not exist; sluice start would refuse/,
    )
  }, 60_000)
})

describe('a snapshot under load', () => {
  it('50,000 accounts × 3 routes written every second while 20 connections hit it: no request fails', async () => {
    const state = join(dir, 'load')
    const port = await freePort()
    const file = configFile(state, { admin: port })
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace('version: 1\n', 'version: 1\nlog: { level: debug }\n') + LOAD_ROUTE,
    )
    // A store of 50,000 accounts with full windows on three routes, written as sluice would.
    const config = await loadConfig(file)
    const store = new MemoryStore({ maxAccounts: 100_000 })
    const engine = new Engine(store, { disableForMs: 60_000 })
    let now = Date.now() - 60_000
    for (let a = 0; a < 50_000; a++)
      for (const route of config.routes)
        for (let i = 0; i < 11; i++)
          engine.observe(`basic:filler-${a}#0`, route.policy, i < 10 ? [`${a}-${i}`] : [], now++)
    const written = await writeState(store, state)
    await store.close()

    const run = await start(file)
    expect(run.out()).toMatch(/state restored .*: 50000 accounts/)
    const metricsText = () =>
      fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } }).then((r) => r.text())
    await until(() => /admin listening/.test(run.out()), 'the admin listener')
    await metricsText() // resets the event-loop lag histogram
    let n = 0
    const result = await autocannon({
      url: run.url,
      connections: 20,
      duration: 4,
      requests: [
        {
          method: 'GET',
          setupRequest: (req) => ({
            ...req,
            path: `/api/contacts/${n % 5}`,
            headers: { ...req.headers, ...basic(`load-${n++ % 200}`) },
          }),
        },
      ],
    })
    const metrics = await metricsText()
    expect(result.errors).toBe(0)
    expect(result.non2xx).toBe(0)
    // A load during the snapshots, not a speed: the machine may be busy.
    expect(result.requests.total).toBeGreaterThan(50)
    const snapshots = [...run.out().matchAll(/"outcome":"written".*?"longestSliceMs":([\d.]+)/g)].map((m) =>
      Number(m[1]),
    )
    expect(snapshots.length).toBeGreaterThanOrEqual(2)
    const lag = /^sluice_process_nodejs_eventloop_lag_max_seconds ([\d.e-]+)$/m.exec(metrics)?.[1]
    // Reported, not asserted: timings depend on the machine.
    console.log(
      `snapshot under load: ${(written.bytes / 2 ** 20).toFixed(1)} MiB, ${snapshots.length} snapshots during ${result.requests.total} requests ` +
        `(${Math.round(result.requests.average)}/s, p99 ${result.latency.p99} ms), longest snapshot slice ${Math.max(...snapshots)} ms, ` +
        `event-loop lag max ${lag === undefined ? '?' : (Number(lag) * 1000).toFixed(1)} ms`,
    )
    expect(await stop(run)).toBe(0)
  }, 90_000)
})

const LOAD_ROUTE = `  - name: invoice
    path: /api/invoices/:id
    records: { param: id }
    limits: [ { window: 1h, distinctRecords: 10, action: throttle } ]
`
