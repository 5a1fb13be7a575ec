// Recent incidents (every decision other than allow), for `GET /incidents` and `sluice
// incidents`: a bounded ring buffer in this process. It is a convenience for the operator on
// call, not the record: the audit trail keeps everything, across restarts and instances.
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
}

export interface RecordedIncident extends Incident {
  /** 1, 2, 3, … in this process: gaps in a listing show what the buffer dropped. */
  seq: number
}

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

  constructor(capacity = 1000) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`IncidentLog capacity must be a positive integer, not ${capacity}`)
    this.capacity = capacity
    this.ring = new Array<RecordedIncident | undefined>(capacity)
  }

  /** O(1); called on the request path for every non-allow decision. */
  record(incident: Incident): void {
    this.ring[this.next] = { ...incident, seq: ++this.seq }
    this.next = (this.next + 1) % this.capacity
  }

  /** Newest first. */
  list(query: IncidentQuery): RecordedIncident[] {
    const out: RecordedIncident[] = []
    for (let i = 1; i <= this.capacity && out.length < query.limit; i++) {
      const e = this.ring[(this.next - i + this.capacity) % this.capacity]
      if (!e) break
      if (query.since !== undefined && e.time < query.since) continue
      if (query.account !== undefined && e.account !== query.account) continue
      out.push(e)
    }
    return out
  }

  /** Incidents held now (at most `capacity`) and recorded since start. */
  get size(): number {
    return Math.min(this.seq, this.capacity)
  }

  get recorded(): number {
    return this.seq
  }
}
