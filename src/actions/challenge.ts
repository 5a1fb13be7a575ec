// The challenge action: a proof of work (ALTCHA's v2 protocol, altcha-lib on the server).
//
//   1. A request crosses a `challenge` limit: sluice answers 429 with a signed challenge bound
//      to the account and the limit (the HTML page solves it and retries by itself; an API
//      client solves it, e.g. with altcha-lib's solveChallenge, and retries with the
//      `Sluice-Solution` header).
//   2. A retry carrying a valid solution gets a pass: that request, and the requests of the
//      same account for `validFor`, are not challenged by that limit (more severe limits still
//      act) — until the pass has bought `grants` records (requests, on a requests limit) past
//      it; then the next challenge comes, twice as hard for every solve of that account and
//      limit within the limit's window. What a pass has bought is counted in the store, so
//      every instance sees it. The pass is an HMAC-signed token, returned as the `sluice_pass`
//      cookie and the `Sluice-Pass` header; clients send either back.
//   3. Solutions are single use (claimed in the store, shared by every instance), expire after
//      `timeout`, and carry a tag of the account they were made for: another account's
//      solution or pass is refused.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Challenge } from 'altcha-lib'
import type { ChallengeConfig } from '../config/compile.js'
import type { Limit, RoutePolicy } from '../engine/policy.js'
import type { TokenStore } from '../engine/store.js'

export const SOLUTION_HEADER = 'sluice-solution'
export const SOLUTION_COOKIE = 'sluice_solution'
export const PASS_HEADER = 'sluice-pass'
export const PASS_COOKIE = 'sluice_pass'

export type Verdict =
  | { ok: true; limit: Limit }
  | {
      ok: false
      reason: 'malformed' | 'forged' | 'expired' | 'replayed' | 'other-account' | 'wrong-route' | 'store-unavailable'
    }

interface PassToken {
  /** Account tag. */
  a: string
  /** Limit id → [pass expiry (ms), the pass's id: what it has bought is counted under it]. */
  p: Record<string, [number, string]>
}

/** A limit a request holds a pass for, and the counter of what that pass has bought. */
export interface HeldPass {
  index: number
  id: string
  kind: Limit['kind']
}

// altcha-lib loads when a config has a `challenge` limit (Runtime prepares it with the config),
// not with every process.
interface Altcha {
  createChallenge: (typeof import('altcha-lib'))['createChallenge']
  randomInt: (typeof import('altcha-lib'))['randomInt']
  verifySolution: (typeof import('altcha-lib'))['verifySolution']
  deriveKey: (typeof import('altcha-lib/algorithms/sha'))['deriveKey']
}
let altcha: Altcha | undefined
let loading: Promise<Altcha> | undefined
/** Start loading altcha-lib (at startup or reload, for a config that can challenge). */
export function loadAltcha(): Promise<Altcha> {
  return (loading ??= Promise.all([import('altcha-lib'), import('altcha-lib/algorithms/sha')]).then(
    ([lib, sha]) =>
      (altcha = {
        createChallenge: lib.createChallenge,
        randomInt: lib.randomInt,
        verifySolution: lib.verifySolution,
        deriveKey: sha.deriveKey,
      }),
  ))
}

/** The hardest challenge sluice asks (the schema's maximum difficulty). */
const MAX_DIFFICULTY = 100_000_000

export class Challenges {
  readonly config: ChallengeConfig
  private readonly store: TokenStore
  private readonly signKey: string
  private readonly keySignKey: string
  private readonly passKey: Buffer
  private readonly tagKey: Buffer

  constructor(config: ChallengeConfig, store: TokenStore) {
    this.config = config
    this.store = store
    const secret = config.secret ?? randomBytes(32).toString('base64')
    // One configured secret, a separate key per use.
    const derive = (use: string) => createHmac('sha256', secret).update(`sluice ${use}`).digest()
    this.signKey = derive('challenge').toString('base64')
    this.keySignKey = derive('challenge key').toString('base64')
    this.passKey = derive('pass')
    this.tagKey = derive('account')
  }

  /** A short keyed tag of the account: binds tokens without writing internal account keys into them. */
  tag(account: string): string {
    return createHmac('sha256', this.tagKey).update(account).digest('base64url').slice(0, 22)
  }

  async issue(account: string, limit: Limit, now: number): Promise<Challenge> {
    let solves = 0
    try {
      solves = await this.store.count(this.solvesKey(account, limit), 0, this.solvesTtl(limit))
    } catch {
      // The store is down: the base difficulty (its failure policy governs the rest).
    }
    const max = Math.min(MAX_DIFFICULTY, this.config.difficulty * 2 ** Math.min(solves, 16))
    const { createChallenge, randomInt, deriveKey } = altcha ?? (await loadAltcha())
    return createChallenge({
      algorithm: 'SHA-256',
      cost: 1,
      // Deterministic mode: the solver must find this counter; between half and all of the difficulty.
      counter: randomInt(max, Math.ceil(max / 2)),
      deriveKey,
      hmacSignatureSecret: this.signKey,
      hmacKeySignatureSecret: this.keySignKey,
      // Expiry in our own clock (altcha's expiresAt reads the wall clock), covered by the signature.
      data: { account: this.tag(account), limit: limit.id, expires: now + this.config.timeoutMs },
    })
  }

