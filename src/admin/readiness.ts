// The upstream's part of /readyz: a background TCP connect to the upstream every
// admin.readiness.checkEvery, bounded by admin.readiness.timeout. Cheap (no request reaches the
// application), off the request path, and its timers never keep the process alive.
import net from 'node:net'
import type { FastifyBaseLogger } from 'fastify'

export interface UpstreamHealth {
  state: 'ok' | 'unreachable'
  /** host:port probed. */
  target: string
  /** Why it is unreachable (the connect error, or the timeout). */
  reason?: string
  /** Since when it is in this state (ISO 8601). */
  since: string
  /** When it was last probed (ISO 8601). */
  checkedAt: string
}

export interface UpstreamProbeOptions {
  everyMs: number
  timeoutMs: number
  log?: FastifyBaseLogger
  clock?: () => number
}

export class UpstreamProbe {
  readonly target: string
  private readonly host: string
  private readonly port: number
  private timer: NodeJS.Timeout | null = null
  private socket: net.Socket | null = null
  private stopped = false
  private state: UpstreamHealth['state'] = 'ok'
  private reason: string | undefined
  private since: number
  private checkedAt: number
  private readonly clock: () => number

  constructor(
    url: string,
    private readonly options: UpstreamProbeOptions,
  ) {
    const u = new URL(url)
    this.host = u.hostname.replace(/^\[(.*)\]$/, '$1')
    this.port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80
    this.target = `${u.hostname}:${this.port}`
    this.clock = options.clock ?? Date.now
    this.since = this.checkedAt = this.clock()
  }

  /** Probe now (resolves when the first probe is done), then every `everyMs` until stop(). */
  start(): Promise<void> {
    return this.probe().then(() => this.schedule())
  }

  stop(): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    this.socket?.destroy()
    this.socket = null
  }

  health(): UpstreamHealth {
    return {
      state: this.state,
      target: this.target,
      ...(this.reason !== undefined ? { reason: this.reason } : {}),
      since: new Date(this.since).toISOString(),
      checkedAt: new Date(this.checkedAt).toISOString(),
    }
  }

  private schedule(): void {
    if (this.stopped) return
    this.timer = setTimeout(() => void this.probe().then(() => this.schedule()), this.options.everyMs)
    this.timer.unref()
  }

  /** One TCP connect: ok once connected, unreachable on an error or after timeoutMs. */
  private probe(): Promise<void> {
    return new Promise((resolve) => {
      if (this.stopped) return resolve()
      const socket = net.connect({ host: this.host, port: this.port })
      this.socket = socket
      socket.unref()
      let done = false
      const finish = (reason: string | undefined) => {
        if (done) return
        done = true
        clearTimeout(timeout)
        socket.destroy()
        if (this.socket === socket) this.socket = null
        if (!this.stopped) this.record(reason)
        resolve()
      }
      const timeout = setTimeout(
        () => finish(`no connection within ${this.options.timeoutMs}ms (admin.readiness.timeout)`),
        this.options.timeoutMs,
      )
      timeout.unref()
      socket.once('connect', () => finish(undefined))
      socket.once('error', (err: NodeJS.ErrnoException) => finish(`connect ${err.code ?? err.message}`))
      socket.once('close', () => finish('connection closed before it was established'))
    })
  }

  private record(reason: string | undefined): void {
    const now = this.clock()
    this.checkedAt = now
    const state = reason === undefined ? 'ok' : 'unreachable'
    if (state !== this.state) {
      this.since = now
      const log = this.options.log
      if (state === 'ok')
        log?.info({ event: 'sluice.upstream', state, target: this.target }, 'upstream reachable again')
      else
        log?.error(
          { event: 'sluice.upstream', state, target: this.target, reason },
          `upstream ${this.target} unreachable: ${reason}; /readyz answers 503`,
        )
    }
    this.state = state
    this.reason = reason
  }
}
