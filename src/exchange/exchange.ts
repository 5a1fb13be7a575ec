// The state one request carries through the pipeline, as a tagged union: an exchange on a
// sensitive route, or a login/logout that is on none. Each step below works on the kind it
// needs, so nothing has to be cast.
import type { IncomingMessage } from 'node:http'
import type { HeldPass } from '../actions/challenge.js'
import type { CompiledRoute, Inspection } from '../config/compile.js'
import type { Decision } from '../engine/engine.js'
import type { RoutedRequest } from './classify.js'
import type { IdentitySource } from '../identity/chain.js'
import type { Live, Runtime } from '../runtime.js'
import type { SessionEvent } from '../sessions/binding.js'

/**
 * Where a route's records still have to be read from, with how; `named`: the records the path
 * and query named already (the record's key read in the body too: counted together).
 */
export type Pending = { from: 'body' | 'response'; inspect: Inspection; named?: string[] }

interface ExchangeBase {
  live: Live
  raw: IncomingMessage
  /** A login or logout to bind or log when its answer comes. */
  session: SessionEvent | null
  /** Bytes this exchange holds of the inspection budget (given back when its response closes). */
  held: number
}

/** A request on a sensitive route. */
export interface RoutedExchange extends ExchangeBase {
  kind: 'routed'
  /** What classify() made of the request (the same function replay calls). */
  classified: RoutedRequest
  route: CompiledRoute
  /** The canonical path and query, as matched and forwarded: what decisions are logged with. */
  target: string
  account: string
  source: IdentitySource
  /** Challenge limits this request holds a valid pass for (each spent as it is used). */
  passes: readonly HeldPass[]
  pending: Pending | null
  /**
   * The request step's decision on a route whose records are in the response: not counted in
   * sluice_requests_total until the answer's step decides (a request is counted once, finally).
   */
  provisional: Decision | null
  /** The client network, once a step needed it (per-network limits): the request and its response share it. */
  network?: string
  /** The client address, once a step needed it (read while the request's socket is at hand). */
  clientIp?: string
  /** The claims of a verified JWT identity: what overrides match (src/overrides). */
  claims?: Readonly<Record<string, unknown>>
}

/** A login or logout on no sensitive route: only its session is watched. */
export interface SessionExchange extends ExchangeBase {
  kind: 'session'
  session: SessionEvent
}

export type Exchange = RoutedExchange | SessionExchange

/** How a step ends: the request goes on to the upstream, or sluice has answered it. */
export const CONTINUE = 0
export const REPLIED = 1
export type Next = typeof CONTINUE | typeof REPLIED

/** What every step works with: the runtime (store, metrics, reporter, clock, live config). */
export type Pipeline = Runtime
