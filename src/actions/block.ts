// A blocking decision → the response the client sees. Pure but for issuing a challenge, which
// the caller provides (it needs the store and the account).
import type { Challenge } from 'altcha-lib'
import type { Decision } from '../engine/engine.js'
import type { Limit } from '../engine/policy.js'
import {
  disabled,
  renderChallenge,
  renderProblem,
  throttled,
  unavailable,
  type PageOptions,
  type Problem,
  type Rendered,
} from './respond.js'

export interface BlockContext {
  accept: string | undefined
  /** Retry-After of a throttle. */
  retryAfterMs: number
  /** Issue a challenge for the limit that asked for one. */
  challenge: (limit: Limit) => Promise<Challenge>
  /** Why the solution this request carried was refused, if it carried one. */
  rejected?: string
  /** The block page's own words (`actions.page`). */
  page?: PageOptions
}

export async function blockResponse(decision: Decision, ctx: BlockContext): Promise<Rendered> {
  // The decision's reference (set when it was reported): in the body, the page and a header.
  const ref = decision.reference
  const withRef = (p: Problem): Problem => (ref !== undefined ? { ...p, reference: ref } : p)
  switch (decision.kind) {
    case 'throttle':
      return renderProblem(ctx.accept, withRef(throttled(ctx.retryAfterMs)), undefined, ctx.page)
    case 'challenge':
      // A challenge decision always names its limit.
      return decision.limit
        ? renderChallenge(ctx.accept, await ctx.challenge(decision.limit), ctx.rejected, ref, ctx.page)
        : renderProblem(ctx.accept, withRef(throttled(ctx.retryAfterMs)), undefined, ctx.page)
    case 'unavailable':
      return renderProblem(ctx.accept, withRef(unavailable()), undefined, ctx.page)
    default:
      return renderProblem(ctx.accept, withRef(disabled(decision.disabledUntil)), undefined, ctx.page)
  }
}
