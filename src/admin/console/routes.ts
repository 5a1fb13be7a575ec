// The operators' web console on the admin listener (docs/console.md): server-rendered pages
// under /console, one script and one stylesheet from the same place, signed in with an admin
// token. Every read and every action goes through the JSON admin API (api.ts), so the console
// shows and does exactly what `sluice accounts …` does, audited the same way.
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { CompiledConfig } from '../../config/compile.js'
import type { AccountJson, AccountsFoundJson, AdminAction } from '../accounts.js'
import type { DecisionJson } from '../decisions.js'
import type { Metrics } from '../metrics.js'
import type { IncidentsJson, TokenMatcher } from '../server.js'
import { accountBody, accountsBody, confirmBody, CONTROLS, type Control } from './account.js'
import { adminCall, type AdminCall } from './api.js'
import { CONSOLE_CSS, CONSOLE_JS } from './assets.js'
import { configBody } from './config-page.js'
import { clearedCookie, csrfMatches, fromThisOrigin, secureHeaders, sessionCookie, sessionId } from './guard.js'
import { html, type Html } from './html.js'
import { incidentsBody, SINCE } from './incidents.js'
import { BASE, accountHref, layout, type Section } from './layout.js'
import { liveData, overviewBody, overviewData, tablesData } from './overview.js'
import { PressureCache } from './pressure.js'
import { DecisionRate } from './rate.js'
import { referenceBody } from './reference.js'
import { ConsoleSessions, SignInThrottle, type ConsoleSession } from './sessions.js'
import { signInBody } from './sign-in.js'

/** What the runtime gives the console (admin.console). */
export interface ConsoleOptions {
  /** How long a sign-in lasts (absolute, not renewed by use). */
  sessionTtlMs: number
  /** The config in force (follows reloads). */
  config: () => CompiledConfig
  /** When it was loaded or last reloaded (ms). */
  loadedAt: () => number
}

export interface ConsoleContext extends ConsoleOptions {
  metrics: Metrics
  clock: () => number
  /** The admin API's own token comparison. */
  matchToken: TokenMatcher
  /** The admin API's audit of an action (log line and audit trail). */
  act: (request: FastifyRequest, action: Omit<AdminAction, 'remoteAddress' | 'time'>) => void
  log?: FastifyBaseLogger
}

interface Rendered {
  title: string
  body: Html
  section?: Section
  status?: number
}

type Form = Record<string, string | undefined>

/** How often the decision counter is read between polls (a poll reads it too). */
const SAMPLE_EVERY_MS = 5000
/** The console's routes skip the admin API's bearer check: a session cookie is theirs. */
const OPEN = { config: { public: true } }

