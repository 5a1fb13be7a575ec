// Webhooks against real receivers on 127.0.0.1: one that answers, one that is down, one that is
// slow, one that recovers.
import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Notifier, verifyWebhookSignature, type NotifierOptions } from '../../src/notify/index.js'

interface Received {
  headers: IncomingHttpHeaders
  body: string
}

interface Receiver {
  url: string
  port: number
  received: Received[]
  close(): Promise<void>
}

const open: Receiver[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()))
})

/** A receiver on 127.0.0.1; `answer` decides each response (default 204). */
async function receiver(
  answer: (n: number, res: ServerResponse) => void = (_n, res) => res.writeHead(204).end(),
  port = 0,
): Promise<Receiver> {
  const received: Received[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') })
      answer(received.length, res)
    })
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  const actual = (server.address() as AddressInfo).port
  const r: Receiver = {
    url: `http://127.0.0.1:${actual}/hooks/sluice`,
    port: actual,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  open.push(r)
  return r
}

/** A port nothing listens on: opened, then closed. */
async function closedPort(): Promise<number> {
  const r = await receiver()
  await r.close()
  open.splice(open.indexOf(r), 1)
  return r.port
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (check()) return
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`timed out waiting for ${what}`)
}

function logger() {
  const lines: { level: string; obj: object; msg?: string | undefined }[] = []
  return {
    lines,
    info: (obj: object, msg?: string) => void lines.push({ level: 'info', obj, msg }),
    warn: (obj: object, msg?: string) => void lines.push({ level: 'warn', obj, msg }),
    error: (obj: object, msg?: string) => void lines.push({ level: 'error', obj, msg }),
  }
}

const FAST: NotifierOptions['retry'] = { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 20 }
const SECRET = 'whsec-test-0123456789'
const incident = {
  type: 'disable',
  account: 'mallory',
  route: 'contact',
  limit: { window: '1m', requests: 40 },
  counts: { requests: 41, distinctRecords: 20 },
  action: 'disable',
}

const rejections: unknown[] = []
const onRejection = (reason: unknown) => void rejections.push(reason)
beforeAll(() => void process.on('unhandledRejection', onRejection))
afterAll(() => {
  process.off('unhandledRejection', onRejection)
  expect(rejections).toEqual([])
})

