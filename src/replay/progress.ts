// A one-line progress bar on stderr, drawn only when stderr is a terminal (never in a pipe,
// a CI log or a file).
import type { Progress } from './replay.js'

export interface ProgressBar {
  update(p: Progress): void
  done(): void
}

const NONE: ProgressBar = { update: () => undefined, done: () => undefined }

/** `sizes`: bytes per input file (undefined for stdin), in replay order. */
export function progressBar(stream: NodeJS.WriteStream, sizes: Map<string, number | undefined>): ProgressBar {
  if (!stream.isTTY) return NONE
  const total = [...sizes.values()].reduce<number | undefined>(
    (sum, s) => (sum === undefined || s === undefined ? undefined : sum + s),
    0,
  )
  const before = new Map<string, number>()
  let acc = 0
  for (const [name, size] of sizes) {
    before.set(name, acc)
    acc += size ?? 0
  }
  const started = performance.now()
  let last = 0
  let drawn = false
  return {
    update(p) {
      const now = performance.now()
      if (now - last < 100) return
      last = now
      const secs = (now - started) / 1000
      const rate = secs > 0 ? `${Math.round(p.lines / secs).toLocaleString('en-US')} lines/s` : ''
      let bar = ''
      if (total !== undefined && total > 0) {
        const frac = Math.min(1, ((before.get(p.file) ?? 0) + p.bytesRead) / total)
        const width = 30
        const full = Math.round(frac * width)
        bar = `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${(frac * 100).toFixed(0).padStart(3)}%  `
      }
      stream.write(`\r${bar}${p.lines.toLocaleString('en-US')} lines  ${rate}\x1b[K`)
      drawn = true
    },
    done() {
      if (drawn) stream.write('\r\x1b[K')
    },
  }
}