export async function registerConsole(app: FastifyInstance, ctx: ConsoleContext): Promise<void> {
  const sessions = new ConsoleSessions(ctx.sessionTtlMs, ctx.clock)
  const throttle = new SignInThrottle(ctx.clock)
  const rate = new DecisionRate(ctx.metrics, ctx.clock)
  // One listing of the accounts for every session, at most every 15 s (pressure.ts).
  const pressure = new PressureCache(ctx.clock)
  await rate.sample()
  const sampler = setInterval(() => void rate.sample(), SAMPLE_EVERY_MS).unref()
  app.addHook('onClose', async () => clearInterval(sampler))

  // Forms post urlencoded; only here (the JSON API takes JSON).
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 16_384 },
    (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
  )
  app.addHook('onRequest', async (_request, reply) => secureHeaders(reply))

  const signedIn = (request: FastifyRequest): { id: string; session: ConsoleSession } | undefined => {
    const id = sessionId(request)
    const session = sessions.get(id)
    return id !== undefined && session !== undefined ? { id, session } : undefined
  }
  const send = (reply: FastifyReply, session: ConsoleSession | null, r: Rendered) =>
    reply
      .code(r.status ?? 200)
      .header('cache-control', 'no-store')
      .type('text/html; charset=utf-8')
      .send(layout({ title: r.title, body: r.body, session, ...(r.section ? { section: r.section } : {}) }).text)
  const refuse = (request: FastifyRequest, reply: FastifyReply, status: number, why: string) => {
    ctx.log?.warn(
      { event: 'sluice.console.refused', remoteAddress: request.ip, method: request.method, url: request.url, why },
      'console request refused',
    )
    return send(reply, null, {
      title: 'Refused',
      status,
      body: html`<h1>Refused</h1>
        <p class="error" role="alert">${why}</p>
        <p><a href="${BASE}">Back to the console</a></p>`,
    })
  }

  /** A page for signed-in operators; anyone else goes to the sign-in form, and back after. */
  const page = (
    path: string,
    render: (request: FastifyRequest, s: ConsoleSession, call: AdminCall) => Promise<Rendered>,
  ) =>
    app.get(path, OPEN, async (request, reply) => {
      const s = signedIn(request)
      if (!s) return reply.redirect(`${BASE}/login?next=${encodeURIComponent(request.url)}`, 303)
      return send(reply, s.session, await render(request, s.session, adminCall(app, request, s.session)))
    })

  /** A state-changing form post: same origin, signed in, and the session's CSRF token. */
  const action = (
    path: string,
    handle: (
      request: FastifyRequest,
      reply: FastifyReply,
      s: { id: string; session: ConsoleSession },
      form: Form,
    ) => Promise<FastifyReply>,
  ) =>
    app.post(path, OPEN, async (request, reply) => {
      if (!fromThisOrigin(request)) return refuse(request, reply, 403, 'This request came from another site.')
      const s = signedIn(request)
      if (!s) return refuse(request, reply, 401, 'Your sign-in has expired: sign in again.')
      const form = formOf(request)
      if (!csrfMatches(form.csrf, s.session.csrf))
        return refuse(request, reply, 403, 'The form has no valid CSRF token: reload the page and try again.')
      return handle(request, reply, s, form)
    })

  app.get(`${BASE}/console.css`, OPEN, async (_request, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'max-age=300').send(CONSOLE_CSS),
  )
  app.get(`${BASE}/console.js`, OPEN, async (_request, reply) =>
    reply.type('application/javascript; charset=utf-8').header('cache-control', 'max-age=300').send(CONSOLE_JS),
  )

  app.get(`${BASE}/login`, OPEN, async (request, reply) => {
    const next = safeNext(queryOf(request).next)
    if (signedIn(request)) return reply.redirect(next, 303)
    return send(reply, null, { title: 'Sign in', body: signInBody(next, undefined) })
  })

  app.post(`${BASE}/login`, OPEN, async (request, reply) => {
    if (!fromThisOrigin(request)) return refuse(request, reply, 403, 'This request came from another site.')
    const form = formOf(request)
    const next = safeNext(form.next)
    const wait = throttle.waitMs(request.ip)
    if (wait > 0) {
      // Logged, not audited: past the limit, a caller without a token must not be able to fill the trail.
      ctx.log?.warn({ event: 'sluice.console.throttled', remoteAddress: request.ip }, 'console sign-in throttled')
      void reply.header('retry-after', String(Math.ceil(wait / 1000)))
      const minutes = Math.ceil(wait / 60_000)
      return send(reply, null, {
        title: 'Sign in',
        status: 429,
        body: signInBody(
          next,
          `Too many wrong tokens from your address: try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`,
        ),
      })
    }
    const token = form.token ?? ''
    const named = operatorName(form.operator)
    const match = token === '' ? undefined : ctx.matchToken(token)
    if (match === undefined) {
      throttle.fail(request.ip)
      ctx.act(request, { action: 'sign-in', result: 'refused', ...(named !== undefined ? { operator: named } : {}) })
      return send(reply, null, { title: 'Sign in', status: 401, body: signInBody(next, 'That is not an admin token.') })
    }
    throttle.succeed(request.ip)
    const operator = named ?? match.name ?? 'operator'
    const { id } = sessions.open({ token, tokenName: match.name, operator })
    ctx.act(request, {
      action: 'sign-in',
      result: 'signed-in',
      operator,
      ...(match.name !== undefined ? { tokenName: match.name } : {}),
    })
    return reply.header('set-cookie', sessionCookie(request, id, sessions.ttlMs)).redirect(next, 303)
  })

  action(`${BASE}/logout`, async (request, reply, s) => {
    sessions.close(s.id)
    ctx.act(request, {
      action: 'sign-out',
      result: 'signed-out',
      operator: s.session.operator,
      ...(s.session.tokenName !== undefined ? { tokenName: s.session.tokenName } : {}),
    })
    return reply.header('set-cookie', clearedCookie()).redirect(`${BASE}/login`, 303)
  })

  page(BASE, async (_request, _s, call) => ({
    title: 'Overview',
    section: 'overview',
    body: overviewBody(await overviewData(call, rate, pressure, ctx.clock())),
  }))

  // The overview's polls: the chart every 3 s (cheap: the last hour's minutes), the tables when
  // the shared listing may be renewed (the answer's nextMs).
  app.get(`${BASE}/live.json`, OPEN, async (request, reply) => {
    if (!signedIn(request)) return reply.code(401).header('cache-control', 'no-store').send({ error: 'sign in again' })
    return reply.header('cache-control', 'no-store').send(await liveData(rate, ctx.clock()))
  })
  app.get(`${BASE}/overview.json`, OPEN, async (request, reply) => {
    const s = signedIn(request)
    if (!s) return reply.code(401).header('cache-control', 'no-store').send({ error: 'sign in again' })
    const data = await tablesData(adminCall(app, request, s.session), pressure)
    return reply.header('cache-control', 'no-store').send(data)
  })

  page(`${BASE}/accounts`, async (request, _s, call) => {
    const find = queryOf(request).find?.trim()
    if (find) {
      const found = await call<AccountsFoundJson>('GET', `/accounts?find=${encodeURIComponent(find)}`)
      // One match: straight to it, as an operator pasting an id expects.
      if (found.problem === undefined && found.body.accounts.length === 1 && found.body.accounts[0] === find)
        return accountPage(call, find, undefined)
      return { title: 'Accounts', section: 'accounts', ...problemOr(found, (f) => accountsBody(undefined, f)) }
    }
    const { answer, at } = await pressure.get(call)
    return { title: 'Accounts', section: 'accounts', ...problemOr(answer, (l) => accountsBody(l, undefined, at)) }
  })

  const accountPage = async (call: AdminCall, account: string, done: Control | undefined): Promise<Rendered> => {
    const a = await call<AccountJson>('GET', `/accounts/${encodeURIComponent(account)}`)
    return { title: account, section: 'accounts', ...problemOr(a, (json) => accountBody(json, done)) }
  }

  page(`${BASE}/accounts/:account`, async (request, _s, call) => {
    const done = queryOf(request).done
    return accountPage(
      call,
      accountParam(request),
      CONTROLS.find((c) => c === done),
    )
  })

  page(`${BASE}/accounts/:account/confirm`, async (request, s) => {
    const control = CONTROLS.find((c) => c === queryOf(request).do)
    const account = accountParam(request)
    if (control === undefined)
      return {
        title: 'Confirm',
        status: 400,
        body: html`<p class="error">Unknown control: unlock, reset or disable.</p>`,
      }
    return { title: `${control} ${account}`, section: 'accounts', body: confirmBody(account, control, s.csrf) }
  })

  action(`${BASE}/accounts/:account/act`, async (request, reply, s, form) => {
    const account = accountParam(request)
    const control = CONTROLS.find((c) => c === form.do)
    if (control === undefined) return refuse(request, reply, 400, 'Unknown control: unlock, reset or disable.')
    const reason = (form.reason ?? '').trim()
    const again = (status: number, error: string) =>
      send(reply, s.session, {
        title: control,
        section: 'accounts',
        status,
        body: confirmBody(account, control, s.session.csrf, error),
      })
    let url = `/accounts/${encodeURIComponent(account)}/${control}`
    if (control === 'disable') {
      if (reason === '') return again(400, 'Give a reason: it goes to the audit trail with your name.')
      const span = (form.for ?? '').trim()
      url += `?${span === 'forever' ? 'forever=true' : `for=${encodeURIComponent(span)}`}&reason=${encodeURIComponent(reason)}`
    }
    const answer = await adminCall(app, request, s.session)('POST', url, reason)
    if (answer.problem !== undefined) return again(answer.status, answer.problem)
    // The operator sees their action on the next overview or accounts page, not 15 s later.
    pressure.drop()
    return reply.redirect(`${accountHref(account)}?done=${control}`, 303)
  })

  page(`${BASE}/decisions`, async (request, _s, call) => {
    const ref = (queryOf(request).ref ?? '').trim()
    if (ref === '')
      return { title: 'Reference lookup', section: 'reference', body: referenceBody('', undefined, undefined) }
    const found = await call<DecisionJson>('GET', `/decisions/${encodeURIComponent(ref)}`)
    return {
      title: `Reference ${ref}`,
      section: 'reference',
      status: found.status,
      body: referenceBody(ref, found.problem === undefined ? found.body : undefined, found.problem),
    }
  })

  page(`${BASE}/incidents`, async (request, _s, call) => {
    const q = queryOf(request)
    const since = SINCE.find((s) => s === q.since) ?? '24h'
    const data = await call<IncidentsJson>('GET', `/incidents?limit=1000&since=${since}`)
    const routes = [...new Set(ctx.config().routes.map((r) => r.name))]
    const filter = {
      since,
      ...(q.route ? { route: q.route } : {}),
      ...(q.decision ? { decision: q.decision } : {}),
    }
    return { title: 'Incidents', section: 'incidents', ...problemOr(data, (d) => incidentsBody(d, filter, routes)) }
  })

  page(`${BASE}/config`, async () => ({
    title: 'Config',
    section: 'config',
    body: configBody(ctx.config(), ctx.loadedAt()),
  }))

  page(`${BASE}/*`, async () => ({
    title: 'Not found',
    status: 404,
    body: html`<h1>No such page</h1>
      <p><a href="${BASE}">Back to the overview</a></p>`,
  }))
}

