// Errors of the admin API, as RFC 9457 problem details with a stable code.
import type { FastifyReply } from 'fastify'
import { PROBLEM_TYPE_BASE } from '../actions/respond.js'

export type AdminErrorCode =
  | 'SLUICE_ERR_ADMIN_UNAUTHORIZED' // no bearer token, or not the configured one
  | 'SLUICE_ERR_ADMIN_BAD_REQUEST' // a parameter the API cannot use (the detail names it)
  | 'SLUICE_ERR_ADMIN_NOT_FOUND' // no such endpoint, or an account the store knows nothing about
  | 'SLUICE_ERR_ADMIN_STORE' // the store (Redis) did not answer
  | 'SLUICE_ERR_ADMIN_RELOAD_REJECTED' // the new config is invalid; the running one stays
  | 'SLUICE_ERR_ADMIN_RELOAD_UNSUPPORTED' // this admin listener has no reload hook
  | 'SLUICE_ERR_ADMIN_INTERNAL' // a bug: see the log

const STATUS: Record<AdminErrorCode, { status: number; title: string; kind: string }> = {
  SLUICE_ERR_ADMIN_UNAUTHORIZED: { status: 401, title: 'Unauthorized', kind: 'unauthorized' },
  SLUICE_ERR_ADMIN_BAD_REQUEST: { status: 400, title: 'Bad Request', kind: 'bad-request' },
  SLUICE_ERR_ADMIN_NOT_FOUND: { status: 404, title: 'Not Found', kind: 'not-found' },
  SLUICE_ERR_ADMIN_STORE: { status: 503, title: 'Store Unavailable', kind: 'store-unavailable' },
  SLUICE_ERR_ADMIN_RELOAD_REJECTED: { status: 422, title: 'Configuration Rejected', kind: 'reload-rejected' },
  SLUICE_ERR_ADMIN_RELOAD_UNSUPPORTED: { status: 501, title: 'Not Implemented', kind: 'reload-unsupported' },
  SLUICE_ERR_ADMIN_INTERNAL: { status: 500, title: 'Internal Server Error', kind: 'internal' },
}

export class AdminError extends Error {
  readonly code: AdminErrorCode
  readonly status: number
  readonly extra: Record<string, unknown> | undefined
  constructor(code: AdminErrorCode, detail: string, extra?: Record<string, unknown>) {
    super(detail)
    this.name = 'AdminError'
    this.code = code
    this.status = STATUS[code].status
    this.extra = extra
  }
}

export function sendAdminProblem(reply: FastifyReply, err: AdminError): FastifyReply {
  const { status, title, kind } = STATUS[err.code]
  return reply
    .code(status)
    .header('cache-control', 'no-store')
    .type('application/problem+json')
    .send({ type: PROBLEM_TYPE_BASE + kind, title, status, code: err.code, detail: err.message, ...err.extra })
}

export const badRequest = (detail: string) => new AdminError('SLUICE_ERR_ADMIN_BAD_REQUEST', detail)
