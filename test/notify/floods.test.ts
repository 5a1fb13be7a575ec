// Issue 13 §6, "Alerts cannot be drowned": a flood of one (route, type) is coalesced into
// summaries, a full queue gives up its least severe incidents before a disable, and what was
// dropped is reported. Real receivers on 127.0.0.1.
import type { ServerResponse } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { Notifier, verifyWebhookSignature } from '../../src/notify/index.js'
import { logger, receiver, sleep, until, type Receiver } from './receiver.js'

const SECRET = 'whsec-test-0123456789'
const disable = (account: string, route: string) => ({
  type: 'disable',
  account,
  route,
  action: 'disable',
  counts: { requests: 41 },
  shadow: false,
})

const open: Receiver[] = []
const notifiers: Notifier[] = []
afterEach(async () => {
  await Promise.all(notifiers.splice(0).map((n) => n.close({ timeoutMs: 50 })))
  await Promise.all(open.splice(0).map((r) => r.close()))
})

async function listen(answer?: (n: number, res: ServerResponse) => void): Promise<Receiver> {
  const r = await receiver(answer)
  open.push(r)
  return r
}

function notifier(options: ConstructorParameters<typeof Notifier>[0]): Notifier {
  const n = new Notifier(options)
  notifiers.push(n)
  return n
}

