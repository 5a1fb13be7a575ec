// A generated office in front of the demo address book, as NCSA combined log lines in time
// order: honest clerks re-reading their working sets during the working day, one slow
// enumerator (a new contact every 12 s through the night) and one fast one (4 a second for
// three minutes). Generated lazily, so a million lines never sit in memory.
//
// Routes match examples/demo.yaml: GET /api/contacts/:id, GET /api/contacts?ids=…,
// POST /api/contacts/search, plus pages and assets that no route counts.

export interface PopulationOptions {
  seed?: number
  /** Midnight UTC of the first day. */
  start?: number
  days?: number
  clerks?: number
  slow?: boolean
  fast?: boolean
  /** The slow enumerator: one new contact every `slowGapMs` (12 s) for `slowForMs` (8 h). */
  slowGapMs?: number
  slowForMs?: number
  /** The fast one: 4 a second for `fastForMs` (3 min). */
  fastForMs?: number
  /** Stop after this many lines. */
  maxLines?: number
  /** Apache %t offset, minutes east of UTC. */
  offsetMinutes?: number
}

export interface Hit {
  time: number
  account: string
  client: string
  method: string
  target: string
  status: number
  bytes: number
  agent: string
}

export const POPULATION_START = Date.UTC(2024, 2, 11) // a Monday
export const SLOW = 'svc-reporting'
export const FAST = 'mallory'

const HOUR = 3_600_000
const BROWSERS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:123.0) Gecko/20100101 Firefox/123.0',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3.1 Safari/605.1.15',
]
const PAGES = ['/', '/app.js', '/css/site.css', '/favicon.ico', '/contacts', '/api/me']

interface Actor {
  /** The next request's time; Infinity when the actor is done. */
  at: number
  next(rnd: () => number): Hit | null
}

/** Lines in time order (a min-heap of actors keyed by their next request). */
export function* population(options: PopulationOptions = {}): Generator<Hit> {
  let s = options.seed ?? 11
  const rnd = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32
  const start = options.start ?? POPULATION_START
  const days = options.days ?? 1
  const actors: Actor[] = []
  for (let c = 0; c < (options.clerks ?? 40); c++) actors.push(clerk(c, start, days, rnd))
  if (options.slow ?? true)
    actors.push(
      walker(
        SLOW,
        '10.20.0.15',
        start + 19 * HOUR,
        options.slowGapMs ?? 12_000,
        options.slowForMs ?? 8 * HOUR,
        50_000,
        'python-requests/2.31.0',
      ),
    )
  if (options.fast ?? true)
    actors.push(
      walker(
        FAST,
        '203.0.113.77',
        start + 14 * HOUR + 1_234_000,
        250,
        options.fastForMs ?? 180_000,
        80_000,
        'curl/8.5.0',
      ),
    )
  const heap = new Heap(actors)
  const max = options.maxLines ?? Infinity
  for (let n = 0; n < max;) {
    const a = heap.peek()
    if (!a || a.at === Infinity) return
    const hit = a.next(rnd)
    heap.fix()
    if (hit) {
      n++
      yield hit
    }
  }
}