/** The page body, or the admin API's refusal (an unknown account, the store down) with its status. */
function problemOr<T>(
  answer: { status: number; body: T; problem?: string },
  body: (t: T) => Html,
): Pick<Rendered, 'body' | 'status'> {
  if (answer.problem === undefined) return { body: body(answer.body) }
  return {
    status: answer.status,
    body: html`<h1>Not shown</h1>
      <p class="error" role="alert">${answer.problem}</p>`,
  }
}

function queryOf(request: FastifyRequest): Form {
  const out: Form = {}
  for (const [k, v] of Object.entries((request.query ?? {}) as Record<string, unknown>))
    if (typeof v === 'string') out[k] = v
  return out
}

function formOf(request: FastifyRequest): Form {
  const body = request.body
  if (body === null || typeof body !== 'object') return {}
  const out: Form = {}
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) if (typeof v === 'string') out[k] = v
  return out
}

function accountParam(request: FastifyRequest): string {
  return String((request.params as { account?: unknown }).account ?? '')
}

/** Where to go after signing in: a console page, never another site (`//evil.example`). */
function safeNext(next: string | undefined): string {
  return next !== undefined && /^\/console(?:[/?][^\\]*)?$/.test(next) && !next.includes('//') ? next : BASE
}

/** The name an operator typed: one line, at most 100 characters; undefined when empty. */
function operatorName(text: string | undefined): string | undefined {
  // eslint-disable-next-line no-control-regex
  const controls = /[\u0000-\u001f\u007f-\u009f]/g
  const name = (text ?? '').replace(controls, ' ').trim().slice(0, 100)
  return name === '' ? undefined : name
}
