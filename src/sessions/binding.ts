// Sessions bound to accounts. A legacy app names its users by an opaque session cookie, so a
// scraper that logs in again would get a fresh budget. sluice watches the login exchange:
// the user name from the login request, and the session cookie the upstream sets when the
// login succeeds. From then on that session counts against `user:<name>`: re-login keeps the
// budget, and a disabled account stays disabled on every new session.
//
// Only a successful login binds: a failed login binds nothing, so nobody can tie their session
// to somebody else's account by typing a wrong password. The user name is read wherever the
// upstream might read it (a servlet reads the query before the body; PHP's $_REQUEST mixes
// both; JSON or form whatever the type) and compared as the upstream compares names; when the
// places disagree, the login is ambiguous and the session is bound to the client's address
// instead (never to either name, and never left as a fresh budget). Logging out unbinds
// nothing: counts belong to the user, and a logout the upstream ignores must not refund them.
import type { FastifyBaseLogger } from 'fastify'
import type { CompiledSessions } from '../config/compile.js'
import { cookieName, credentialValue, parseSetCookie, setCookies } from '../http/cookies.js'
import { sessionAccount } from '../identity/chain.js'
import { normalizeUsername } from '../identity/usernames.js'
import { configuredPath, namesKey, pairs } from '../records/keys.js'
import { fieldSelector, type Selector } from '../records/selector.js'
import type { SessionStore } from '../engine/store.js'

/** What a login or logout request needs remembered until its response. */
export type SessionEvent =
  | {
      kind: 'login'
      /** Every user name the request carries, normalized. */
      usernames: Set<string>
      /** The session the request already had (a login that keeps its session id). */
      session: string | undefined
      /** Where an ambiguous login's session is counted: the client's address account. */
      fallback: string
    }
  | { kind: 'logout' }

export class SessionBinder {
  readonly config: CompiledSessions
  /** `$.<usernameField>` over the login body's readings. */
  readonly field: Selector
  private readonly fieldPath: string[]
  private readonly store: SessionStore
  private readonly log: FastifyBaseLogger
  private warnedNoCookie = false

  constructor(config: CompiledSessions, store: SessionStore, log: FastifyBaseLogger) {
    this.config = config
    this.field = fieldSelector(config.login.usernameField)
    this.fieldPath = configuredPath(config.login.usernameField)
    this.store = store
    this.log = log
  }

  /** User names in a query string (`?username=…`, as a servlet's getParameter reads it first). */
  queryUsernames(search: string, into: Set<string>): void {
    if (search.length < 2) return
    for (const [k, v] of pairs(search.slice(1))) if (namesKey(k, this.fieldPath)) this.addUsername(v, into)
  }

  /** Add a user name as the upstream compares it (empty ones are no name). */
  addUsername(value: string, into: Set<string>): void {
    const name = normalizeUsername(value, this.config.usernames)
    if (name !== '') into.add(name)
  }

  /** The account a session account (`session:<fingerprint>`) is bound to, if any. */
  resolve(session: string): string | undefined | Promise<string | undefined> {
    return this.store.sessionAccount(session)
  }

  /**
   * After the upstream answered a login: bind the session it set (or, when it set none, the
   * one the request carried) if the login succeeded. Returns the account bound.
   */
  async loginAnswered(
    event: Extract<SessionEvent, { kind: 'login' }>,
    status: number,
    setCookieHeader: unknown,
    now: number,
  ): Promise<string | null> {
    const { login, ttlMs } = this.config
    if (!login.success(status)) return null
    // The cookie's name as servers compare it (any case), as the cookie identity reads it.
    const wanted = cookieName(login.cookie)
    const cookie = setCookies(setCookieHeader)
      .map((h) => parseSetCookie(h, now))
      .find((c) => c !== null && cookieName(c.name) === wanted && c.value !== '')
    if (cookie && cookie.maxAgeMs !== undefined && cookie.maxAgeMs <= 0) return null
    const session = cookie ? sessionAccount(credentialValue(cookie.value)) : event.session
    if (session === undefined) {
      if (!this.warnedNoCookie) {
        this.warnedNoCookie = true
        this.log.warn(
          { event: 'sluice.session', cookie: login.cookie, status },
          `a login succeeded but the upstream set no ${login.cookie} cookie: sessions cannot be bound and count one by one (logged once)`,
        )
      }
      return null
    }
    if (event.usernames.size === 0) return null
    let account: string
    if (event.usernames.size === 1) {
      account = `user:${event.usernames.values().next().value as string}`
    } else {
      account = event.fallback
      this.log.warn(
        { event: 'sluice.session', outcome: 'ambiguous', usernames: event.usernames.size, account },
        'a login named several different users (query and body disagree): its session counts against the client address, not a user',
      )
    }
    // A binding must not end while the cookie still works (that would hand out a fresh budget).
    await this.store.bindSession(session, account, Math.max(cookie?.maxAgeMs ?? 0, ttlMs))
    return account
  }
}
