// The responses a client sees when sluice stops a request (src/actions/respond.ts), as data: no
// server. API clients get RFC 9457 problem+json, browsers a short page; neither is cached, a
// Retry-After goes with whatever says when to come back, and nothing names the limit.
import type { Challenge } from 'altcha-lib'
import { describe, expect, it } from 'vitest'
import { SOLUTION_COOKIE, SOLUTION_HEADER } from '../../src/actions/challenge.js'
import {
  badRequest,
  busy,
  disabled,
  PROBLEM_TYPE_BASE,
  renderChallenge,
  renderProblem,
  throttled,
  unavailable,
  uninspectable,
  type Problem,
} from '../../src/actions/respond.js'

const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'
const API = 'application/json'

const json = (body: string) => JSON.parse(body) as Record<string, unknown>

describe('renderProblem', () => {
  const problem: Problem = {
    kind: 'throttled',
    status: 429,
    title: 'Too Many Requests',
    detail: 'Slow down.',
    retryAfterSec: 7,
  }

  it('answers an API client with problem+json: type, title, status, detail and retryAfter', () => {
    const r = renderProblem(API, problem)
    expect(r.status).toBe(429)
    expect(r.headers).toEqual({
      'cache-control': 'no-store',
      'retry-after': '7',
      'content-type': 'application/problem+json',
    })
    expect(json(r.body)).toEqual({
      type: `${PROBLEM_TYPE_BASE}throttled`,
      title: 'Too Many Requests',
      status: 429,
      detail: 'Slow down.',
      retryAfter: 7,
    })
  })

  it('picks the format by Accept: JSON unless text/html ranks above JSON', () => {
    const html = (accept: string | undefined) => renderProblem(accept, problem).headers['content-type']
    expect(html(BROWSER)).toBe('text/html; charset=utf-8')
    expect(html('text/html')).toBe('text/html; charset=utf-8')
    expect(html('application/json;q=0.5, text/html')).toBe('text/html; charset=utf-8')
    for (const accept of [
      undefined,
      '',
      API,
      '*/*',
      'application/problem+json',
      'text/html;q=0.5, application/json',
      'text/html;q=0.8, */*',
    ]) {
      expect(html(accept), String(accept)).toBe('application/problem+json')
    }
  })

  it('gives a browser a page with the title and detail, the same status and headers', () => {
    const r = renderProblem(BROWSER, problem)
    expect(r.status).toBe(429)
    expect(r.headers).toEqual({
      'cache-control': 'no-store',
      'retry-after': '7',
      'content-type': 'text/html; charset=utf-8',
    })
    expect(r.body).toMatch(/^<!doctype html>/)
    expect(r.body).toContain('<title>429 Too Many Requests</title>')
    expect(r.body).toContain('<h1>Too Many Requests</h1>')
    expect(r.body).toContain('<p>Slow down.</p>')
  })

  it('sends no Retry-After (header or field) when the problem has none', () => {
    const noRetry = badRequest('no')
    for (const accept of [API, BROWSER]) {
      const r = renderProblem(accept, noRetry)
      expect(r.headers['cache-control']).toBe('no-store')
      expect(r.headers).not.toHaveProperty('retry-after')
    }
    expect(json(renderProblem(API, noRetry).body)).not.toHaveProperty('retryAfter')
  })

  it('escapes the title and detail on the page: text from a request cannot become markup', () => {
    const hostile = badRequest(`<script>alert("x")</script> & 'quoted'`)
    const body = renderProblem(BROWSER, { ...hostile, title: '<b>Bad</b>' }).body
    expect(body).not.toContain('<script>')
    expect(body).not.toContain('<b>')
    expect(body).toContain('<p>&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; &#39;quoted&#39;</p>')
    expect(body).toContain('<h1>&#60;b&#62;Bad&#60;/b&#62;</h1>')
    // In JSON the text stays as it is (JSON.stringify is the escaping there).
    expect(json(renderProblem(API, hostile).body).detail).toBe(`<script>alert("x")</script> & 'quoted'`)
  })

  it('adds the extra fields to the JSON body', () => {
    expect(json(renderProblem(API, disabled(), { until: 'later' }).body)).toMatchObject({
      type: `${PROBLEM_TYPE_BASE}disabled`,
      until: 'later',
    })
  })
})

