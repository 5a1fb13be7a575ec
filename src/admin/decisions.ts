// "Why was I blocked?": every decision other than allow gets a short random reference, carried
// by the block answer (body, page, `Sluice-Reference` header) and by the log line and audit
// entry. The decision itself — who, which route, the limit that acted, the counts at that
// moment, the action and its expiry, the instance — is kept here for `admin.decisionsKept`:
// in a bounded ring of this process, and, when the store is shared (Redis), under the reference
// in the store, so any instance's admin API explains any instance's block.
// GET /decisions/:ref and `sluice incidents show REF` read it (docs/admin.md).
import { randomFillSync } from 'node:crypto'
import { hostname } from 'node:os'
import type { FastifyInstance } from 'fastify'
import { formatMs } from '../engine/policy.js'
import type { DecisionStore } from '../engine/store.js'
import { fromStore, queryOf } from './accounts.js'
import { AdminError, badRequest } from './problem.js'

/** The limit that acted, as the operator reads it. */
export interface DecisionLimitJson {
  /** `route#index` */
  id: string
  /** `10m distinctRecords 100 → challenge` */
  label: string
  kind: string
  /** Whose windows: the account's, its network's, the route's. */
  per: string
  /** `10m` */
  window: string
  windowMs: number
  /** The threshold. */
  max: number
  action: string
}

/** GET /decisions/:ref */
export interface DecisionJson {
  reference: string
  /** ISO 8601 */
  time: string
  /** The key whose windows or disable acted: an account, `net:<network>`, `route:<name>`, `overflow:<network>`. */
  account: string
  route: string
  /** throttle, challenge, disable, disabled, unavailable, log. */
  decision: string
  blocked: boolean
  shadow: boolean
  /** The acting limit's action, or the decision when no limit acted (already disabled, store down). */
  action: string
  /** null: no limit acted on this request (the account was already disabled, or the store was down). */
  limit: DecisionLimitJson | null
  /** Every limit of the route with its count at that moment (this request included). */
  counts: (Omit<DecisionLimitJson, 'label' | 'action'> & { label: string; count: number })[]
  /** A disable's end: ISO 8601 or `forever`. */
  disabledUntil?: string
  /** A throttle's Retry-After, in seconds. */
  retryAfter?: number
  identity: string
  clientIp: string
  method: string
  /** As logged: record ids pseudonymised. */
  path: string
  step: 'request' | 'response'
  /** Which sluice decided: hostname:pid. */
  instance: string
}

/** This process, as decisions name it. */
export const INSTANCE = `${hostname()}:${process.pid}`

// Crockford's base32 without I, L, O, U: no look-alikes when read out over the phone.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
export const REFERENCE_LENGTH = 10
const REFERENCE = /^[0-9A-HJKMNP-TV-Z]{10}$/
const pool = Buffer.alloc(REFERENCE_LENGTH * 256)
let used = pool.length

/** 10 base32 characters (50 random bits) from the OS' CSPRNG, drawn 256 at a time. */
export function newReference(): string {
  if (used + REFERENCE_LENGTH > pool.length) {
    randomFillSync(pool)
    used = 0
  }
  let ref = ''
  for (let i = 0; i < REFERENCE_LENGTH; i++) ref += ALPHABET[(pool[used++] as number) & 31]
  return ref
}

/** A reference as typed by a person: case and the look-alikes (I, L → 1; O → 0) forgiven; null if it cannot be one. */
export function normalizeReference(text: string): string | null {
  const ref = text.trim().toUpperCase().replace(/[IL]/g, '1').replace(/O/g, '0')
  return REFERENCE.test(ref) ? ref : null
}

export interface DecisionLogOptions {
  /** How long a decision can be looked up. */
  keptMs: number
  /** Decisions this process keeps in memory at most. */
  capacity?: number
  /** Where decisions are shared with the other instances (the Redis store); null: this process only. */
  store?: DecisionStore | null
  clock?: () => number
}