describe('a flood of incidents', () => {
  it("1,100 identities' disables on one route within a second: another account's disable arrives on its own, the flood as a few summaries that add up", async () => {
    // A receiver that takes 20 ms per delivery (2 in flight: 100/s), subscribed to disables only,
    // with the default queue of 1000: without coalescing, the flood fills the queue and the
    // disable that matters, coming last, is refused.
    const r = await listen((_n, res) => void setTimeout(() => res.writeHead(204).end(), 20))
    const log = logger()
    const n = notifier({
      webhooks: [{ url: r.url, secret: SECRET, events: ['disable'] }],
      coalesce: { intervalMs: 300 },
      logger: log,
    })

    const started = Date.now()
    for (let batch = 0; batch < 10; batch++) {
      for (let i = 0; i < 110; i++) n.notify(disable(`basic:bot-${batch * 110 + i}`, 'contact'))
      await sleep(90)
    }
    const malloryAt = Date.now()
    // How many 300 ms intervals the flood can have touched (about 4; more on a loaded machine).
    const intervals = Math.ceil((malloryAt - started) / 300) + 1
    n.notify(disable('basic:mallory', 'export'))

    await until(() => r.received.some((x) => x.json.account === 'basic:mallory'), "mallory's disable", 3000)
    const flood = () => r.received.map((x) => x.json).filter((b) => b.route === 'contact')
    const total = () => flood().reduce((sum, b) => sum + (b.coalesced === true ? (b.count as number) : 1), 0)
    await until(() => total() === 1100, 'the flood to be accounted for')

    // mallory's disable: on its own, not in a summary, and promptly.
    const mallory = r.received.filter((x) => x.json.account === 'basic:mallory')
    expect(mallory).toHaveLength(1)
    expect(mallory[0]?.json).toMatchObject({ type: 'disable', route: 'export', account: 'basic:mallory' })
    expect(mallory[0]?.json.coalesced).toBeUndefined()
    expect(mallory[0]!.at - malloryAt).toBeLessThan(1000)

    // The flood: per 300 ms interval at most 5 on their own and one summary.
    const summaries = flood().filter((b) => b.coalesced === true)
    const individual = flood().filter((b) => b.coalesced !== true)
    expect(summaries.length).toBeGreaterThanOrEqual(1)
    expect(summaries.length).toBeLessThanOrEqual(intervals)
    expect(individual.length).toBeLessThanOrEqual(5 * intervals)
    expect(intervals).toBeLessThan(15)
    for (const s of summaries) {
      expect(s).toMatchObject({
        type: 'disable',
        coalesced: true,
        route: 'contact',
        shadow: false,
        individually: 5,
        intervalMs: 300,
        accountsTruncated: true,
      })
      expect((s.accounts as string[]).length).toBe(20)
      expect(Date.parse(s.firstTime as string)).toBeLessThanOrEqual(Date.parse(s.lastTime as string))
    }
    // The samples name flood accounts only.
    for (const s of summaries) for (const a of s.accounts as string[]) expect(a).toMatch(/^basic:bot-\d+$/)
    for (const x of r.received) {
      expect(x.headers['sluice-event']).toBe('disable')
      expect(verifyWebhookSignature(SECRET, x.body, x.headers['sluice-signature'] as string)).toBe(true)
    }

    const stats = n.stats()
    expect(stats).toMatchObject({ dropped: 0, summaries: summaries.length, coalesced: 1100 - individual.length })
    expect(log.lines.filter((l) => l.obj.event === 'sluice.notify.coalescing').length).toBeGreaterThanOrEqual(1)
  })

  it('with a tiny queue and a hung receiver, drops log, then throttle, then challenge before a disable; the drops are counted, logged and reported', async () => {
    let hang = true
    const pending: ServerResponse[] = []
    const r = await listen((_n, res) => (hang ? void pending.push(res) : res.writeHead(204).end()))
    const log = logger()
    const n = notifier({
      webhooks: [{ url: r.url, secret: SECRET, events: ['*'], timeoutMs: 10_000 }],
      queueLimit: 4,
      concurrency: 1,
      coalesce: { intervalMs: 100 },
      logger: log,
    })

    // Distinct routes: none of this is a flood of one (route, type), so nothing is coalesced.
    for (let i = 0; i < 10; i++) n.notify({ type: 'throttle', account: `basic:t${i}`, route: `t${i}` })
    await until(() => pending.length === 1, 'the first delivery to hang')
    // t0 in flight, t1..t3 queued, t4..t9 refused (same severity: the newest go).
    expect(n.stats()).toMatchObject({ backlog: 4, dropped: 6, droppedByType: { throttle: 6 } })
    // Each challenge evicts the newest queued throttle.
    for (let i = 0; i < 3; i++) n.notify({ type: 'challenge', account: `basic:c${i}`, route: `c${i}` })
    // The disable evicts the newest challenge; a log is refused; another disable evicts a challenge.
    const malloryId = n.notify(disable('basic:mallory', 'export'))
    n.notify({ type: 'log', account: 'basic:l0', route: 'l0' })
    n.notify(disable('basic:eve', 'contact'))
    expect(n.stats()).toMatchObject({ backlog: 4, dropped: 12, droppedByType: { throttle: 9, challenge: 2, log: 1 } })
    expect(n.stats().droppedByType.disable).toBeUndefined()

    // Counted and logged: one line per 10 s per webhook, with the counts by type.
    const lines = log.lines.filter((l) => l.obj.event === 'sluice.notify.dropped')
    expect(lines).toHaveLength(1)
    expect(lines[0]?.msg).toMatch(/^webhook queue full \(4\)/)

    // The receiver recovers.
    hang = false
    for (const res of pending) res.writeHead(204).end()
    await until(() => r.received.some((x) => x.json.type === 'dropped'), 'the dropped report')
    await until(() => n.stats().backlog === 0, 'the queue to drain')

    const types = r.received.map((x) => `${x.json.type}:${x.json.account ?? ''}`)
    // t0 (in flight when the flood came), then the most severe first.
    expect(types[0]).toBe('throttle:basic:t0')
    expect(types.slice(1, 3)).toEqual(['disable:basic:mallory', 'disable:basic:eve'])
    expect(types).toContain('challenge:basic:c0')
    expect(r.received.find((x) => x.json.account === 'basic:mallory')?.headers['sluice-id']).toBe(malloryId)
    expect(r.received).toHaveLength(5)

    const report = r.received.find((x) => x.json.type === 'dropped')
    expect(report?.headers['sluice-event']).toBe('dropped')
    expect(report?.json).toMatchObject({
      type: 'dropped',
      count: 12,
      byType: { throttle: 9, challenge: 2, log: 1 },
      queueLimit: 4,
    })
    expect(Date.parse(report?.json.since as string)).toBeLessThanOrEqual(Date.parse(report?.json.until as string))
    expect(verifyWebhookSignature(SECRET, report?.body ?? '', report?.headers['sluice-signature'] as string)).toBe(true)
    // One report per flood.
    await sleep(250)
    expect(r.received.filter((x) => x.json.type === 'dropped')).toHaveLength(1)
  })

  it("a full queue of disables gives up the flood's individual ones, not a disable from outside the flood; the summary is kept too", async () => {
    let hang = true
    const pending: ServerResponse[] = []
    const r = await listen((_n, res) => (hang ? void pending.push(res) : res.writeHead(204).end()))
    const n = notifier({
      webhooks: [{ url: r.url, secret: SECRET, events: ['disable'], timeoutMs: 10_000 }],
      queueLimit: 6,
      concurrency: 1,
      coalesce: { intervalMs: 150 },
    })

    // a0 in flight, a1..a4 queued on their own, a5..a9 folded: `contact` floods.
    for (let i = 0; i < 10; i++) n.notify(disable(`basic:a${i}`, 'contact'))
    n.notify(disable('basic:bob', 'search'))
    expect(n.stats()).toMatchObject({ backlog: 6, dropped: 0, coalesced: 5 })
    // Full: mallory's disable takes the place of the newest of the flood's own (a4), not bob's.
    n.notify(disable('basic:mallory', 'export'))
    expect(n.stats()).toMatchObject({ backlog: 6, dropped: 1, droppedByType: { disable: 1 } })
    // The interval ends: the summary takes the place of a3.
    await until(() => n.stats().summaries === 1, 'the summary')
    expect(n.stats()).toMatchObject({ backlog: 6, dropped: 2 })

    hang = false
    for (const res of pending) res.writeHead(204).end()
    await until(() => r.received.some((x) => x.json.type === 'dropped'), 'the dropped report')
    await until(() => n.stats().backlog === 0, 'the queue to drain')

    const accounts = r.received
      .filter((x) => x.json.type === 'disable' && x.json.coalesced !== true)
      .map((x) => x.json.account)
    expect(accounts).toEqual(['basic:a0', 'basic:a1', 'basic:a2', 'basic:bob', 'basic:mallory'])
    const summary = r.received.find((x) => x.json.coalesced === true)?.json
    expect(summary).toMatchObject({
      type: 'disable',
      route: 'contact',
      count: 5,
      accounts: ['basic:a5', 'basic:a6', 'basic:a7', 'basic:a8', 'basic:a9'],
      accountsTruncated: false,
    })
    // The dropped report reaches a webhook that subscribed to disables only: it is about its own queue.
    const report = r.received.find((x) => x.json.type === 'dropped')?.json
    expect(report).toMatchObject({ count: 2, byType: { disable: 2 } })
    // Everything of the flood is accounted for: 3 delivered on their own + 5 in the summary + 2 dropped.
    expect(3 + (summary?.count as number) + (report?.count as number)).toBe(10)
  })

  it('keeps flood state per route, type and shadow, and sends operator events of another type on their own', async () => {
    const r = await listen()
    const n = notifier({
      webhooks: [{ url: r.url, secret: SECRET, events: ['*'] }],
      coalesce: { intervalMs: 60_000, individually: 2 },
    })
    for (let i = 0; i < 5; i++) n.notify(disable(`basic:a${i}`, 'contact'))
    for (let i = 0; i < 5; i++) n.notify({ ...disable(`basic:s${i}`, 'contact'), shadow: true })
    n.notify({ type: 'unlock', account: 'basic:a0', route: 'contact', action: 'unlock' })
    await until(() => r.received.length === 5, 'the individual ones')
    expect(n.stats()).toMatchObject({ coalesced: 6, summaries: 0 })
    // close() does not wait for the interval: the two summaries go out at once.
    await n.close()
    const summaries = r.received.filter((x) => x.json.coalesced === true).map((x) => x.json)
    expect(summaries).toHaveLength(2)
    expect(summaries.find((s) => s.shadow === true)).toMatchObject({
      count: 3,
      accounts: ['basic:s2', 'basic:s3', 'basic:s4'],
    })
    expect(summaries.find((s) => s.shadow === false)).toMatchObject({
      count: 3,
      accounts: ['basic:a2', 'basic:a3', 'basic:a4'],
    })
    expect(r.received.filter((x) => x.json.type === 'unlock')).toHaveLength(1)
  })
})
