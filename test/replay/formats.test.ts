// Log formats: each parsed, malformed lines counted (never fatal), gzip found by its magic bytes.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, describe, expect, it } from 'vitest'
import { compileConfigText } from '../../src/config/index.js'
import {
  combinedParser,
  DEFAULT_JSON_FIELDS,
  detectFormat,
  IGNORED,
  jsonParser,
  parseClfTime,
  parseTime,
  sluiceParser,
  type LogEntry,
} from '../../src/replay/formats.js'
import { replayLogs } from '../../src/replay/replay.js'
import { send } from '../helpers/http.js'
import { startProxy } from '../helpers/proxy.js'
import { startUpstream } from '../helpers/upstream.js'

const dir = mkdtempSync(join(tmpdir(), 'sluice-replay-fmt-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const CONFIG = `
version: 1
upstream: { url: http://127.0.0.1:9 }
identity:
  - { type: header, name: x-user, trusted: true }
routes:
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 1m, distinctRecords: 2, action: throttle }
`
const config = () => compileConfigText(CONFIG, 'test.yaml')
const entry = (r: unknown) => {
  if (typeof r !== 'object') throw new Error(`expected an entry, got ${String(r)}`)
  return r as LogEntry
}
const T = Date.UTC(2000, 9, 10, 20, 55, 36)

describe('NCSA combined', () => {
  const parse = combinedParser()

  it('reads host, user, time with its offset, method and target', () => {
    const e = entry(
      parse(
        '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /api/contacts/7?x=1 HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"',
      ),
    )
    expect(e).toEqual({ time: T, method: 'GET', target: '/api/contacts/7?x=1', account: 'frank', client: '127.0.0.1' })
  })

  it('treats - as no user (the client address is the account), and accepts the common log format', () => {
    const e = entry(parse('2001:db8::1 - - [10/Oct/2000:13:55:36 -0700] "HEAD /a HTTP/1.1" 200 -'))
    expect(e.account).toBeUndefined()
    expect(e.client).toBe('2001:db8::1')
    expect(e.method).toBe('HEAD')
  })

  it('unescapes Apache (\\") and nginx (\\x22) escapes in quoted fields', () => {
    const e = entry(
      parse(
        '1.2.3.4 - bob [10/Oct/2000:13:55:36 +0000] "GET /q?a=\\"x\\x22 HTTP/1.1" 200 1 "-" "ua with \\"quotes\\""',
      ),
    )
    expect(e.target).toBe('/q?a="x"')
  })

  it('takes the account from the N-th extra field or from a name=value field', () => {
    const line =
      '1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET /a HTTP/1.1" 200 1 "-" "curl/8" "alice" rt=0.002 uid="bob smith"'
    expect(entry(combinedParser('1')(line)).account).toBe('alice')
    expect(entry(combinedParser('uid')(line)).account).toBe('bob smith')
    expect(entry(combinedParser('none')(line)).account).toBeUndefined()
    expect(entry(combinedParser('3')(line)).account).toBe('uid="bob smith"')
    expect(entry(combinedParser('9')(line)).account).toBeUndefined()
  })

  it('says why a line is bad', () => {
    expect(parse('')).toMatch(/fields/)
    expect(parse('garbage')).toMatch(/fields/)
    expect(parse('1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET /a HTTP/1.1 200 1')).toMatch(/unbalanced/)
    expect(parse('1.2.3.4 - - [yesterday] "GET /a HTTP/1.1" 200 1')).toMatch(/time/)
    expect(parse('1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "-" 400 0 "-" "-"')).toMatch(/no request line/)
    expect(parse('1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "\\x16\\x03\\x01\\x00" 400 0 "-" "-"')).toBe(
      'request line "\\x16\\x03\\x01\\x00" is not "METHOD target"',
    )
  })

  it('parses CLF times with offsets and fractions', () => {
    expect(parseClfTime('10/Oct/2000:13:55:36 -0700')).toBe(T)
    expect(parseClfTime('10/Oct/2000:22:55:36 +0200')).toBe(T)
    expect(parseClfTime('10/Oct/2000:20:55:36.250 +0000')).toBe(T + 250)
    expect(parseClfTime('10/Foo/2000:20:55:36 +0000')).toBeUndefined()
  })
})

describe('JSON lines', () => {
  const parse = jsonParser(DEFAULT_JSON_FIELDS)

  it('finds common field names', () => {
    expect(
      entry(
        parse('{"time":"2000-10-10T20:55:36Z","method":"get","url":"/a?b=1","user":"u1","remote_addr":"10.0.0.1"}'),
      ),
    ).toEqual({ time: T, method: 'GET', target: '/a?b=1', account: 'u1', client: '10.0.0.1' })
    // nginx escape=json with $request and $time_local, query appended from its own field
    const e = entry(
      parse(
        '{"time_local":"10/Oct/2000:13:55:36 -0700","request":"GET /a HTTP/1.1","args":"id=5","remote_user":"","remote_addr":"10.0.0.2"}',
      ),
    )
    expect(e).toEqual({ time: T, method: 'GET', target: '/a?id=5', account: undefined, client: '10.0.0.2' })
  })

  it('reads epoch seconds, milliseconds and nested fields', () => {
    const custom = jsonParser({ ...DEFAULT_JSON_FIELDS, time: ['t'], url: ['req.path'], account: ['auth.sub'] })
    const e = entry(custom(`{"t":${T / 1000},"method":"GET","req":{"path":"/x"},"auth":{"sub":42}}`))
    expect(e).toMatchObject({ time: T, target: '/x', account: '42' })
    expect(parseTime(T)).toBe(T)
    expect(parseTime(String(T / 1000))).toBe(T)
    expect(parseTime(`${T / 1000}.5`)).toBe(T + 500)
    expect(parseTime('not a time')).toBeUndefined()
  })

  it('says why a line is bad', () => {
    expect(parse('{"time":1,')).toBe('not valid JSON')
    expect(parse('[1,2]')).toBe('not a JSON object')
    expect(parse('{"method":"GET","url":"/a"}')).toMatch(/^no time/)
    expect(parse('{"time":1,"url":"/a"}')).toMatch(/^no method/)
    expect(parse('{"time":1,"method":"GET"}')).toMatch(/^no url/)
  })
})

describe("sluice's own decision log", () => {
  it('reads the lines the live proxy writes, and ignores its other events', async () => {
    const upstream = await startUpstream()
    const proxy = await startProxy(CONFIG.replace('http://127.0.0.1:9', 'UPSTREAM'), { upstream: upstream.url })
    try {
      for (const id of [1, 2, 3, 4]) await send(proxy.url, `/api/contacts/${id}`, { headers: { 'x-user': 'mallory' } })
      const lines = proxy.logs.map((l) => JSON.stringify(l))
      // Not every line is a sluice event (Fastify's "Server listening"): the file is recognised by its sluice events.
      expect(lines.some((l) => detectFormat(l) === 'json')).toBe(true)
      const file = join(dir, 'sluice.log')
      writeFileSync(file, lines.join('\n'))
      const replay = await replayLogs(config(), [file])
      expect(replay.files[0]?.format).toBe('sluice')
      expect(replay.bad.count).toBe(0)
      expect(replay.requests).toBe(2)
      const parse = sluiceParser()
      const entries = lines.map((l) => parse(l)).filter((r) => r !== IGNORED)
      expect(entries).toHaveLength(2) // ids 3 and 4 were throttled; allows are not logged
      // The record id in the path, or its keyed pseudonym (`~hex`) when the proxy pseudonymises
      // logs: distinct counts are the same either way, as long as the key is.
      expect(entries[0]).toMatchObject({ method: 'GET', account: 'header:mallory', client: '127.0.0.1' })
      expect(entry(entries[0]).target).toMatch(/^\/api\/contacts\/(3|~[0-9a-f]{32})$/)
      expect(typeof entry(entries[0]).time).toBe('number')
      expect(lines.some((l) => parse(l) === IGNORED)).toBe(true) // e.g. "Server listening"
    } finally {
      await proxy.close()
      await upstream.close()
    }
    expect(sluiceParser()('{"event":"sluice.decision","time":1}')).toMatch(/without account/)
    // A response step decides on the records of an answer whose request was logged before it.
    expect(
      sluiceParser()('{"event":"sluice.decision","time":1,"step":"response","account":"a","method":"GET","path":"/x"}'),
    ).toBe(IGNORED)
    expect(sluiceParser()('plain text')).toBe('not valid JSON')
  })
})

describe('detection and files', () => {
  it('detects the format from the first line', () => {
    expect(detectFormat('{"event":"sluice.started"}')).toBe('sluice')
    expect(detectFormat('{"time":1}')).toBe('json')
    expect(detectFormat('{broken')).toBe('json')
    expect(detectFormat('1.2.3.4 - - [')).toBe('combined')
  })

  const lines = [
    '10.0.0.1 - alice [10/Oct/2000:13:55:36 -0700] "GET /api/contacts/1 HTTP/1.1" 200 1 "-" "-"',
    'this is not a log line',
    '10.0.0.1 - alice [10/Oct/2000:13:55:37 -0700] "GET /api/contacts/2 HTTP/1.1" 200 1 "-" "-"',
    '',
    '10.0.0.1 - alice [10/Oct/2000:13:55:38 -0700] "GET /api/contacts/3 HTTP/1.1" 200 1 "-" "-"',
    '10.0.0.9 - - [10/Oct/2000:13:55:39 -0700] "GET /api/contacts/3 HTTP/1.1" 200 1 "-" "-"',
    '10.0.0.1 - alice [10/Oct/2000:13:55:40 -0700] "GET /api/contacts/%2e%2e%2f HTTP/1.1" 400 1 "-" "-"',
    '10.0.0.1 - alice [10/Oct/2000:13:55:40 -0700] "GET /other HTTP/1.1" 200 1 "-" "-"',
    '10.0.0.1 - alice [10/Oct/2000:13:55:41 -0700] "GET /api/contacts/4 HTTP/1.1" 200 1 "-" "-',
  ]

  it('reads plain, CRLF and gzip files alike; bad lines are counted with their numbers', async () => {
    const plain = join(dir, 'a.log')
    const crlf = join(dir, 'b.log')
    const gz = join(dir, 'c.log.1') // compressed without the .gz name: found by the magic bytes
    writeFileSync(plain, lines.join('\n'))
    writeFileSync(crlf, lines.join('\r\n') + '\r\n')
    writeFileSync(gz, gzipSync(lines.join('\n') + '\n'))
    for (const file of [plain, crlf, gz]) {
      const r = await replayLogs(config(), [file], { keepBad: 1 })
      expect(r.files).toEqual([{ name: file, format: 'combined', gzip: file === gz, lines: 9 }])
      expect(r.bad.count).toBe(2)
      expect(r.bad.first).toEqual([{ file, line: 2, reason: '6 fields, a combined log line has at least 7' }])
      expect(r.ignored).toBe(1)
      expect(r.requests).toBe(6)
      expect(r.rejected.count).toBe(1)
      expect(r.passedThrough).toBe(1)
      const [route] = r.routes
      expect(route?.accounts.get('alice')?.max).toEqual([3])
      expect(route?.accounts.get('ip:10.0.0.9')?.requests).toBe(1)
      expect(r.blocked.count).toBe(1)
      expect(r.blocked.first[0]).toMatchObject({
        file,
        line: 5,
        account: 'alice',
        kind: 'throttle',
        target: '/api/contacts/3',
      })
    }
  })

  it('a truncated gzip ends that file with an error, not the replay', async () => {
    const whole = gzipSync(Array.from({ length: 2000 }, () => lines[0]).join('\n'))
    const cut = join(dir, 'cut.gz')
    writeFileSync(cut, whole.subarray(0, whole.length - 40))
    const plain = join(dir, 'after.log')
    writeFileSync(plain, `${lines[2]}\n`)
    const r = await replayLogs(config(), [cut, plain])
    expect(r.files[0]?.error).toMatch(/end of file/i)
    expect(r.files[1]).toMatchObject({ lines: 1 })
    expect(r.routes[0]?.accounts.get('alice')?.max).toEqual([2])
  })

  it('a JSON-lines file with a custom field layout', async () => {
    const file = join(dir, 'app.jsonl')
    writeFileSync(
      file,
      [
        JSON.stringify({ at: T, op: 'GET', resource: '/api/contacts/1', who: 'carol' }),
        '{"at":',
        JSON.stringify({ at: T + 1000, op: 'GET', resource: '/api/contacts/2', who: 'carol' }),
        JSON.stringify({ at: T + 2000, op: 'GET', resource: '/api/contacts/3' }),
      ].join('\n'),
    )
    const r = await replayLogs(config(), [file], {
      fields: { time: 'at', method: 'op', url: 'resource' },
      account: 'who',
    })
    expect(r.files[0]?.format).toBe('json')
    expect(r.bad).toEqual({
      count: 2,
      first: [
        { file, line: 2, reason: 'not valid JSON' },
        { file, line: 4, reason: 'neither an account nor a client address' },
      ],
    })
    expect(r.routes[0]?.accounts.get('carol')?.max).toEqual([2])
  })
})
