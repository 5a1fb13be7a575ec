// Sessions bound to accounts. A legacy app names its users by an opaque session cookie, so a
// scraper that logs in again would get a fresh budget. sluice watches the login exchange:
// the user name from the login body, and the session cookie the upstream sets when the login
// succeeds. From then on that session counts against `user:<name>`: re-login keeps the
// budget, and a disabled account stays disabled on every new session.
//
// Only a successful login that sets the cookie binds: a failed login binds nothing, so nobody
// can tie their session to somebody else's account by typing a wrong password.
import type { FastifyBaseLogger } from 'fastify'
import type { CompiledSessions } from '../config/compile.js'
import { parseSetCookie, setCookies } from '../http/cookies.js'
import { fingerprint } from '../identity/credentials.js'
import type { Store } from '../store/store.js'

/** What a login or logout request needs remembered until its response. */
export type SessionEvent = { kind: 'login'; username: string | undefined } | { kind: 'logout'; session: string | undefined }

export class SessionBinder {
  readonly config: CompiledSessions
  private readonly store: Store
  private readonly log: FastifyBaseLogger
  private warnedNoCookie = false

  constructor(config: CompiledSessions, store: Store, log: FastifyBaseLogger) {
    this.config = config
    this.store = store
    this.log = log
  }

  /** Is this request a login or logout? (matched on the canonical path, like routes) */
  classify(method: string, matchPath: string): 'login' | 'logout' | null {
    const { login, logout } = this.config
    if (method === login.method && login.pattern.regex.test(matchPath)) return 'login'
    if (logout && (logout.method === null || logout.method === method) && logout.pattern.regex.test(matchPath)) return 'logout'
    return null
  }

  /** The user name from a parsed login body (form or JSON). */
  username(body: unknown): string | undefined {
    if (body === null || typeof body !== 'object') return undefined
    const field = this.config.login.usernameField
    if (!Object.prototype.hasOwnProperty.call(body, field)) return undefined
    let value = (body as Record<string, unknown>)[field]
    // A repeated form field: the upstream may read either; neither can be trusted to be the one.
    if (Array.isArray(value)) value = value.length === 1 ? value[0] : undefined
    if (typeof value !== 'string' && typeof value !== 'number') return undefined
    const name = String(value).trim()
    if (name === '') return undefined
    return this.config.caseInsensitive ? name.toLowerCase() : name
  }

  /** The account a session account (`session:<fingerprint>`) is bound to, if any. */
  resolve(sessionAccount: string): string | undefined | Promise<string | undefined> {
    return this.store.sessionAccount(sessionAccount)
  }

  /** The session account of a cookie value, as the cookie identity names it. */
  sessionAccount(cookieValue: string): string {
    return `session:${fingerprint(cookieValue)}`
  }

  /** After the upstream answered a login: bind the session it set, if the login succeeded. */
  async loginAnswered(username: string | undefined, status: number, setCookieHeader: unknown, now: number): Promise<string | null> {
    const { login, ttlMs } = this.config
    if (!login.success(status)) return null
    const cookie = setCookies(setCookieHeader)
      .map((h) => parseSetCookie(h, now))
      .find((c) => c !== null && c.name === login.cookie && c.value !== '')
    if (!cookie) {
      if (!this.warnedNoCookie) {
        this.warnedNoCookie = true
        this.log.warn(
          { event: 'sluice.session', cookie: login.cookie, status },
          `a login succeeded but the upstream set no ${login.cookie} cookie: sessions cannot be bound and count one by one (logged once)`,
        )
      }
      return null
    }
    if (username === undefined) return null
    if (cookie.maxAgeMs !== undefined && cookie.maxAgeMs <= 0) return null
    const account = `user:${username}`
    // A binding must not end while the cookie still works (that would hand out a fresh budget).
    await this.store.bindSession(this.sessionAccount(cookie.value), account, Math.max(cookie.maxAgeMs ?? 0, ttlMs))
    return account
  }

  async logoutAnswered(session: string | undefined, status: number): Promise<boolean> {
    if (session === undefined || status < 200 || status >= 400) return false
    await this.store.unbindSession(session)
    return true
  }
}
