// Errors of the admin API, as RFC 9457 problem details with a stable code.
import type { FastifyReply } from 'fastify'
import { PROBLEM_TYPE_BASE } from '../actions/respond.js'
import { ADMIN_PROBLEMS, AdminError, type AdminErrorCode } from '../errors.js'

export { AdminError, type AdminErrorCode }

export function sendAdminProblem(reply: FastifyReply, err: AdminError): FastifyReply {
  const { status, title, kind } = ADMIN_PROBLEMS[err.code]
  return reply
    .code(status)
    .header('cache-control', 'no-store')
    .type('application/problem+json')
    .send({ type: PROBLEM_TYPE_BASE + kind, title, status, code: err.code, detail: err.message, ...err.extra })
}

export const badRequest = (detail: string) => new AdminError('SLUICE_ERR_ADMIN_BAD_REQUEST', detail)
