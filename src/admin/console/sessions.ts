// Console sign-ins: a random session id in an HttpOnly cookie, held in this process' memory with
// an absolute expiry, and a CSRF token per session. Memory, not the store: a session is this
// admin listener's (an operator signs in to the instance they look at), and a restart signing
// everyone out is the safe failure.
import { randomBytes } from 'node:crypto'
import { LRUCache } from 'lru-cache'

export interface ConsoleSession {
  /** The token signed in with: the console calls the admin API with it, in this process only. */
  token: string
  /** The named token's name (admin.tokens), if it is one. */
  tokenName: string | undefined
  /** Who the operator said they are (or the token's name): recorded with every action. */
  operator: string
  /** Sent back in every form and checked on every POST. */
  csrf: string
  expires: number
}

/** Sessions at most: an old one is dropped first (signed out) rather than memory growing. */
const MAX_SESSIONS = 1000

export class ConsoleSessions {
  private readonly sessions = new LRUCache<string, ConsoleSession>({ max: MAX_SESSIONS })

  constructor(
    readonly ttlMs: number,
    private readonly clock: () => number,
  ) {}

  /** A new session; its id goes in the cookie. */
  open(fields: Omit<ConsoleSession, 'csrf' | 'expires'>): { id: string; session: ConsoleSession } {
    const id = randomBytes(32).toString('base64url')
    const session = { ...fields, csrf: randomBytes(32).toString('base64url'), expires: this.clock() + this.ttlMs }
    this.sessions.set(id, session)
    return { id, session }
  }

  /** The live session of a cookie's id; an expired one is forgotten. */
  get(id: string | undefined): ConsoleSession | undefined {
    if (id === undefined) return undefined
    const session = this.sessions.get(id)
    if (session === undefined) return undefined
    if (session.expires <= this.clock()) {
      this.sessions.delete(id)
      return undefined
    }
    return session
  }

  close(id: string): void {
    this.sessions.delete(id)
  }
}

/** Wrong tokens per client address before sign-in is refused without checking. */
const MAX_FAILURES = 5
const FAILURE_WINDOW_MS = 15 * 60_000

/**
 * Wrong tokens per client address over 15 minutes: past 5, the form answers 429 until the
 * window has passed. Bounded: 10,000 addresses, the least recent forgotten first.
 */
export class SignInThrottle {
  private readonly failures = new LRUCache<string, { count: number; since: number }>({ max: 10_000 })

  constructor(private readonly clock: () => number) {}

  /** Milliseconds until this address may try again; 0: it may now. */
  waitMs(address: string): number {
    const f = this.failures.get(address)
    if (f === undefined || f.count < MAX_FAILURES) return 0
    return Math.max(0, f.since + FAILURE_WINDOW_MS - this.clock())
  }

  fail(address: string): void {
    const now = this.clock()
    const f = this.failures.get(address)
    if (f === undefined || now - f.since >= FAILURE_WINDOW_MS) this.failures.set(address, { count: 1, since: now })
    else f.count++
  }

  succeed(address: string): void {
    this.failures.delete(address)
  }
}