export class DecisionLog {
  readonly keptMs: number
  readonly capacity: number
  private readonly store: DecisionStore | null
  private readonly clock: () => number
  /** Insertion order is time order: the oldest goes first. */
  private readonly ring = new Map<string, { at: number; json: DecisionJson }>()

  constructor(options: DecisionLogOptions) {
    this.keptMs = options.keptMs
    this.capacity = options.capacity ?? 10_000
    this.store = options.store ?? null
    this.clock = options.clock ?? Date.now
  }

  /** On the request path: O(1) here; the shared store's write is not awaited (and never throws). */
  keep(json: DecisionJson, at: number): void {
    this.ring.set(json.reference, { at, json })
    if (this.ring.size > this.capacity) this.ring.delete(this.ring.keys().next().value as string)
    if (this.store) {
      try {
        const saved = this.store.saveDecision(json.reference, JSON.stringify(json), this.keptMs)
        if (saved instanceof Promise) saved.catch(() => undefined)
      } catch {
        // The ring still has it; the audit trail carries the reference either way.
      }
    }
  }

  /** This process' ring first, then the shared store; undefined when unknown or older than keptMs. */
  async find(reference: string): Promise<DecisionJson | undefined> {
    const held = this.ring.get(reference)
    if (held !== undefined) return this.clock() - held.at <= this.keptMs ? held.json : undefined
    if (!this.store) return undefined
    const text = await this.store.loadDecision(reference)
    if (text === undefined) return undefined
    try {
      return JSON.parse(text) as DecisionJson
    } catch {
      return undefined
    }
  }

  /** An account's latest decisions in this process, newest first. */
  recent(account: string, limit: number): DecisionJson[] {
    const out: DecisionJson[] = []
    const now = this.clock()
    const all = [...this.ring.values()]
    for (let i = all.length - 1; i >= 0 && out.length < limit; i--) {
      const e = all[i] as { at: number; json: DecisionJson }
      if (now - e.at > this.keptMs) break
      if (e.json.account === account) out.push(e.json)
    }
    return out
  }

  /** The latest decision that disabled the account (this process' memory), if it is still kept. */
  lastDisable(account: string, shadow: boolean): DecisionJson | undefined {
    const now = this.clock()
    const all = [...this.ring.values()]
    for (let i = all.length - 1; i >= 0; i--) {
      const e = all[i] as { at: number; json: DecisionJson }
      if (now - e.at > this.keptMs) break
      if (e.json.account === account && e.json.decision === 'disable' && e.json.shadow === shadow) return e.json
    }
    return undefined
  }

  get size(): number {
    return this.ring.size
  }
}

export interface DecisionRoutesContext {
  decisions: DecisionLog | undefined
}

/** GET /decisions/:ref — one decision by its reference (this instance's memory, then the shared store). */
export function registerDecisionRoutes(app: FastifyInstance, ctx: DecisionRoutesContext): void {
  app.get('/decisions/:ref', async (request): Promise<DecisionJson> => {
    queryOf(request, [])
    const text = (request.params as { ref?: unknown }).ref
    const ref = typeof text === 'string' ? normalizeReference(text) : null
    if (ref === null)
      throw badRequest(
        `a reference is ${REFERENCE_LENGTH} letters and digits, as the block answer gave it (Sluice-Reference header, "reference" in the body, or the page)`,
      )
    const found = ctx.decisions ? await fromStore(() => (ctx.decisions as DecisionLog).find(ref)) : undefined
    if (found === undefined)
      throw new AdminError(
        'SLUICE_ERR_ADMIN_NOT_FOUND',
        `no decision with reference ${ref}: older than admin.decisionsKept (${formatMs(ctx.decisions?.keptMs ?? 0)}), or decided by another instance that does not share its store (the audit trail has every reference: grep the trail for it)`,
      )
    return found
  })
}