describe('the problems', () => {
  it('throttled: 429 with the wait in whole seconds, at least one', () => {
    expect(throttled(30_000)).toEqual({
      kind: 'throttled',
      status: 429,
      title: 'Too Many Requests',
      detail: 'Too many requests from this account. Try again in 30 seconds.',
      retryAfterSec: 30,
    })
    expect(throttled(1500).retryAfterSec).toBe(2)
    expect(throttled(1).retryAfterSec).toBe(1)
    expect(throttled(0).retryAfterSec).toBe(1)
    expect(throttled(-5).retryAfterSec).toBe(1)
    expect(renderProblem(API, throttled(2001)).headers['retry-after']).toBe('3')
  })

  it('disabled: 403, no Retry-After (the account does not come back by waiting)', () => {
    expect(disabled()).toMatchObject({ kind: 'disabled', status: 403, title: 'Account disabled' })
    expect(disabled().retryAfterSec).toBeUndefined()
  })

  it('unavailable: 503, come back in 5 s; busy: 503, come back in 1 s', () => {
    expect(unavailable()).toMatchObject({
      kind: 'store-unavailable',
      status: 503,
      title: 'Service Unavailable',
      retryAfterSec: 5,
    })
    expect(busy()).toMatchObject({ kind: 'busy', status: 503, title: 'Service Unavailable', retryAfterSec: 1 })
    expect(renderProblem(API, unavailable()).headers['retry-after']).toBe('5')
    expect(json(renderProblem(API, busy()).body)).toMatchObject({
      type: `${PROBLEM_TYPE_BASE}busy`,
      status: 503,
      retryAfter: 1,
    })
  })

  it('badRequest: 400 with the given detail', () => {
    expect(badRequest('two sessions')).toEqual({
      kind: 'bad-request',
      status: 400,
      title: 'Bad Request',
      detail: 'two sessions',
    })
  })

  it('uninspectable: the status asked for, titled after it', () => {
    expect(uninspectable(413, 'too big')).toEqual({
      kind: 'uninspectable',
      status: 413,
      title: 'Content Too Large',
      detail: 'too big',
    })
    expect(uninspectable(415, 'x').title).toBe('Unsupported Media Type')
    expect(uninspectable(400, 'x').title).toBe('Bad Request')
    expect(uninspectable(502, 'x').title).toBe('Bad Gateway')
    expect(json(renderProblem(API, uninspectable(502, 'x')).body)).toMatchObject({
      type: `${PROBLEM_TYPE_BASE}uninspectable`,
      status: 502,
    })
  })

  it('no problem names a limit or a count', () => {
    for (const p of [throttled(10_000), disabled(), unavailable(), busy()]) {
      expect(p.detail).not.toMatch(/limit|window|distinct|record|\d+ of \d+/i)
    }
  })
})

describe('renderChallenge', () => {
  // The shape altcha-lib's createChallenge returns; a data field carries a script end tag.
  const challenge = {
    parameters: {
      algorithm: 'SHA-256',
      nonce: '00112233445566778899aabbccddeeff',
      salt: 'ffeeddccbbaa99887766554433221100',
      cost: 1,
      keyLength: 32,
      keyPrefix: '0123456789abcdef0123456789abcdef',
      data: { account: 'tag', limit: 'contact#0', note: '</script><script>alert(1)</script>' },
    },
    signature: 'c2lnbmF0dXJl',
  } satisfies Challenge

  it('answers an API client with a 429 problem carrying the challenge and how to answer it', () => {
    const r = renderChallenge(API, challenge)
    expect(r.status).toBe(429)
    expect(r.headers).toEqual({ 'cache-control': 'no-store', 'content-type': 'application/problem+json' })
    const body = json(r.body)
    expect(body).toMatchObject({
      type: `${PROBLEM_TYPE_BASE}challenge`,
      status: 429,
      title: 'Proof of work required',
      challenge,
    })
    expect(body.detail).toContain(SOLUTION_HEADER)
    expect(body.solution).toMatchObject({ header: SOLUTION_HEADER, format: expect.stringContaining('solveChallenge') })
    expect(body).not.toHaveProperty('solutionRejected')
    expect(body).not.toHaveProperty('retryAfter')
  })

  it('says why a submitted solution was refused', () => {
    expect(json(renderChallenge(API, challenge, 'replayed').body).solutionRejected).toBe('replayed')
    expect(json(renderChallenge(API, challenge, '').body)).not.toHaveProperty('solutionRejected')
  })

  it('gives a browser the page that solves it, with the challenge embedded and unable to close its script', () => {
    const r = renderChallenge(BROWSER, challenge, 'expired')
    expect(r.status).toBe(429)
    expect(r.headers).toEqual({ 'cache-control': 'no-store', 'content-type': 'text/html; charset=utf-8' })
    expect(r.body).toMatch(/^<!doctype html>/)
    const embedded = /<script type="application\/json" id="sluice-challenge">(.*?)<\/script>/s.exec(r.body)?.[1]
    expect(embedded).toBeDefined()
    expect(JSON.parse(embedded as string)).toEqual(challenge)
    expect(embedded).not.toContain('</script>')
    expect(embedded).toContain('\\u003c/script>')
    // The page stores its solution in the cookie sluice reads.
    expect(r.body).toContain(`${SOLUTION_COOKIE}=`)
    expect(r.body).not.toContain('expired')
  })
})