describe('Notifier', () => {
  it('POSTs the incident as JSON, signed so that the documented check verifies it', async () => {
    const r = await receiver()
    const notifier = new Notifier({ webhooks: [{ url: r.url, secret: SECRET, events: ['disable'] }] })
    const id = notifier.notify(incident)
    await until(() => r.received.length === 1, 'the delivery')
    await notifier.close()

    const [got] = r.received
    if (!got) throw new Error('nothing received')
    expect(got.headers['content-type']).toBe('application/json')
    expect(got.headers['sluice-event']).toBe('disable')
    expect(got.headers['sluice-id']).toBe(id)
    expect(got.headers['sluice-attempt']).toBe('1')
    expect(JSON.parse(got.body)).toEqual({ id, time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), ...incident })

    // The check from docs/audit.md, written out independently of the library.
    const header = got.headers['sluice-signature'] as string
    const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header) ?? []
    expect(Math.abs(Date.now() / 1000 - Number(t))).toBeLessThan(300)
    const expected = createHmac('sha256', SECRET).update(`${t}.${got.body}`).digest('hex')
    expect(timingSafeEqual(Buffer.from(expected), Buffer.from(v1 ?? ''))).toBe(true)

    expect(verifyWebhookSignature(SECRET, got.body, header)).toBe(true)
    expect(verifyWebhookSignature('another-secret', got.body, header)).toBe(false)
    expect(verifyWebhookSignature(SECRET, got.body.replace('mallory', 'alice'), header)).toBe(false)
    expect(verifyWebhookSignature(SECRET, got.body, header, { nowSeconds: Number(t) + 301 })).toBe(false)
    expect(verifyWebhookSignature(SECRET, got.body, undefined)).toBe(false)
    expect(notifier.stats()).toMatchObject({ sent: 1, failed: 0, retried: 0, dropped: 0, backlog: 0 })
  })

  it('delivers to each webhook only the events it subscribed to', async () => {
    const disables = await receiver()
    const challenges = await receiver()
    const everything = await receiver()
    const notifier = new Notifier({
      webhooks: [
        { url: disables.url, secret: SECRET, events: ['disable'] },
        { url: challenges.url, secret: SECRET, events: ['challenge', 'throttle'] },
        { url: everything.url, secret: SECRET, events: ['*'] },
      ],
    })
    for (const type of ['disable', 'challenge', 'unlock', 'throttle']) notifier.notify({ ...incident, type })
    await notifier.close()
    const types = (r: Receiver) => r.received.map((x) => x.headers['sluice-event']).sort()
    expect(types(disables)).toEqual(['disable'])
    expect(types(challenges)).toEqual(['challenge', 'throttle'])
    expect(types(everything)).toEqual(['challenge', 'disable', 'throttle', 'unlock'])
  })

  it('retries a receiver that is down with backoff, then counts the event failed, without crashing', async () => {
    const port = await closedPort()
    const log = logger()
    const notifier = new Notifier({
      webhooks: [{ url: `http://127.0.0.1:${port}/x`, secret: SECRET, events: ['*'] }],
      retry: FAST,
      logger: log,
    })
    notifier.notify(incident)
    await until(() => notifier.stats().failed === 1, 'the give-up')
    expect(notifier.stats()).toMatchObject({ sent: 0, failed: 1, retried: 2, backlog: 0 })
    expect(log.lines.find((l) => l.level === 'warn')?.msg).toMatch(/failed \(ECONNREFUSED\); retrying/)
    expect(log.lines.find((l) => l.level === 'error')?.msg).toMatch(
      /gave up on disable .* after 3 attempt\(s\): ECONNREFUSED/,
    )
    await notifier.close()
  })

  it('times a slow receiver out and retries, while notify() returns at once', async () => {
    const pending: ServerResponse[] = []
    const r = await receiver((_n, res) => void pending.push(res))
    const notifier = new Notifier({
      webhooks: [{ url: r.url, secret: SECRET, events: ['*'], timeoutMs: 50 }],
      retry: { ...FAST, maxAttempts: 2 },
    })
    const id = notifier.notify(incident)
    // Returned before any delivery could have happened: the event is still queued.
    expect(typeof id).toBe('string')
    expect(notifier.stats().backlog).toBe(1)
    await until(() => notifier.stats().failed === 1, 'both attempts to time out')
    expect(notifier.stats()).toMatchObject({ retried: 1, failed: 1, sent: 0 })
    expect(r.received.map((x) => x.headers['sluice-attempt'])).toEqual(['1', '2'])
    expect(new Set(r.received.map((x) => x.headers['sluice-id']))).toEqual(new Set([id]))
    for (const res of pending) res.destroy()
    await notifier.close()
  })

  it('delivers to a receiver that answers 503 and then recovers', async () => {
    const r = await receiver((n, res) => (n <= 2 ? res.writeHead(503).end() : res.writeHead(200).end('ok')))
    const notifier = new Notifier({ webhooks: [{ url: r.url, secret: SECRET, events: ['*'] }], retry: FAST })
    notifier.notify(incident)
    await until(() => notifier.stats().sent === 1, 'the delivery')
    expect(notifier.stats()).toMatchObject({ sent: 1, retried: 2, failed: 0 })
    const bodies = new Set(r.received.map((x) => x.body))
    expect(bodies.size).toBe(1)
    for (const x of r.received)
      expect(verifyWebhookSignature(SECRET, x.body, x.headers['sluice-signature'] as string)).toBe(true)
    await notifier.close()
  })

  it('delivers to a receiver that was down when the event came and starts later', async () => {
    const port = await closedPort()
    const notifier = new Notifier({
      webhooks: [{ url: `http://127.0.0.1:${port}/x`, secret: SECRET, events: ['*'] }],
      retry: { maxAttempts: 100, initialDelayMs: 10, maxDelayMs: 20 },
    })
    notifier.notify(incident)
    await until(() => notifier.stats().retried >= 1, 'a failed attempt')
    const r = await receiver(undefined, port)
    await until(() => notifier.stats().sent === 1, 'the delivery')
    expect(r.received).toHaveLength(1)
    await notifier.close()
  })

  it('does not retry a 4xx or follow a redirect', async () => {
    const r = await receiver((n, res) =>
      n === 1 ? res.writeHead(401).end() : res.writeHead(302, { location: 'http://127.0.0.1:1/' }).end(),
    )
    const notifier = new Notifier({ webhooks: [{ url: r.url, secret: SECRET, events: ['*'] }], retry: FAST })
    notifier.notify(incident)
    notifier.notify(incident)
    await notifier.close()
    expect(notifier.stats()).toMatchObject({ sent: 0, failed: 2, retried: 0 })
    expect(r.received).toHaveLength(2)
  })

  it('keeps its queue bounded when flooded, counting and logging what it refuses', async () => {
    const pending: ServerResponse[] = []
    const r = await receiver((_n, res) => void pending.push(res))
    const log = logger()
    const notifier = new Notifier({
      webhooks: [{ url: r.url, secret: SECRET, events: ['*'], timeoutMs: 10_000 }],
      queueLimit: 5,
      concurrency: 1,
      logger: log,
    })
    // One route each: a flood of one route would be coalesced (next describe) and never fill the queue.
    for (let i = 0; i < 100; i++) notifier.notify({ ...incident, route: `route-${i}`, n: i })
    expect(notifier.stats()).toMatchObject({ dropped: 95, backlog: 5, coalesced: 0 })
    expect(log.lines.filter((l) => l.msg?.startsWith('webhook queue full'))).toHaveLength(1)
    await until(() => r.received.length === 1, 'the first delivery to arrive')
    // The oldest events are the ones kept.
    expect(JSON.parse(r.received[0]?.body ?? '{}')).toMatchObject({ n: 0 })
    const closed = await notifier.close({ timeoutMs: 50 })
    expect(closed.undelivered).toBe(5)
    await until(() => notifier.stats().failed === 5, 'the aborted delivery to be counted')
    for (const res of pending) res.destroy()
  })

  it('close() delivers what is queued and refuses what comes after', async () => {
    const r = await receiver()
    const notifier = new Notifier({ webhooks: [{ url: r.url, secret: SECRET, events: ['*'] }] })
    for (let i = 0; i < 10; i++) notifier.notify({ ...incident, n: i })
    expect(await notifier.close()).toEqual({ undelivered: 0 })
    // The first 5 of one (route, type) on their own; close() sends the summary of the other 5 at once.
    expect(r.received).toHaveLength(6)
    const bodies = r.received.map((x) => JSON.parse(x.body) as Record<string, unknown>)
    expect(
      bodies
        .filter((b) => b.coalesced !== true)
        .map((b) => b.n)
        .sort(),
    ).toEqual([0, 1, 2, 3, 4])
    expect(bodies.find((b) => b.coalesced === true)).toMatchObject({
      type: 'disable',
      route: 'contact',
      count: 5,
      accounts: ['mallory'],
    })
    notifier.notify(incident)
    expect(notifier.stats()).toMatchObject({ sent: 6, dropped: 1, coalesced: 5, summaries: 1 })
  })

  it('refuses a webhook without a secret or with a URL that is not http(s)', () => {
    expect(() => new Notifier({ webhooks: [{ url: 'http://127.0.0.1/', secret: '', events: ['*'] }] })).toThrow(
      /secret is empty/,
    )
    expect(() => new Notifier({ webhooks: [{ url: 'file:///etc/passwd', secret: 's', events: ['*'] }] })).toThrow(
      /must be http/,
    )
    expect(() => new Notifier({ webhooks: [{ url: 'not a url', secret: 's', events: ['*'] }] })).toThrow(/is not a URL/)
  })
})
