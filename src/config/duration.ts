// Durations are strings with a unit so that a config never leaves a reader guessing
// whether `600` meant seconds or milliseconds.
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const
const DURATION = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)$/

/** Milliseconds for `500ms`, `30s`, `10m`, `24h`, `7d`; undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text.trim())
  if (!m) return undefined
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]
  return Number.isFinite(ms) ? Math.round(ms) : undefined
}

export const DURATION_HINT = 'write a number with a unit: 500ms, 30s, 10m, 24h or 7d'

const UNIT_BYTES = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 } as const
const SIZE = /^([0-9]+(?:\.[0-9]+)?)\s*(b|kb|mb|gb)$/i

/** Bytes for a number or `512kb`, `4mb` (binary units); undefined when the text is not a size. */
export function parseSize(value: number | string): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? value : undefined
  const m = SIZE.exec(value.trim())
  if (!m) return undefined
  const bytes = Math.floor(Number(m[1]) * UNIT_BYTES[(m[2] as string).toLowerCase() as keyof typeof UNIT_BYTES])
  return bytes > 0 && Number.isSafeInteger(bytes) ? bytes : undefined
}
