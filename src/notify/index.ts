// Signed, retried webhooks for incidents (docs/audit.md, "Webhooks").
export { DEFAULT_RETRY, retryDelay, type RetryPolicy } from './backoff.js'
export {
  Notifier,
  severity,
  type IncidentEvent,
  type NotifierOptions,
  type NotifierStats,
  type NotifyLogger,
  type WebhookOptions,
  type WebhookStats,
} from './notifier.js'
export { DEFAULT_TOLERANCE_SECONDS, SIGNATURE_HEADER, verifyWebhookSignature, webhookSignature } from './signature.js'
export { DEFAULT_COALESCE, type CoalesceOptions } from './coalesce.js'
