// Real clients nobody here wrote, against the demo's server-rendered portal (examples/demo.yaml
// in front of the bundled app): `wget --mirror` and httrack save every contact page and list
// row straight from the app, and at most what the limits allow through sluice.
import { execFile, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLegacyApp, type LegacyApp } from '../../src/demo/legacy-app.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'

const DEMO = readFileSync(join(import.meta.dirname, '../../examples/demo.yaml'), 'utf8').replace(
  'http://127.0.0.1:3000',
  'UPSTREAM',
)
const CONTACTS = 200
const has = (cmd: string) => spawnSync(cmd, ['--version'], { encoding: 'utf8' }).status === 0
const strict = process.env.CI !== undefined // CI installs both: a missing crawler there is a failure, not a skip

let app: LegacyApp
let proxy: RunningProxy
const dir = mkdtempSync(join(tmpdir(), 'sluice-crawl-'))

beforeAll(async () => {
  app = await startLegacyApp({ contacts: CONTACTS })
  proxy = await startProxy(DEMO, { upstream: app.url })
})
afterAll(async () => {
  await proxy?.close()
  await app?.close()
  rmSync(dir, { recursive: true, force: true })
})

/** Log in through `base` as `user` (a form POST, as a browser does): the session cookie. */
async function login(base: string, user: string): Promise<string> {
  const res = await fetch(`${base}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `username=${user}&password=${user}-pw`,
    redirect: 'manual',
  })
  const cookie = /JSESSIONID=([0-9a-f]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1]
  if (!cookie) throw new Error(`login as ${user} failed: ${res.status}`)
  return cookie
}

/** Every file under `root`, recursively. */
function files(root: string): string[] {
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .map((f) => join(root, f))
    .filter((f) => statSync(f).isFile())
}

/** What a mirror saved: distinct contact pages, and distinct rows in saved list pages. */
function saved(root: string): { contactPages: number; listRows: number } {
  const contacts = new Set<string>()
  const rows = new Set<string>()
  for (const f of files(root)) {
    const text = readFileSync(f, 'utf8')
    const contact = /<dl class="contact" data-id="(\d+)"/.exec(text)
    if (contact) contacts.add(contact[1] as string)
    if (text.includes('table class="results"'))
      for (const m of text.matchAll(/<tr data-id="(\d+)"/g)) rows.add(m[1] as string)
  }
  return { contactPages: contacts.size, listRows: rows.size }
}

/** Run a crawler without blocking this process (the app and sluice answer it from here). */
function run(cmd: string, args: string[], cwd: string, timeout: number): Promise<{ status: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout, maxBuffer: 16 * 1024 * 1024 }, (err, _stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ status: code, stderr })
    })
  })
}

async function wget(base: string, cookie: string, out: string): Promise<void> {
  const done = await run(
    'wget',
    [
      '--mirror',
      '--no-parent',
      '-e',
      'robots=off',
      '--tries=1',
      '--timeout=10',
      '--no-verbose',
      '--header',
      `Cookie: JSESSIONID=${cookie}`,
      '-P',
      out,
      `${base}/addressbook/list.do`,
    ],
    dir,
    120_000,
  )
  // wget exits 8 when some request was refused (the 429s): that is the point, not a failure.
  if (done.status !== 0 && done.status !== 8) throw new Error(`wget exited ${done.status}: ${done.stderr.slice(-500)}`)
}

async function httrack(base: string, cookie: string, out: string): Promise<void> {
  // The session as an extra header line (-%X); no robots.txt, none of its own pacing (its default is
  // one request a second here) and links up to 30 deep (the pager is a chain).
  const done = await run(
    'httrack',
    [
      `${base}/addressbook/list.do`,
      ...[
        '-O',
        out,
        '-q',
        '-s0',
        '-r30',
        '-T10',
        '-R1',
        '-c4',
        '-%v0',
        '-I0',
        '-n',
        '-A999999999',
        '--connection-per-second=0',
        '--disable-security-limits',
      ],
      ...['-%X', `Cookie: JSESSIONID=${cookie}`],
    ],
    out,
    180_000,
  )
  if (done.status !== 0) throw new Error(`httrack exited ${done.status}: ${done.stderr.slice(-500)}`)
}

describe.skipIf(!strict && !has('wget'))('wget --mirror', () => {
  it('saves every contact straight from the app, and through sluice no more than the limits allow', async () => {
    const direct = join(dir, 'wget-direct')
    await wget(app.url, await login(app.url, 'alice'), direct)
    expect(saved(direct)).toEqual({ contactPages: CONTACTS, listRows: CONTACTS })

    const guarded = join(dir, 'wget-sluice')
    await wget(proxy.url, await login(proxy.url, 'mallory'), guarded)
    const got = saved(guarded)
    console.log(`${guarded}: ${JSON.stringify(got)}`)
    expect(got.contactPages).toBeLessThanOrEqual(30) // book-contact: 30 distinct in 10 minutes
    expect(got.contactPages).toBeGreaterThan(0)
    expect(got.listRows).toBeLessThanOrEqual(100) // book-list: 100 distinct rows in 10 minutes
    expect(got.listRows).toBeGreaterThan(0)
  }, 240_000)
})

describe.skipIf(!strict && !has('httrack'))('httrack', () => {
  it('mirrors every contact straight from the app, and through sluice no more than the limits allow', async () => {
    const direct = join(dir, 'httrack-direct')
    await httrack(app.url, await login(app.url, 'bob'), mkdir(direct))
    expect(saved(direct)).toEqual({ contactPages: CONTACTS, listRows: CONTACTS })

    const guarded = join(dir, 'httrack-sluice')
    await httrack(proxy.url, await login(proxy.url, 'trudy'), mkdir(guarded))
    const got = saved(guarded)
    console.log(`${guarded}: ${JSON.stringify(got)}`)
    expect(got.contactPages).toBeLessThanOrEqual(30)
    expect(got.listRows).toBeLessThanOrEqual(100)
    expect(got.listRows).toBeGreaterThan(0)
  }, 360_000)
})

function mkdir(path: string): string {
  spawnSync('mkdir', ['-p', path])
  return path
}
