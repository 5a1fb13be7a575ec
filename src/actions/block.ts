// A blocking decision → the response the client sees. Pure but for issuing a challenge, which
// the caller provides (it needs the store and the account).
import type { Challenge } from 'altcha-lib'
import type { Decision } from '../engine/engine.js'
import type { Limit } from '../engine/policy.js'
import { disabled, renderChallenge, renderProblem, throttled, unavailable, type Rendered } from './respond.js'

export interface BlockContext {
  accept: string | undefined
  /** Retry-After of a throttle. */
  retryAfterMs: number
  /** Issue a challenge for the limit that asked for one. */
  challenge: (limit: Limit) => Promise<Challenge>
  /** Why the solution this request carried was refused, if it carried one. */
  rejected?: string
}

export async function blockResponse(decision: Decision, ctx: BlockContext): Promise<Rendered> {
  switch (decision.kind) {
    case 'throttle':
      return renderProblem(ctx.accept, throttled(ctx.retryAfterMs))
    case 'challenge':
      // A challenge decision always names its limit.
      return decision.limit
        ? renderChallenge(ctx.accept, await ctx.challenge(decision.limit), ctx.rejected)
        : renderProblem(ctx.accept, throttled(ctx.retryAfterMs))
    case 'unavailable':
      return renderProblem(ctx.accept, unavailable())
    default:
      return renderProblem(ctx.accept, disabled())
  }
}
