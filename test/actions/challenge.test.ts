// The challenge action (src/actions/challenge.ts) without a server: challenges issued, solved
// with altcha-lib as an API client would, and verified against a real memory store; passes
// granted, read back and spent. The clock is the `now` each call takes.
import { solveChallenge, type Challenge } from 'altcha-lib'
import { deriveKey } from 'altcha-lib/algorithms/sha'
import { describe, expect, it } from 'vitest'
import { Challenges, type HeldPass } from '../../src/actions/challenge.js'
import type { ChallengeConfig } from '../../src/config/compile.js'
import { buildPolicy, type Limit, type RoutePolicy } from '../../src/engine/policy.js'
import { MemoryStore } from '../../src/store/memory.js'

const CONFIG: ChallengeConfig = {
  difficulty: 400,
  validForMs: 600_000,
  grants: 3,
  timeoutMs: 300_000,
  secret: 'test-challenge-secret-0123456789',
}
const T0 = 1_700_000_000_000

// contact#0 challenges on records, contact#1 on requests, contact#2 disables.
const contact = buildPolicy(
  'contact',
  [
    { kind: 'distinctRecords', windowMs: 600_000, max: 5, action: 'challenge' },
    { kind: 'requests', windowMs: 60_000, max: 10, action: 'challenge' },
    { kind: 'distinctRecords', windowMs: 600_000, max: 30, action: 'disable' },
  ],
  false,
)
const invoice = buildPolicy(
  'invoice',
  [{ kind: 'distinctRecords', windowMs: 600_000, max: 2, action: 'challenge' }],
  false,
)
const [records, requests, disable] = contact.limits as [Limit, Limit, Limit]

const ALICE = 'basic:alice#1'
const BOB = 'basic:bob#2'

function setup(config: Partial<ChallengeConfig> = {}) {
  const store = new MemoryStore({ maxAccounts: 100 })
  return { store, challenges: new Challenges({ ...CONFIG, ...config }, store) }
}

async function solution(challenge: Challenge): Promise<{ counter: number; derivedKey: string }> {
  const s = await solveChallenge({ challenge, deriveKey })
  if (!s) throw new Error('no solution found')
  return { counter: s.counter, derivedKey: s.derivedKey }
}

/** The `Sluice-Solution` header value: base64 of the ALTCHA v2 payload. */
const encode = (payload: unknown) => Buffer.from(JSON.stringify(payload)).toString('base64')

async function solved(
  challenges: Challenges,
  account: string,
  limit: Limit,
  now = T0,
): Promise<{ challenge: Challenge; answer: string; counter: number }> {
  const challenge = await challenges.issue(account, limit, now)
  const s = await solution(challenge)
  return { challenge, answer: encode({ challenge, solution: s }), counter: s.counter }
}

