// The webhook signature, Stripe-style: `sluice-signature: t=<unix seconds>,v1=<hex HMAC>` where
// the HMAC-SHA256 under the webhook's secret covers `<t>.<raw body>`. Signing the timestamp lets a
// receiver reject a replayed request; docs/audit.md shows the check in ten lines of Node.
import { createHmac, timingSafeEqual } from 'node:crypto'

export const SIGNATURE_HEADER = 'sluice-signature'

/** Receivers should reject signatures older (or newer) than this; the default of `verifyWebhookSignature`. */
export const DEFAULT_TOLERANCE_SECONDS = 300

export function webhookSignature(secret: string | Buffer, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`, 'utf8').digest('hex')
  return `t=${unixSeconds},v1=${mac}`
}

/**
 * The receiver's side: true when `header` carries a v1 HMAC of `t.body` under `secret` and `t`
 * is within `toleranceSeconds` of now. `body` must be the raw request body, byte for byte.
 */
export function verifyWebhookSignature(
  secret: string | Buffer,
  body: string,
  header: string | undefined,
  options: { toleranceSeconds?: number; nowSeconds?: number } = {},
): boolean {
  if (!header) return false
  const parts = new Map<string, string[]>()
  for (const item of header.split(',')) {
    const eq = item.indexOf('=')
    if (eq <= 0) continue
    const name = item.slice(0, eq).trim()
    parts.set(name, [...(parts.get(name) ?? []), item.slice(eq + 1).trim()])
  }
  const t = Number(parts.get('t')?.[0])
  if (!Number.isInteger(t)) return false
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000)
  if (Math.abs(now - t) > (options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS)) return false
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.${body}`, 'utf8').digest('hex'))
  // Several v1 values may be present while a receiver rotates secrets; any match is enough.
  return (parts.get('v1') ?? []).some((v) => {
    const given = Buffer.from(v)
    return given.length === expected.length && timingSafeEqual(given, expected)
  })
}
