// The reporter's webhooks under a flood of identities (issue 13 §6): decisions of 1,100 accounts
// on one route reach the receiver as a few incidents and summaries; another account's disable
// and an operator's unlock arrive on their own. A real receiver on 127.0.0.1.
import { afterEach, describe, expect, it } from 'vitest'
import type { CompiledRoute } from '../../src/config/compile.js'
import type { Decision } from '../../src/engine/engine.js'
import type { Limit } from '../../src/engine/policy.js'
import { Notifier } from '../../src/notify/index.js'
import { Reporter, type DecisionContext } from '../../src/report/reporter.js'
import { receiver, until, type Receiver } from '../notify/receiver.js'

const SECRET = 'whsec-test-0123456789'
const silent = { warn: () => undefined, info: () => undefined } as unknown as DecisionContext['log']

function limit(route: string): Limit {
  return {
    id: `${route}#0`,
    index: 0,
    kind: 'requests',
    per: 'account',
    windowMs: 60_000,
    max: 40,
    action: 'disable',
    severity: 3,
    label: '1m requests 40 → disable',
  }
}

function route(name: string): CompiledRoute {
  return { name, policy: { name, limits: [limit(name)] } } as unknown as CompiledRoute
}

function decide(reporter: Reporter, account: string, routeName: string, now: number): void {
  const d: Decision = {
    kind: 'disable',
    block: true,
    wouldBlock: true,
    shadow: false,
    account,
    route: routeName,
    limit: limit(routeName),
    counts: [41],
    disabledUntil: now + 3_600_000,
  }
  reporter.decision(d, {
    log: silent,
    route: route(routeName),
    identity: 'basic',
    clientIp: '127.0.0.1',
    method: 'GET',
    target: '/api/contacts/1',
    records: ['1'],
    step: 'request',
    now,
  })
}

const open: { r: Receiver; n: Notifier }[] = []
afterEach(async () => {
  for (const { r, n } of open.splice(0)) {
    await n.close({ timeoutMs: 50 })
    await r.close()
  }
})

describe('Reporter → webhooks under a flood', () => {
  it("1,100 identities' disables become a few incidents and a summary; mallory's disable and an unlock arrive on their own", async () => {
    const r = await receiver()
    const notifier = new Notifier({
      webhooks: [{ url: r.url, secret: SECRET, events: ['disable', 'unlock'] }],
      // One interval for the whole flood: a loaded machine took over 200 ms for the loop below.
      coalesce: { intervalMs: 2000 },
    })
    open.push({ r, n: notifier })
    const reporter = new Reporter({ pseudonymise: true, key: 'k'.repeat(32), notifier })

    const now = Date.now()
    for (let i = 0; i < 1100; i++) decide(reporter, `basic:bot-${i}#x`, 'contact', now)
    // The same account again within 60 s: the reporter's own limit, nothing more is sent.
    decide(reporter, 'basic:bot-0#x', 'contact', now)
    decide(reporter, 'basic:mallory#x', 'export', now)
    reporter.event('unlock', { action: 'unlock', account: 'basic:bot-1#x', route: 'contact', result: 'unlocked' })

    const bodies = () => r.received.map((x) => x.json)
    await until(() => bodies().some((b) => b.coalesced === true), 'the summary')
    await until(() => notifier.stats().backlog === 0, 'the queue to drain')

    const flood = bodies().filter((b) => b.type === 'disable' && b.route === 'contact')
    expect(flood.filter((b) => b.coalesced !== true)).toHaveLength(5)
    expect(flood.filter((b) => b.coalesced === true)).toMatchObject([
      { count: 1095, shadow: false, accountsTruncated: true },
    ])
    expect(bodies().filter((b) => b.account === 'basic:mallory#x')).toMatchObject([
      { type: 'disable', route: 'export', limit: '1m requests 40 → disable', blocked: true },
    ])
    expect(bodies().filter((b) => b.type === 'unlock')).toMatchObject([
      { account: 'basic:bot-1#x', result: 'unlocked' },
    ])
    expect(r.received).toHaveLength(8)
    expect(notifier.stats()).toMatchObject({ dropped: 0, coalesced: 1095, summaries: 1 })
  })
})
