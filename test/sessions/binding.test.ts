// Sessions bound to accounts (src/sessions/binding.ts) without a server: which requests are
// logins and logouts (src/exchange/classify.ts), the user names a login carries, and what a
// login's answer binds in a real memory store.
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { CompiledSessions } from '../../src/config/compile.js'
import { compileConfigText } from '../../src/config/index.js'
import { canonicalOptions, classify } from '../../src/exchange/classify.js'
import { sessionAccount } from '../../src/identity/chain.js'
import { SessionBinder, type SessionEvent } from '../../src/sessions/binding.js'
import { MemoryStore } from '../../src/store/memory.js'

const HOUR = 3_600_000
const T0 = Date.UTC(2024, 2, 11, 9)

function sessionsConfig(sessions: string, identity = '[{ type: cookie, name: JSESSIONID }]'): CompiledSessions {
  const compiled = compileConfigText(`
version: 1
upstream: { url: http://127.0.0.1:9 }
identity: ${identity}
sessions:
${sessions}
routes:
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 10m, distinctRecords: 10, action: throttle }
`)
  if (!compiled.sessions) throw new Error('no sessions compiled')
  return compiled.sessions
}

const DEFAULT = `
  login: { method: POST, path: /login, usernameField: username, cookie: JSESSIONID }
  logout: { method: POST, path: /logout }
  ttl: 8h`

interface Logged {
  level: 'warn' | 'info' | 'error'
  obj: Record<string, unknown>
  msg: string | undefined
}

function setup(sessions = DEFAULT) {
  const store = new MemoryStore({ maxAccounts: 100 })
  const logged: Logged[] = []
  const log = {
    warn: (obj: Record<string, unknown>, msg?: string) => void logged.push({ level: 'warn', obj, msg }),
    info: (obj: Record<string, unknown>, msg?: string) => void logged.push({ level: 'info', obj, msg }),
    error: (obj: Record<string, unknown>, msg?: string) => void logged.push({ level: 'error', obj, msg }),
  }
  const config = sessionsConfig(sessions)
  const binder = new SessionBinder(config, store, log as never)
  return { store, config, binder, logged, boundTo: (session: string) => store.sessionAccount(sessionAccount(session)) }
}

