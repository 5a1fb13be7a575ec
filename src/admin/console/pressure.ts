// The accounts under the most pressure, shared by every operator and tab. Listing them is a
// pass over every account the store holds (GET /accounts: docs/admin.md#what-listing-costs),
// in the proxy's own process: the console lists at most once per LIST_EVERY_MS whoever asks,
// and every page and poll in between is answered from that one listing. An operator's unlock,
// reset or disable through the console drops it, so the next page shows what they did.
import type { AccountListJson } from '../accounts.js'
import type { AdminAnswer, AdminCall } from './api.js'

/** At most one listing per 15 s, however many overviews are open. */
export const LIST_EVERY_MS = 15_000
/** Listed once for both pages: the overview shows the first 10, /console/accounts all 50. */
export const LISTED = 50

export interface PressureListing {
  answer: AdminAnswer<AccountListJson>
  /** When the listing was asked for (ms). */
  at: number
}

export class PressureCache {
  private kept: (PressureListing & { generation: number }) | undefined
  private pending: { generation: number; listing: Promise<PressureListing> } | undefined
  /** Bumped by drop(): a listing begun before an action is not kept as fresh after it. */
  private generation = 0

  constructor(
    private readonly clock: () => number,
    readonly everyMs = LIST_EVERY_MS,
  ) {}

  /** The kept listing while it is younger than everyMs; otherwise one new listing, shared by all who ask meanwhile. */
  async get(call: AdminCall): Promise<PressureListing> {
    const now = this.clock()
    const kept = this.kept
    if (kept !== undefined && kept.generation === this.generation && now - kept.at < this.everyMs) return kept
    const pending = this.pending
    if (pending !== undefined && pending.generation === this.generation) return pending.listing
    const generation = this.generation
    const listing = call<AccountListJson>('GET', `/accounts?limit=${LISTED}`).then(
      (answer) => {
        const done = { answer, at: now, generation }
        if (this.pending?.listing === listing) this.pending = undefined
        if (generation === this.generation) this.kept = done
        return done
      },
      (err: unknown) => {
        if (this.pending?.listing === listing) this.pending = undefined
        throw err
      },
    )
    this.pending = { generation, listing }
    return listing
  }

  /** After an operator's action: the next page lists again. */
  drop(): void {
    this.generation++
    this.kept = undefined
  }

  /** Milliseconds until a new listing may be made (0: the next ask lists). */
  nextIn(listing: PressureListing): number {
    return Math.max(0, listing.at + this.everyMs - this.clock())
  }
}
