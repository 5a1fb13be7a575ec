// Bodies sluice must read before it decides: request bodies of `records: { body }` routes and
// login forms, and upstream responses of `records: { response }` routes. Read once into one
// buffer (preallocated when Content-Length is known), capped; decoded and parsed only to find ids.
import { Readable } from 'node:stream'
import { promisify } from 'node:util'
import * as zlib from 'node:zlib'

export type ReadResult =
  | { complete: true; body: Buffer }
  /** Past the cap: what was read so far; `rest()` streams all of it (read and unread) on. */
  | { complete: false; head: Buffer[]; rest: () => Readable }

export async function readCapped(stream: Readable, cap: number, expectedLength?: number): Promise<ReadResult> {
  // Known length within the cap: one buffer, filled in place (one copy of the body). A body
  // that turns out longer than declared goes on in `chunks`.
  const prealloc = expectedLength !== undefined && expectedLength <= cap ? Buffer.allocUnsafe(expectedLength) : null
  let filled = 0
  const chunks: Buffer[] = []
  let size = 0
  const iterator = stream[Symbol.asyncIterator]()
  for (;;) {
    const { value, done } = (await iterator.next()) as IteratorResult<Buffer | string>
    if (done) break
    const chunk = typeof value === 'string' ? Buffer.from(value) : value
    if (size + chunk.length > cap) {
      // Stop pulling: the caller forwards the whole body (rest) or destroys the stream.
      const head = [...(prealloc && filled > 0 ? [prealloc.subarray(0, filled)] : []), ...chunks, chunk]
      return { complete: false, head, rest: () => Readable.from(resume(head, iterator)) }
    }
    if (prealloc && chunks.length === 0 && filled + chunk.length <= prealloc.length) {
      chunk.copy(prealloc, filled)
      filled += chunk.length
    } else {
      chunks.push(chunk)
    }
    size += chunk.length
  }
  if (prealloc && filled === prealloc.length && chunks.length === 0) return { complete: true, body: prealloc }
  const parts = prealloc && filled > 0 ? [prealloc.subarray(0, filled), ...chunks] : chunks
  return { complete: true, body: parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, size) }
}

async function* resume(head: Buffer[], iterator: AsyncIterator<Buffer | string>): AsyncGenerator<Buffer> {
  yield* head
  for (;;) {
    const { value, done } = (await iterator.next()) as IteratorResult<Buffer | string>
    if (done) return
    yield typeof value === 'string' ? Buffer.from(value) : value
  }
}

const gunzip = promisify(zlib.gunzip)
const inflate = promisify(zlib.inflate)
const brotli = promisify(zlib.brotliDecompress)

export class UninspectableError extends Error {}

/** The body as the application wrote it; the cap applies to the decoded size too (no zip bombs). */
export async function decodeContent(body: Buffer, encoding: string | undefined, cap: number): Promise<Buffer> {
  const coding = (encoding ?? '').trim().toLowerCase()
  if (coding === '' || coding === 'identity') return body
  const opts = { maxOutputLength: cap }
  try {
    if (coding === 'gzip' || coding === 'x-gzip') return await gunzip(body, opts)
    if (coding === 'deflate') return await inflate(body, opts)
    if (coding === 'br') return await brotli(body, opts)
  } catch (err) {
    throw new UninspectableError(`cannot decode ${coding} body: ${(err as Error).message}`)
  }
  throw new UninspectableError(`content-encoding "${coding}" is not supported for inspection`)
}

/**
 * An HTML form, or JSON. Legacy apps label JSON carelessly (text/plain, text/html, none), so
 * anything that is not a form is read as JSON whatever its label; only what does not parse as
 * JSON cannot be inspected. A UTF-8 byte order mark (common from .NET apps) is skipped.
 */
export function parseBody(body: Buffer, contentType: string | undefined): unknown {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
  if (body.length === 0) return undefined
  if (type === 'application/x-www-form-urlencoded') return parseForm(body.toString('utf8'))
  const bom = body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0
  const text = body.toString('utf8', bom)
  try {
    return JSON.parse(text)
  } catch (err) {
    const labelled = type === '' || type === 'application/json' || type.endsWith('+json')
    throw new UninspectableError(labelled ? `body is not valid JSON: ${(err as Error).message}` : `content-type "${type}" and the body is not JSON (JSON or form bodies only)`)
  }
}

/** Repeated fields become arrays; PHP-style `ids[]` and `ids[0]` fold into `ids` (every value counts). */
export function parseForm(text: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>
  for (const [rawKey, value] of new URLSearchParams(text)) {
    const bracket = rawKey.indexOf('[')
    const key = bracket > 0 ? rawKey.slice(0, bracket) : rawKey
    const prior = out[key]
    out[key] = prior === undefined ? value : Array.isArray(prior) ? [...prior, value] : [prior, value]
  }
  return out
}
