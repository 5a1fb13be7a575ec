// Recent incidents (every decision other than allow), for `GET /incidents` and `sluice
// incidents`: a bounded ring buffer in this process. It is a convenience for the operator on
// call, not the record: the audit trail keeps everything, across restarts and instances.
//
// Grouped like `cscli alerts list`: one entry per episode of (account, route, limit, action,
// mode) — a scraper hammering a throttle 500 times is one row with its first and last time and
// a count of 500, not 500 rows. An episode stays open while its requests come less than
// `groupWithinMs` (10 minutes) apart.
export interface Incident {
  /** Milliseconds since the epoch. */
  time: number
  account: string
  route: string
  /**
   * Label of the limit that decided (`10m distinctRecords 100 → challenge`); null when none did
   * (already disabled, store unavailable).
   */
  limit: string | null
  /** That limit's action (log, throttle, challenge, disable), or the decision when no limit decided. */
  action: string | null
  /** log, throttle, challenge, disable, disabled, unavailable. */
  decision: string
  /** The request was refused (false: served, as in shadow mode or for `log`). */
  blocked?: boolean
  /** Per limit label: requests or distinct records in its window. */
  counts: Record<string, number>
  /** Decided in shadow mode: logged, not blocked. */
  shadow: boolean
  clientIp?: string
  /** The decision's reference (GET /decisions/:ref); of an episode, the latest decision's. */
  reference?: string
}

export interface RecordedIncident extends Incident {
  /** 1, 2, 3, … per episode in this process: gaps in a listing show what the buffer dropped. */
  seq: number
  /** The episode's first and last decision (ms); `time` is the last. */
  first: number
  last: number
  /** Decisions (requests) in the episode. */
  count: number
  /** The episode's first decision's reference. */
  firstReference?: string
}

export interface IncidentLogOptions {
  /** Decisions of one (account, route, limit, action) less than this apart are one episode (0: never group). */
  groupWithinMs?: number
}

/** Requests of one episode at most this far apart (the default). */
export const GROUP_WITHIN_MS = 10 * 60_000

export interface IncidentQuery {
  limit: number
  account?: string
  /** Only incidents at or after this time (ms). */
  since?: number
}

export class IncidentLog {
  readonly capacity: number
  private readonly ring: (RecordedIncident | undefined)[]
  private next = 0
  private seq = 0
  private requests = 0
  private readonly groupWithinMs: number
  /** The newest episode of each key still in the ring. */
  private readonly open = new Map<string, RecordedIncident>()

  constructor(capacity = 1000, options: IncidentLogOptions = {}) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`IncidentLog capacity must be a positive integer, not ${capacity}`)
    this.capacity = capacity
    this.ring = new Array<RecordedIncident | undefined>(capacity)
    this.groupWithinMs = options.groupWithinMs ?? GROUP_WITHIN_MS
  }

  /** O(1); called on the request path for every non-allow decision. */
  record(incident: Incident): void {
    this.requests++
    const key = episodeKey(incident)
    const open = this.open.get(key)
    if (open !== undefined && this.groupWithinMs > 0 && Math.abs(incident.time - open.last) < this.groupWithinMs) {
      open.count++
      if (incident.time >= open.last) {
        open.last = open.time = incident.time
        open.counts = { ...incident.counts }
        open.decision = incident.decision
        if (incident.blocked !== undefined) open.blocked = incident.blocked
        if (incident.clientIp !== undefined) open.clientIp = incident.clientIp
        if (incident.reference !== undefined) open.reference = incident.reference
      }
      return
    }
    const evicted = this.ring[this.next]
    if (evicted !== undefined && this.open.get(episodeKey(evicted)) === evicted) this.open.delete(episodeKey(evicted))
    const e: RecordedIncident = {
      ...incident,
      counts: { ...incident.counts },
      seq: ++this.seq,
      first: incident.time,
      last: incident.time,
      count: 1,
      ...(incident.reference !== undefined ? { firstReference: incident.reference } : {}),
    }
    this.ring[this.next] = e
    this.open.set(key, e)
    this.next = (this.next + 1) % this.capacity
  }

  /** Newest (by last decision) first; `since` keeps episodes with a decision at or after it. */
  list(query: IncidentQuery): RecordedIncident[] {
    const all: RecordedIncident[] = []
    for (const e of this.ring) {
      if (!e) continue
      if (query.since !== undefined && e.last < query.since) continue
      if (query.account !== undefined && e.account !== query.account) continue
      all.push(e)
    }
    return all.sort((a, b) => b.last - a.last || b.seq - a.seq).slice(0, query.limit)
  }

  /** Episodes held now (at most `capacity`). */
  get size(): number {
    return Math.min(this.seq, this.capacity)
  }

  /** Decisions recorded since start. */
  get recorded(): number {
    return this.requests
  }

  /** Episodes started since start. */
  get episodes(): number {
    return this.seq
  }
}

function episodeKey(e: Incident): string {
  return `${e.account}\0${e.route}\0${e.limit ?? ''}\0${e.action ?? e.decision}\0${e.shadow}`
}
