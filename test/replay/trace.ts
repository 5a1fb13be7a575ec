// A generated day at an address book: honest users re-reading their working sets, a slow
// enumerator (one new id every 20 s, for hours) and a fast one (bursts of 5 a second).
// Times are whole seconds, so every log format (CLF has second resolution) carries them exactly.

export interface TraceRequest {
  time: number
  account: string
  target: string
}

export const T0 = Date.UTC(2024, 0, 15, 7, 0, 0)

export const TRACE_CONFIG = `
version: 1
upstream: { url: UPSTREAM, timeout: 5s }
identity:
  - { type: header, name: x-user, trusted: true }
routes:
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 1m, requests: 120,        action: throttle }
      - { window: 1m, distinctRecords: 30,  action: throttle }
      - { window: 1m, requests: 200,        action: disable }
      - { window: 1h, distinctRecords: 60,  action: log }
      - { window: 1h, distinctRecords: 100, action: challenge }
  - name: lookup
    methods: [GET]
    path: /api/contacts
    records: { query: ids, split: "," }
    limits:
      - { window: 10m, distinctRecords: 40, action: throttle }
actions:
  disable: { duration: 10m }
`

/** Deterministic (seeded) trace, sorted by time. */
export function generateTrace(seed = 7): TraceRequest[] {
  let s = seed
  const rnd = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1))
  const out: TraceRequest[] = []

  for (let u = 0; u < 6; u++) {
    const account = `clerk-${u}`
    const working = Array.from({ length: int(5, 12) }, () => int(1, 5000))
    let t = T0 + int(0, 600) * 1000
    for (let i = 0; i < 120; i++) {
      t += int(5, 60) * 1000
      if (rnd() < 0.15) {
        const ids = Array.from({ length: int(1, 4) }, () => working[int(0, working.length - 1)])
        out.push({ time: t, account, target: `/api/contacts?ids=${ids.join(',')}` })
      } else {
        out.push({ time: t, account, target: `/api/contacts/${working[int(0, working.length - 1)]}` })
      }
    }
  }

  // Slow: a new id every 20 s for 2 hours (crosses 1h distinct 60 → log, then 100 → challenge).
  for (let i = 0; i < 360; i++)
    out.push({ time: T0 + 300_000 + i * 20_000, account: 'slow-walker', target: `/api/contacts/${10_000 + i}` })

  // Fast: 5 a second for 80 s (1m distinct 30 → throttle, 1m requests 120/200 → throttle, disable),
  // then again after the 10-minute disable has run out; also a batch walk on the lookup route.
  for (const start of [T0 + 1_800_000, T0 + 2_700_000]) {
    for (let i = 0; i < 400; i++)
      out.push({
        time: start + Math.floor(i / 5) * 1000,
        account: 'fast-walker',
        target: `/api/contacts/${20_000 + i}`,
      })
  }
  for (let i = 0; i < 30; i++) {
    const ids = Array.from({ length: 5 }, (_, k) => 30_000 + i * 5 + k)
    out.push({ time: T0 + 3_600_000 + i * 2000, account: 'fast-walker', target: `/api/contacts?ids=${ids.join(',')}` })
  }
  // Stable sort: equal times keep generation order.
  return out
    .map((r, i) => ({ r, i }))
    .sort((a, b) => a.r.time - b.r.time || a.i - b.i)
    .map((x) => x.r)
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/** Apache %t in a given UTC offset (minutes east). */
export function clfTime(ms: number, offsetMinutes = 60): string {
  const d = new Date(ms + offsetMinutes * 60_000)
  const p = (n: number) => String(n).padStart(2, '0')
  const sign = offsetMinutes >= 0 ? '+' : '-'
  const off = Math.abs(offsetMinutes)
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} ${sign}${p(Math.floor(off / 60))}${p(off % 60)}`
}

export function combinedLine(r: TraceRequest, status = 200, offsetMinutes = 60): string {
  return `10.1.2.3 - ${r.account} [${clfTime(r.time, offsetMinutes)}] "GET ${r.target} HTTP/1.1" ${status} 512 "-" "trace/1.0"`
}