/** An honest clerk: a working set of 8–40 customers, a request every 20 s–3 min, 08:00–17:00. */
function clerk(c: number, start: number, days: number, rnd: () => number): Actor {
  const account = `clerk${String(c + 1).padStart(3, '0')}`
  const client = `10.0.${(c >> 8) & 255}.${(c & 255) + 1}`
  const agent = BROWSERS[c % BROWSERS.length] as string
  const working: number[] = []
  const size = 8 + Math.floor(rnd() * 33)
  for (let i = 0; i < size; i++) working.push(1 + Math.floor(rnd() * 40_000))
  const pick = () => working[Math.floor(rnd() * working.length)] as number
  let day = 0
  let loggedIn = false
  const dayStart = () => start + day * 24 * HOUR + 8 * HOUR + Math.floor(rnd() * 3_600) * 1000
  const actor: Actor = {
    at: dayStart(),
    next(r) {
      const time = actor.at
      if (!loggedIn) {
        // The day starts with the login form (no $remote_user yet: it is the login request).
        loggedIn = true
        actor.at += 3000
        return { time, account: '-', client, agent, method: 'POST', target: '/login', status: 302, bytes: 0 }
      }
      actor.at += (20 + Math.floor(r() * 160)) * 1000
      if (actor.at > start + day * 24 * HOUR + 17 * HOUR) {
        day++
        loggedIn = false
        actor.at = day < days ? dayStart() : Infinity
      }
      const roll = r()
      const hit = { time, account, client, agent, method: 'GET', status: 200, bytes: 600 + Math.floor(r() * 1400) }
      if (roll < 0.6) return { ...hit, target: `/api/contacts/${pick()}` }
      if (roll < 0.66) {
        // a new customer joins the working set
        const id = 1 + Math.floor(r() * 40_000)
        working.push(id)
        return { ...hit, target: `/api/contacts/${id}` }
      }
      if (roll < 0.72) {
        const ids = [pick(), pick(), pick()].slice(0, 1 + Math.floor(r() * 3))
        return { ...hit, target: `/api/contacts?ids=${[...new Set(ids)].join(',')}` }
      }
      if (roll < 0.76)
        return { ...hit, target: `/api/contacts?page=${1 + Math.floor(r() * 3)}&pageSize=50`, bytes: 9_800 }
      if (roll < 0.8) return { ...hit, method: 'POST', target: '/api/contacts/search', bytes: 2100 }
      const page = PAGES[Math.floor(r() * PAGES.length)] as string
      return { ...hit, target: page, status: r() < 0.5 ? 304 : 200, bytes: page === '/app.js' ? 48_211 : 1_234 }
    },
  }
  return actor
}

/** Contacts first, first + 1, … every `gapMs` for `forMs`. */
function walker(
  account: string,
  client: string,
  from: number,
  gapMs: number,
  forMs: number,
  first: number,
  agent: string,
): Actor {
  let i = 0
  const actor: Actor = {
    at: from,
    next() {
      const time = actor.at
      actor.at = time + gapMs > from + forMs ? Infinity : time + gapMs
      return {
        time: Math.floor(time / 1000) * 1000,
        account,
        client,
        agent,
        method: 'GET',
        target: `/api/contacts/${first + i++}`,
        status: 200,
        bytes: 731,
      }
    },
  }
  return actor
}

/** A binary min-heap on `at`; `fix()` after the top's `at` changed. */
class Heap {
  constructor(private readonly a: Actor[]) {
    for (let i = (a.length >> 1) - 1; i >= 0; i--) this.down(i)
  }

  peek(): Actor | undefined {
    return this.a[0]
  }

  fix(): void {
    this.down(0)
  }

  private down(i: number): void {
    const a = this.a
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < a.length && (a[l] as Actor).at < (a[m] as Actor).at) m = l
      if (r < a.length && (a[r] as Actor).at < (a[m] as Actor).at) m = r
      if (m === i) return
      ;[a[i], a[m]] = [a[m] as Actor, a[i] as Actor]
      i = m
    }
  }
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/** `[11/Mar/2024:09:12:44 +0100]` in the given offset. */
export function clf(ms: number, offsetMinutes = 60): string {
  const d = new Date(ms + offsetMinutes * 60_000)
  const p = (n: number) => String(n).padStart(2, '0')
  const off = Math.abs(offsetMinutes)
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} ${offsetMinutes >= 0 ? '+' : '-'}${p(Math.floor(off / 60))}${p(off % 60)}`
}

/** nginx's default `combined`, with $remote_user set by HTTP basic auth. */
export function combined(h: Hit, offsetMinutes = 60): string {
  const referer = h.target.startsWith('/api/') ? '"https://contacts.example.internal/contacts"' : '"-"'
  return `${h.client} - ${h.account} [${clf(h.time, offsetMinutes)}] "${h.method} ${h.target} HTTP/1.1" ${h.status} ${h.bytes} ${referer} "${h.agent}"`
}
