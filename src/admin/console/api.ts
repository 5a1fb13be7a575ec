// The console is a client of the JSON admin API, in process: each page asks the same routes
// the CLI does (app.inject), with the operator's token and name. Validation, the store calls,
// the audit entry of an action and its wording exist once, in the admin API.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { ConsoleSession } from './sessions.js'

export interface AdminAnswer<T> {
  status: number
  /** The JSON body: T when the status is 2xx, a problem (detail, code) otherwise. */
  body: T
  /** A problem's detail, when the API refused. */
  problem?: string
}

export type AdminCall = <T>(method: 'GET' | 'POST', url: string, reason?: string) => Promise<AdminAnswer<T>>

/** Calls as this operator, from the browser's address (the audit entry's remoteAddress). */
export function adminCall(app: FastifyInstance, request: FastifyRequest, session: ConsoleSession): AdminCall {
  return async <T>(method: 'GET' | 'POST', url: string, reason?: string) => {
    const res = await app.inject({
      method,
      url,
      remoteAddress: request.ip,
      headers: {
        authorization: `Bearer ${session.token}`,
        'x-sluice-operator': encodeURIComponent(session.operator),
        ...(reason !== undefined && reason !== '' ? { 'x-sluice-reason': encodeURIComponent(reason) } : {}),
      },
    })
    const body = res.json<T & { detail?: string }>()
    const ok = res.statusCode >= 200 && res.statusCode < 300
    return { status: res.statusCode, body, ...(!ok ? { problem: body.detail ?? `status ${res.statusCode}` } : {}) }
  }
}