  /** Check a solution (the `Sluice-Solution` header or cookie) for this account and route. */
  async verify(encoded: string, account: string, policy: RoutePolicy, now: number): Promise<Verdict> {
    let payload: { challenge?: Challenge; solution?: { counter: number; derivedKey: string } }
    try {
      payload = JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as typeof payload
    } catch {
      return { ok: false, reason: 'malformed' }
    }
    if (payload === null || typeof payload !== 'object') return { ok: false, reason: 'malformed' }
    const { challenge, solution } = payload
    if (
      !challenge?.parameters ||
      typeof challenge.signature !== 'string' ||
      typeof solution?.counter !== 'number' ||
      typeof solution.derivedKey !== 'string'
    ) {
      return { ok: false, reason: 'malformed' }
    }
    const { verifySolution, deriveKey } = altcha ?? (await loadAltcha())
    let result
    try {
      result = await verifySolution({
        challenge,
        solution,
        deriveKey,
        hmacSignatureSecret: this.signKey,
        hmacKeySignatureSecret: this.keySignKey,
      })
    } catch {
      return { ok: false, reason: 'malformed' }
    }
    if (!result.verified) return { ok: false, reason: 'forged' }
    const data = challenge.parameters.data ?? {}
    if (typeof data.expires !== 'number' || data.expires <= now) return { ok: false, reason: 'expired' }
    if (data.account !== this.tag(account)) return { ok: false, reason: 'other-account' }
    const limit = policy.limits.find((l) => l.id === data.limit && l.action === 'challenge')
    if (!limit) return { ok: false, reason: 'wrong-route' }
    let first: boolean
    try {
      first = await this.store.claimOnce(`pow:${challenge.signature}`, data.expires - now + 1000)
      if (first) await this.store.count(this.solvesKey(account, limit), 1, this.solvesTtl(limit))
    } catch {
      return { ok: false, reason: 'store-unavailable' }
    }
    return first ? { ok: true, limit } : { ok: false, reason: 'replayed' }
  }

  /** This route's challenge limits that a pass token (cookie or header) holds a pass for. */
  passes(token: string | undefined, account: string, policy: RoutePolicy, now: number): HeldPass[] {
    const pass = token ? this.readPass(token) : null
    if (!pass || pass.a !== this.tag(account)) return []
    const out: HeldPass[] = []
    for (const l of policy.limits) {
      const held = pass.p[l.id]
      if (l.action === 'challenge' && held !== undefined && held[0] > now)
        out.push({ index: l.index, id: held[1], kind: l.kind })
    }
    return out
  }

  /**
   * Spend what this observation takes from each pass (one request, or its records) and keep
   * the passes that can still pay for it: a pass buys at most `grants` past its limit.
   */
  async spend(held: readonly HeldPass[], records: number, countRequest: boolean): Promise<number[]> {
    const out: number[] = []
    for (const p of held) {
      const cost = p.kind === 'requests' ? (countRequest ? 1 : 0) : records
      if (cost === 0) {
        out.push(p.index)
        continue
      }
      let spent: number
      try {
        spent = await this.store.count(`pass:${p.id}`, cost, this.config.validForMs + 60_000)
      } catch {
        continue // cannot be checked: the limit acts
      }
      if (spent <= this.config.grants) out.push(p.index)
    }
    return out
  }

  /** A pass token for `limit`, keeping the still-valid passes of an earlier token of the same account. */
  grant(previous: string | undefined, account: string, limit: Limit, now: number): { token: string; pass: HeldPass } {
    const tag = this.tag(account)
    const kept = previous ? this.readPass(previous) : null
    const p: Record<string, [number, string]> = {}
    if (kept && kept.a === tag) for (const [id, held] of Object.entries(kept.p)) if (held[0] > now) p[id] = held
    const pass: HeldPass = { index: limit.index, id: randomBytes(12).toString('base64url'), kind: limit.kind }
    p[limit.id] = [now + this.config.validForMs, pass.id]
    const body = Buffer.from(JSON.stringify({ a: tag, p } satisfies PassToken)).toString('base64url')
    return { token: `${body}.${this.mac(body)}`, pass }
  }

  private solvesKey(account: string, limit: Limit): string {
    return `solves:${this.tag(account)}:${limit.id}`
  }

  /** Solves count toward the difficulty while the limit's window (at least validFor) lasts. */
  private solvesTtl(limit: Limit): number {
    return Math.max(limit.windowMs, this.config.validForMs)
  }

  private readPass(token: string): PassToken | null {
    const dot = token.indexOf('.')
    if (dot <= 0) return null
    const body = token.slice(0, dot)
    const mac = Buffer.from(token.slice(dot + 1), 'base64url')
    const want = Buffer.from(this.mac(body), 'base64url')
    if (mac.length !== want.length || !timingSafeEqual(mac, want)) return null
    try {
      const pass = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as PassToken
      if (typeof pass.a !== 'string' || !pass.p || typeof pass.p !== 'object') return null
      const valid = Object.values(pass.p).every(
        (h) => Array.isArray(h) && typeof h[0] === 'number' && typeof h[1] === 'string',
      )
      return valid ? pass : null
    } catch {
      return null
    }
  }

  private mac(body: string): string {
    return createHmac('sha256', this.passKey).update(body).digest('base64url')
  }
}
