// A million-line gzipped log replays in bounded memory: the built CLI in a child process,
// its peak RSS compared with the same command on a thousand lines. Speed is printed for the
// record, not asserted (the machine is shared).
import { spawn } from 'node:child_process'
import { createReadStream, createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { pathToFileURL } from 'node:url'
import { createGunzip, createGzip } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LARGE_CONFIG } from './fixtures.js'
import { combined, population } from './population.js'

const LINES = 1_000_000
const BIN = join(import.meta.dirname, '../../bin/sluice.js')
const dir = mkdtempSync(join(tmpdir(), 'sluice-replay-large-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** 700 clerks over five working days: about a million lines. */
function* lines(max: number): Generator<string> {
  let batch: string[] = []
  for (const hit of population({ clerks: 700, days: 5, maxLines: max })) {
    batch.push(combined(hit))
    if (batch.length === 2000) {
      yield `${batch.join('\n')}\n`
      batch = []
    }
  }
  if (batch.length > 0) yield `${batch.join('\n')}\n`
}

interface Run {
  code: number | null
  json: { lines: number; requests: number; bad: { count: number }; elapsedMs: number; blocked: { count: number } }
  maxRssMb: number
  wallMs: number
}

/** The CLI in a child; a preloaded module reports the child's peak RSS when it exits. */
function replay(log: string, config: string, rssProbe: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn(
      process.execPath,
      ['--import', pathToFileURL(rssProbe).href, BIN, 'replay', '--config', config, '--json', log],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let out = ''
    let err = ''
    child.stdout.on('data', (c: Buffer) => (out += c))
    child.stderr.on('data', (c: Buffer) => (err += c))
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      const rss = /maxrss=(\d+)/.exec(err)
      if (!rss) return reject(new Error(`no RSS reported (exit ${code}): ${err.slice(0, 500)}`))
      resolve({ code, json: JSON.parse(out), maxRssMb: Number(rss[1]) / 1024, wallMs: performance.now() - started })
    })
  })
}

describe('a large log', () => {
  let big: string
  let small: string
  let config: string
  let probe: string

  beforeAll(async () => {
    config = join(dir, 'sluice.yaml')
    writeFileSync(config, LARGE_CONFIG)
    probe = join(dir, 'rss-probe.mjs')
    // resourceUsage().maxRSS is the kernel's peak for this process, in kilobytes.
    writeFileSync(
      probe,
      "process.on('exit', () => process.stderr.write(`maxrss=${process.resourceUsage().maxRSS}\\n`))\n",
    )
    big = join(dir, 'access.log.gz')
    // Streamed from the generator through gzip to disk: the test never holds the log either.
    await pipeline(Readable.from(lines(LINES)), createGzip({ level: 1 }), createWriteStream(big))
    small = join(dir, 'small.log')
    const head: string[] = []
    for (const chunk of lines(1000)) head.push(chunk)
    writeFileSync(small, head.join(''))
  }, 120_000)

  it(`${LINES.toLocaleString('en-US')} lines replay with RSS growth well under 200 MB`, async () => {
    // Sanity: the file holds what it should (counted streaming, bounded by the file).
    let count = 0
    for await (const _ of createInterface({ input: createReadStream(big).pipe(createGunzip()), crlfDelay: Infinity }))
      count++
    expect(count).toBe(LINES)

    const base = await replay(small, config, probe)
    expect(base.code).toBe(0)
    expect(base.json.lines).toBe(1000)

    const run = await replay(big, config, probe)
    expect(run.code).toBe(0)
    expect(run.json.lines).toBe(LINES)
    expect(run.json.bad.count).toBe(0)
    expect(run.json.blocked.count).toBeGreaterThan(0)
    const growth = run.maxRssMb - base.maxRssMb
    const rate = Math.round(run.json.lines / (run.json.elapsedMs / 1000))
    console.log(
      `replay of ${LINES.toLocaleString('en-US')} gzipped combined lines: ${rate.toLocaleString('en-US')} lines/s ` +
        `(${(run.json.elapsedMs / 1000).toFixed(1)} s replay, ${(run.wallMs / 1000).toFixed(1)} s with startup); ` +
        `peak RSS ${run.maxRssMb.toFixed(0)} MB vs ${base.maxRssMb.toFixed(0)} MB for 1,000 lines: growth ${growth.toFixed(0)} MB`,
    )
    expect(growth).toBeLessThan(200)
  }, 180_000)
})