describe('a challenge, solved and verified', () => {
  it('issues a signed SHA-256 challenge bound to the account tag, the limit and an expiry in our clock', async () => {
    const { challenges } = setup()
    const c = await challenges.issue(ALICE, records, T0)
    expect(c.parameters.algorithm).toBe('SHA-256')
    expect(typeof c.signature).toBe('string')
    expect(c.parameters.data).toEqual({
      account: challenges.tag(ALICE),
      limit: 'contact#0',
      expires: T0 + CONFIG.timeoutMs,
    })
    // The tag stands for the account without naming it.
    expect(JSON.stringify(c)).not.toContain('alice')
    expect(challenges.tag(ALICE)).not.toBe(challenges.tag(BOB))
    expect(challenges.tag(ALICE)).toHaveLength(22)
  })

  it('a solution for this account and route verifies, and names the limit', async () => {
    const { challenges } = setup()
    const { answer } = await solved(challenges, ALICE, records)
    expect(await challenges.verify(answer, ALICE, contact, T0 + 1000)).toEqual({ ok: true, limit: records })
  })

  it('is single use: the same solution again is replayed', async () => {
    const { challenges } = setup()
    const { answer } = await solved(challenges, ALICE, requests)
    expect(await challenges.verify(answer, ALICE, contact, T0)).toMatchObject({ ok: true, limit: requests })
    expect(await challenges.verify(answer, ALICE, contact, T0 + 1)).toEqual({ ok: false, reason: 'replayed' })
  })

  it('is single use across instances sharing the store', async () => {
    const { store, challenges } = setup()
    const other = new Challenges(CONFIG, store)
    const { answer } = await solved(challenges, ALICE, records)
    expect((await other.verify(answer, ALICE, contact, T0)).ok).toBe(true)
    expect(await challenges.verify(answer, ALICE, contact, T0)).toEqual({ ok: false, reason: 'replayed' })
  })

  it('expires `timeout` after it was issued', async () => {
    const { challenges } = setup()
    const { answer } = await solved(challenges, ALICE, records)
    expect(await challenges.verify(answer, ALICE, contact, T0 + CONFIG.timeoutMs)).toEqual({
      ok: false,
      reason: 'expired',
    })
    expect(await challenges.verify(answer, ALICE, contact, T0 + CONFIG.timeoutMs - 1)).toMatchObject({ ok: true })
  })

  it("refuses another account's solution, and the refusal does not spend it", async () => {
    const { challenges } = setup()
    const { answer } = await solved(challenges, ALICE, records)
    expect(await challenges.verify(answer, BOB, contact, T0)).toEqual({ ok: false, reason: 'other-account' })
    expect(await challenges.verify(answer, ALICE, contact, T0)).toMatchObject({ ok: true })
  })

  it("refuses a solution for another route's limit, or for a limit that does not challenge", async () => {
    const { challenges } = setup()
    const other = await solved(challenges, ALICE, invoice.limits[0] as Limit)
    expect(await challenges.verify(other.answer, ALICE, contact, T0)).toEqual({ ok: false, reason: 'wrong-route' })
    expect(await challenges.verify(other.answer, ALICE, invoice, T0)).toMatchObject({
      ok: true,
      limit: invoice.limits[0],
    })
    const disabling = await solved(challenges, ALICE, disable)
    expect(await challenges.verify(disabling.answer, ALICE, contact, T0)).toEqual({ ok: false, reason: 'wrong-route' })
  })

  it('refuses a wrong solution, altered data and a challenge signed with another secret as forged', async () => {
    const { challenges } = setup()
    const challenge = await challenges.issue(ALICE, records, T0)
    const right = await solution(challenge)
    const wrongKey = right.derivedKey.replace(/^./, (c) => (c === '0' ? '1' : '0'))
    expect(
      await challenges.verify(encode({ challenge, solution: { ...right, derivedKey: wrongKey } }), ALICE, contact, T0),
    ).toEqual({ ok: false, reason: 'forged' })
    // (The counter itself is not checked: altcha-lib checks the derived key against the key
    // signature, and the key is what takes the work to find.)
    // A longer expiry, or bob's tag, written into a challenge alice solved.
    const later = {
      ...challenge,
      parameters: {
        ...challenge.parameters,
        data: { ...challenge.parameters.data, expires: T0 + 10 * CONFIG.timeoutMs },
      },
    }
    expect(
      await challenges.verify(encode({ challenge: later, solution: right }), ALICE, contact, T0 + CONFIG.timeoutMs),
    ).toEqual({ ok: false, reason: 'forged' })
    const asBob = {
      ...challenge,
      parameters: { ...challenge.parameters, data: { ...challenge.parameters.data, account: challenges.tag(BOB) } },
    }
    expect(await challenges.verify(encode({ challenge: asBob, solution: right }), BOB, contact, T0)).toEqual({
      ok: false,
      reason: 'forged',
    })

    const elsewhere = setup({ secret: 'another-deployment-secret-000000' }).challenges
    const theirs = await solved(elsewhere, ALICE, records)
    expect(await challenges.verify(theirs.answer, ALICE, contact, T0)).toEqual({ ok: false, reason: 'forged' })
    // None of these spent alice's real solution.
    expect(await challenges.verify(encode({ challenge, solution: right }), ALICE, contact, T0)).toMatchObject({
      ok: true,
    })
  })

  it('refuses what is not a payload as malformed', async () => {
    const { challenges } = setup()
    const challenge = await challenges.issue(ALICE, records, T0)
    const right = await solution(challenge)
    const malformed = [
      '%%% not base64 %%%',
      Buffer.from('{"challenge":').toString('base64'),
      encode([]),
      encode({ solution: right }),
      encode({ challenge }),
      encode({ challenge: { parameters: challenge.parameters }, solution: right }),
      encode({ challenge, solution: { counter: String(right.counter), derivedKey: right.derivedKey } }),
      encode({ challenge, solution: { counter: right.counter } }),
    ]
    for (const m of malformed)
      expect(await challenges.verify(m, ALICE, contact, T0), m).toEqual({ ok: false, reason: 'malformed' })
  })

  // Known defect, pinned: `Sluice-Solution: bnVsbA==` (base64 of JSON `null`) makes verify throw
  // (destructuring null) instead of answering malformed, so the request fails instead of being
  // challenged. When verify is fixed this test fails: drop the `.fails`.
  it('refuses a JSON null payload as malformed', async () => {
    const { challenges } = setup()
    expect(await challenges.verify(encode(null), ALICE, contact, T0)).toEqual({ ok: false, reason: 'malformed' })
  })

  it('says store-unavailable when the solution cannot be claimed, and the solution stays good', async () => {
    const { store, challenges } = setup()
    const { answer } = await solved(challenges, ALICE, records)
    const claimOnce = store.claimOnce.bind(store)
    store.claimOnce = () => {
      throw new Error('store down')
    }
    expect(await challenges.verify(answer, ALICE, contact, T0)).toEqual({ ok: false, reason: 'store-unavailable' })
    store.claimOnce = claimOnce
    expect(await challenges.verify(answer, ALICE, contact, T0)).toMatchObject({ ok: true })
  })
})

