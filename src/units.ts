// Numbers as a person reads them in CLI output: 10.5s rather than 10500ms, 4 MiB rather than
// 4194304 bytes, "1 request" rather than "1 requests".

const TIME_UNITS = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
] as const

/** 600000 → 10m, 10500 → 10.5s, 1250 → 1.25s, 90000 → 90s, 500 → 500ms (each a valid config duration). */
export function humanMs(ms: number): string {
  if (ms === Infinity) return 'forever'
  for (const [unit, size] of TIME_UNITS) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`
  if (ms >= 1000) return `${trim(ms / 1000)}s`
  return `${trim(ms)}ms`
}

/** 4194304 → 4 MiB, 1536 → 1.5 KiB, 100 → 100 bytes. */
export function humanBytes(bytes: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'] as const
  if (bytes < 1024) return plural(bytes, 'byte')
  let v = bytes
  let unit: string = 'bytes'
  for (const u of units) {
    if (v < 1024) break
    v /= 1024
    unit = u
  }
  return `${trim(v)} ${unit}`
}

/** `plural(1, 'account')` → "1 account", `plural(2, 'account')` → "2 accounts"; numbers with thousands separators. */
export function plural(count: number, noun: string, nouns = `${noun}s`): string {
  return `${count.toLocaleString('en-US')} ${count === 1 ? noun : nouns}`
}

/** At most two decimals, none trailing: 10.5, 1.25, 4. */
function trim(v: number): string {
  return String(Math.round(v * 100) / 100)
}