function login(usernames: string[], session?: string): Extract<SessionEvent, { kind: 'login' }> {
  return {
    kind: 'login',
    usernames: new Set(usernames),
    session: session === undefined ? undefined : sessionAccount(session),
    fallback: 'ip:10.0.0.7',
  }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('which requests are logins and logouts', () => {
  // Classification is the exchange's (src/exchange/classify.ts); these are its session rules.
  const kind = (sessions: CompiledSessions, method: string, url: string, headers: Record<string, string> = {}) => {
    const c = classify({ method, url, headers }, { routes: [], sessions, canonical: canonicalOptions(false) })
    return c.kind === 'rejected' ? c.reason : c.session
  }

  it('a login is the configured method on the login path; a logout the logout path', () => {
    const { config } = setup()
    expect(kind(config, 'POST', '/login')).toBe('login')
    expect(kind(config, 'POST', '/login?next=/home')).toBe('login')
    expect(kind(config, 'POST', '/logout')).toBe('logout')
    // Matched on the canonical path, case-insensitively unless paths.caseSensitive (as routes are).
    expect(kind(config, 'POST', '/LOGIN')).toBe('login')
    expect(kind(config, 'POST', '/x/../login')).toBe('login')
    expect(kind(config, 'POST', '/%6cogin')).toBe('login')
    expect(kind(config, 'GET', '/login')).toBeNull()
    expect(kind(config, 'PUT', '/login')).toBeNull()
    expect(kind(config, 'GET', '/logout')).toBeNull()
    expect(kind(config, 'POST', '/login/extra')).toBeNull()
    expect(kind(config, 'POST', '/api/contacts/1')).toBeNull()
  })

  it('a method-override header makes a login of what the upstream would take as one', () => {
    const { config } = setup()
    expect(kind(config, 'GET', '/login', { 'x-http-method-override': 'POST' })).toBe('login')
  })

  // Known gap, pinned: a real POST /login carrying `X-HTTP-Method-Override: GET` is not watched
  // (sessions look only at the overridden method, routes at both), so an upstream that ignores
  // the header logs the user in and the new session is never bound: a fresh budget per login.
  // When classify looks at both methods this test fails: drop the `.fails`.
  it('a POST login dressed as a GET by an override header is still a login', () => {
    const { config } = setup()
    expect(kind(config, 'POST', '/login', { 'x-http-method-override': 'GET' })).toBe('login')
  })

  it('a logout without a method is any method; no logout configured, nothing is one', () => {
    const anyMethod = setup(`
  login: { path: /session/new, usernameField: user, cookie: JSESSIONID }
  logout: { path: /session/end }`).config
    expect(kind(anyMethod, 'POST', '/session/new')).toBe('login') // POST by default
    expect(kind(anyMethod, 'GET', '/session/new')).toBeNull()
    for (const m of ['GET', 'POST', 'DELETE']) expect(kind(anyMethod, m, '/session/end')).toBe('logout')
    const noLogout = setup(`
  login: { method: GET, path: /login, usernameField: user, cookie: JSESSIONID }`).config
    expect(kind(noLogout, 'GET', '/login')).toBe('login')
    expect(kind(noLogout, 'POST', '/login')).toBeNull()
    expect(kind(noLogout, 'POST', '/logout')).toBeNull()
  })
})

describe('user names', () => {
  const fromQuery = (binder: SessionBinder, search: string) => {
    const into = new Set<string>()
    binder.queryUsernames(search, into)
    return [...into].sort()
  }

  it('reads the field from the query however a server spells its key', () => {
    const { binder } = setup()
    for (const search of [
      '?username=bob',
      '?USERNAME=bob',
      '?UserName=bob',
      '?username[]=bob',
      '?username[0]=bob',
      '?[username]=bob',
      '?%5Busername%5D=bob',
      '?x=1&username=bob',
      '?x=1;username=bob',
      '?%20username=bob',
      '?username=bob&username=BOB',
    ]) {
      expect(fromQuery(binder, search), search).toEqual(['bob'])
    }
  })

  it('reads nothing from other keys, empty values or an empty query', () => {
    const { binder } = setup()
    for (const search of [
      '',
      '?',
      '?user=bob',
      '?usernames=bob',
      '?xusername=bob',
      '?user[name]=bob',
      '?username=',
      '?username=%20%20',
      '?q=username%3Dbob',
    ]) {
      expect(fromQuery(binder, search), search).toEqual([])
    }
  })

  it('keeps every different name: the login is then ambiguous', () => {
    const { binder } = setup()
    expect(fromQuery(binder, '?username=bob&username=alice')).toEqual(['alice', 'bob'])
  })

  it('compares names as the upstream does: case, blanks and full-width forms fold by default', () => {
    const { binder } = setup()
    const into = new Set<string>()
    for (const name of ['BOB', ' bob', 'bob ', 'ｂｏｂ', 'Ｂｏｂ', 'bob']) binder.addUsername(name, into)
    expect([...into]).toEqual(['bob'])
    binder.addUsername('', into)
    binder.addUsername('   ', into)
    expect([...into]).toEqual(['bob'])
    binder.addUsername('straße', into)
    binder.addUsername('STRASSE', into)
    expect([...into].sort()).toEqual(['bob', 'strasse'])
  })

  it('case-sensitive keeps case but folds blanks and full-width forms; exact keeps every spelling', () => {
    const names = (mode: string) => {
      const { binder } = setup(`${DEFAULT}\n  usernames: ${mode}`)
      const into = new Set<string>()
      for (const name of ['BOB', ' bob', 'ｂｏｂ', 'bob']) binder.addUsername(name, into)
      return [...into].sort()
    }
    expect(names('case-sensitive')).toEqual(['BOB', 'bob'])
    expect(names('exact')).toEqual([' bob', 'BOB', 'bob', 'ｂｏｂ'])
  })
})

describe('a login answered', () => {
  it('binds the session the upstream set to user:<name>', async () => {
    const { binder, boundTo } = setup()
    expect(await binder.loginAnswered(login(['mallory']), 303, 'JSESSIONID=s-new; Path=/; HttpOnly', T0)).toBe(
      'user:mallory',
    )
    expect(await boundTo('s-new')).toBe('user:mallory')
  })

  it('finds the session cookie among several Set-Cookie headers, its value as servers read it', async () => {
    const { binder, boundTo } = setup()
    const headers = ['theme=dark; Path=/', 'JSESSIONID=; Path=/other', 'JSESSIONID="s%2Dnew"; Path=/; HttpOnly']
    expect(await binder.loginAnswered(login(['mallory']), 200, headers, T0)).toBe('user:mallory')
    expect(await boundTo('s-new')).toBe('user:mallory')
  })

  // Known gap, pinned: requests' cookie names are read case-insensitively (src/http/cookies.ts
  // cookieName), the Set-Cookie of a login is compared exactly. An upstream that sets
  // `jsessionid` for a config naming `JSESSIONID` gets the request's old session bound and the
  // new one left unbound (a fresh budget). When fixed this test fails: drop the `.fails`.
  it('finds the session cookie whatever the case of its name', async () => {
    const { binder, boundTo } = setup()
    expect(await binder.loginAnswered(login(['mallory'], 's-old'), 200, 'jsessionid=s-new', T0)).toBe('user:mallory')
    expect(await boundTo('s-new')).toBe('user:mallory')
  })

  it('binds the session the request carried when the upstream set none (a login that keeps its session id)', async () => {
    const { binder, boundTo } = setup()
    expect(await binder.loginAnswered(login(['mallory'], 's-old'), 200, undefined, T0)).toBe('user:mallory')
    expect(await boundTo('s-old')).toBe('user:mallory')
    // A cookie the upstream did set wins over the request's.
    expect(await binder.loginAnswered(login(['alice'], 's-kept'), 200, ['other=1', 'JSESSIONID=s-alice'], T0)).toBe(
      'user:alice',
    )
    expect(await boundTo('s-alice')).toBe('user:alice')
    expect(await boundTo('s-kept')).toBeUndefined()
  })

  it('binds the client address account, not a user, when the login named several users', async () => {
    const { binder, boundTo, logged } = setup()
    expect(await binder.loginAnswered(login(['mallory', 'alice']), 200, 'JSESSIONID=s-amb', T0)).toBe('ip:10.0.0.7')
    expect(await boundTo('s-amb')).toBe('ip:10.0.0.7')
    expect(logged).toEqual([
      expect.objectContaining({
        level: 'warn',
        obj: expect.objectContaining({
          event: 'sluice.session',
          outcome: 'ambiguous',
          usernames: 2,
          account: 'ip:10.0.0.7',
        }),
      }),
    ])
    expect(JSON.stringify(logged)).not.toMatch(/mallory|alice/)
  })

  it('binds nothing on a failed login', async () => {
    const { binder, boundTo } = setup()
    for (const status of [400, 401, 403, 404, 500, 502, 101]) {
      expect(
        await binder.loginAnswered(login(['mallory'], 's-old'), status, `JSESSIONID=s-${status}`, T0),
        String(status),
      ).toBeNull()
      expect(await boundTo(`s-${status}`)).toBeUndefined()
    }
    expect(await boundTo('s-old')).toBeUndefined()
  })

  it('takes success from successStatus when configured', async () => {
    const { binder, boundTo } = setup(`
  login: { path: /login, usernameField: username, cookie: JSESSIONID, successStatus: [302] }`)
    expect(await binder.loginAnswered(login(['mallory']), 200, 'JSESSIONID=s-200', T0)).toBeNull() // the form shown again
    expect(await boundTo('s-200')).toBeUndefined()
    expect(await binder.loginAnswered(login(['mallory']), 302, 'JSESSIONID=s-302', T0)).toBe('user:mallory')
  })

  it('binds nothing when the upstream clears the cookie (Max-Age=0, or Expires in the past)', async () => {
    const { binder, boundTo } = setup()
    expect(await binder.loginAnswered(login(['mallory'], 's-old'), 200, 'JSESSIONID=gone; Max-Age=0', T0)).toBeNull()
    expect(await binder.loginAnswered(login(['mallory'], 's-old'), 200, 'JSESSIONID=gone; Max-Age=-1', T0)).toBeNull()
    expect(
      await binder.loginAnswered(
        login(['mallory'], 's-old'),
        200,
        `JSESSIONID=gone; Expires=${new Date(T0 - 1000).toUTCString()}`,
        T0,
      ),
    ).toBeNull()
    expect(await boundTo('gone')).toBeUndefined()
    expect(await boundTo('s-old')).toBeUndefined()
  })

  it('binds nothing without any session, and says so once', async () => {
    const { binder, logged, store } = setup()
    const spy = vi.spyOn(store, 'bindSession')
    expect(await binder.loginAnswered(login(['mallory']), 200, undefined, T0)).toBeNull()
    expect(await binder.loginAnswered(login(['mallory']), 200, ['other=1'], T0)).toBeNull()
    expect(await binder.loginAnswered(login(['mallory']), 200, 'JSESSIONID=', T0)).toBeNull()
    expect(spy).not.toHaveBeenCalled()
    expect(logged).toHaveLength(1)
    expect(logged[0]).toMatchObject({
      level: 'warn',
      obj: { event: 'sluice.session', cookie: 'JSESSIONID', status: 200 },
    })
    expect(logged[0]?.msg).toContain('logged once')
  })

  it('binds nothing when the login named no user', async () => {
    const { binder, boundTo } = setup()
    expect(await binder.loginAnswered(login([]), 200, 'JSESSIONID=s-anon', T0)).toBeNull()
    expect(await boundTo('s-anon')).toBeUndefined()
  })

  it('a binding lasts at least the configured ttl, or as long as the cookie says if longer', async () => {
    const { binder, store } = setup()
    const spy = vi.spyOn(store, 'bindSession')
    await binder.loginAnswered(login(['a']), 200, 'JSESSIONID=s1', T0)
    await binder.loginAnswered(login(['b']), 200, 'JSESSIONID=s2; Max-Age=60', T0)
    await binder.loginAnswered(login(['c']), 200, 'JSESSIONID=s3; Max-Age=86400', T0)
    await binder.loginAnswered(
      login(['d']),
      200,
      `JSESSIONID=s4; Expires=${new Date(T0 + 10 * HOUR).toUTCString()}`,
      T0,
    )
    expect(spy.mock.calls).toEqual([
      [sessionAccount('s1'), 'user:a', 8 * HOUR],
      [sessionAccount('s2'), 'user:b', 8 * HOUR],
      [sessionAccount('s3'), 'user:c', 24 * HOUR],
      [sessionAccount('s4'), 'user:d', 10 * HOUR],
    ])
  })

  it('the store keeps the binding for the ttl and no longer', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(T0)
    const { binder, boundTo } = setup()
    await binder.loginAnswered(login(['mallory']), 200, 'JSESSIONID=s-ttl', T0)
    vi.setSystemTime(T0 + 8 * HOUR - 1)
    expect(await boundTo('s-ttl')).toBe('user:mallory')
    vi.setSystemTime(T0 + 8 * HOUR)
    expect(await boundTo('s-ttl')).toBeUndefined()
  })

  it('re-login keeps the account: a new session binds to the same user', async () => {
    const { binder, boundTo } = setup()
    await binder.loginAnswered(login(['mallory']), 200, 'JSESSIONID=first', T0)
    await binder.loginAnswered(login(['mallory'], 'first'), 200, 'JSESSIONID=second', T0 + 1000)
    expect(await boundTo('first')).toBe('user:mallory')
    expect(await boundTo('second')).toBe('user:mallory')
    expect(await binder.resolve(sessionAccount('second'))).toBe('user:mallory')
    expect(await binder.resolve(sessionAccount('never-bound'))).toBeUndefined()
  })
})