describe('difficulty', () => {
  // The solver must find the issued counter: in [max/2, max], max = difficulty × 2^solves.
  const inRange = (counter: number, solves: number) => {
    const max = CONFIG.difficulty * 2 ** solves
    expect(counter, `after ${solves} solves`).toBeGreaterThanOrEqual(Math.ceil(max / 2))
    expect(counter, `after ${solves} solves`).toBeLessThanOrEqual(max)
  }

  it('doubles with every solve of that account and limit, and only theirs', async () => {
    const { challenges } = setup()
    for (let solves = 0; solves < 3; solves++) {
      const { answer, counter } = await solved(challenges, ALICE, records)
      inRange(counter, solves)
      expect((await challenges.verify(answer, ALICE, contact, T0)).ok).toBe(true)
    }
    inRange((await solved(challenges, ALICE, records)).counter, 3)
    // Another account, or another limit of the same account: still the base difficulty.
    inRange((await solved(challenges, BOB, records)).counter, 0)
    inRange((await solved(challenges, ALICE, requests)).counter, 0)
  })

  it('does not grow with refused solutions', async () => {
    const { challenges } = setup()
    const { answer } = await solved(challenges, ALICE, records)
    expect((await challenges.verify(answer, ALICE, contact, T0)).ok).toBe(true)
    for (let i = 0; i < 3; i++) expect((await challenges.verify(answer, ALICE, contact, T0)).ok).toBe(false)
    expect((await challenges.verify(answer, BOB, contact, T0)).ok).toBe(false)
    inRange((await solved(challenges, ALICE, records)).counter, 1)
  })

  it('is the base difficulty when the store cannot count solves', async () => {
    const { store, challenges } = setup()
    for (let i = 0; i < 2; i++)
      expect((await challenges.verify((await solved(challenges, ALICE, records)).answer, ALICE, contact, T0)).ok).toBe(
        true,
      )
    store.count = () => {
      throw new Error('store down')
    }
    inRange((await solved(challenges, ALICE, records)).counter, 0)
  })
})

describe('passes', () => {
  it('a granted pass names its limit for that account, on that route, until validFor ends', () => {
    const { challenges } = setup()
    const { token, pass } = challenges.grant(undefined, ALICE, records, T0)
    expect(pass).toMatchObject({ index: 0, kind: 'distinctRecords', id: expect.any(String) })
    expect(challenges.passes(token, ALICE, contact, T0)).toEqual([pass])
    expect(challenges.passes(token, ALICE, contact, T0 + CONFIG.validForMs - 1)).toEqual([pass])
    expect(challenges.passes(token, ALICE, contact, T0 + CONFIG.validForMs)).toEqual([])
    expect(challenges.passes(token, BOB, contact, T0)).toEqual([])
    expect(challenges.passes(token, ALICE, invoice, T0)).toEqual([])
  })

  it('a pass token does not carry the account name', () => {
    const { challenges } = setup()
    const { token } = challenges.grant(undefined, ALICE, records, T0)
    const body = Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString('utf8')
    expect(body).not.toContain('alice')
    expect(JSON.parse(body)).toMatchObject({ a: challenges.tag(ALICE) })
  })

  it('reads nothing from a missing, altered or foreign token', () => {
    const { challenges } = setup()
    const { token } = challenges.grant(undefined, ALICE, records, T0)
    const [body, mac] = token.split('.') as [string, string]
    const reworded = Buffer.from(
      Buffer.from(body, 'base64url')
        .toString('utf8')
        .replace(/"contact#0":\[\d+/, `"contact#0":[${T0 * 2}`),
    ).toString('base64url')
    expect(reworded).not.toBe(body)
    const foreign = setup({ secret: 'another-deployment-secret-000000' }).challenges.grant(
      undefined,
      ALICE,
      records,
      T0,
    ).token
    for (const bad of [
      undefined,
      '',
      body,
      `${body}.`,
      `.${mac}`,
      `${reworded}.${mac}`,
      `${body}.${mac.slice(1)}`,
      `${body}x.${mac}`,
      foreign,
    ]) {
      expect(challenges.passes(bad, ALICE, contact, T0), String(bad)).toEqual([])
    }
  })

  it("a new grant keeps the earlier token's live passes of the same account, never another's", () => {
    const { challenges } = setup()
    const first = challenges.grant(undefined, ALICE, records, T0)
    const second = challenges.grant(first.token, ALICE, requests, T0 + 1000)
    expect(challenges.passes(second.token, ALICE, contact, T0 + 2000)).toEqual([first.pass, second.pass])
    // The first pass ends when it would have, not later.
    expect(challenges.passes(second.token, ALICE, contact, T0 + CONFIG.validForMs)).toEqual([second.pass])
    // Renewing a limit replaces its pass (passes come in the order of the route's limits).
    const renewed = challenges.grant(second.token, ALICE, records, T0 + 5000)
    expect(challenges.passes(renewed.token, ALICE, contact, T0 + 6000)).toEqual([renewed.pass, second.pass])
    expect(renewed.pass.id).not.toBe(first.pass.id)
    // Bob presenting alice's token gets only his own new pass.
    const bobs = challenges.grant(second.token, BOB, requests, T0 + 1000)
    expect(challenges.passes(bobs.token, BOB, contact, T0 + 2000)).toEqual([bobs.pass])
    // Expired passes are not carried over.
    const late = challenges.grant(first.token, ALICE, requests, T0 + CONFIG.validForMs)
    expect(challenges.passes(late.token, ALICE, contact, T0 + CONFIG.validForMs)).toEqual([late.pass])
  })

  it('a records pass buys `grants` records, then is dropped', async () => {
    const { challenges } = setup()
    const { pass } = challenges.grant(undefined, ALICE, records, T0)
    expect(await challenges.spend([pass], 2, true)).toEqual([0])
    expect(await challenges.spend([pass], 0, true)).toEqual([0]) // costs nothing
    expect(await challenges.spend([pass], 1, true)).toEqual([0]) // 3 of 3
    expect(await challenges.spend([pass], 1, true)).toEqual([])
    expect(await challenges.spend([pass], 1, false)).toEqual([])
    // A fresh pass of the same limit starts again.
    const next = challenges.grant(undefined, ALICE, records, T0).pass
    expect(await challenges.spend([next], 3, true)).toEqual([0])
  })

  it('a requests pass buys `grants` requests whatever their records, and only counted requests', async () => {
    const { challenges } = setup()
    const { pass } = challenges.grant(undefined, ALICE, requests, T0)
    expect(pass.kind).toBe('requests')
    for (let i = 0; i < 3; i++) expect(await challenges.spend([pass], 50, true)).toEqual([1])
    expect(await challenges.spend([pass], 0, false)).toEqual([1]) // the response step of a counted request
    expect(await challenges.spend([pass], 0, true)).toEqual([])
  })

  it('spends each held pass on its own, and drops one that cannot be checked', async () => {
    const { store, challenges } = setup({ grants: 2 })
    const byRecords = challenges.grant(undefined, ALICE, records, T0).pass
    const byRequests = challenges.grant(undefined, ALICE, requests, T0).pass
    const held: HeldPass[] = [byRecords, byRequests]
    expect(await challenges.spend(held, 2, true)).toEqual([0, 1])
    expect(await challenges.spend(held, 1, true)).toEqual([1])
    expect(await challenges.spend(held, 0, true)).toEqual([0])
    store.count = () => {
      throw new Error('store down')
    }
    const fresh = challenges.grant(undefined, BOB, records, T0).pass
    expect(await challenges.spend([fresh], 1, true)).toEqual([])
    expect(await challenges.spend([fresh], 0, true)).toEqual([0])
  })

  it('what a pass bought is shared by instances on the same store', async () => {
    const { store, challenges } = setup()
    const other = new Challenges(CONFIG, store)
    const { token } = challenges.grant(undefined, ALICE, records, T0)
    const held = other.passes(token, ALICE, contact, T0)
    expect(held).toHaveLength(1)
    expect(await challenges.spend(held, 3, true)).toEqual([0])
    expect(await other.spend(held, 1, true)).toEqual([])
  })
})

describe('policy helpers used here', () => {
  it('the test policy is what the tests assume', () => {
    const ids = (p: RoutePolicy) => p.limits.map((l) => `${l.id} ${l.kind} ${l.action}`)
    expect(ids(contact)).toEqual([
      'contact#0 distinctRecords challenge',
      'contact#1 requests challenge',
      'contact#2 distinctRecords disable',
    ])
    expect(ids(invoice)).toEqual(['invoice#0 distinctRecords challenge'])
  })
})
