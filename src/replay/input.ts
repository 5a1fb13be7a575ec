// Log files as a stream of lines: gzip detected by its magic bytes (not the file name, so
// `access.log.1` compressed by hand or a `.gz` that is not are both read right), read in
// chunks through node:readline so memory does not grow with the file.
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { Readable, pipeline, PassThrough } from 'node:stream'
import { createGunzip } from 'node:zlib'

const GZIP_MAGIC = [0x1f, 0x8b] as const

export interface LogInput {
  /** As given; `-` is stdin. */
  name: string
  /** Size on disk (compressed bytes for gzip); undefined for stdin. */
  size: number | undefined
  /** Bytes consumed so far from the file (compressed), for progress. */
  bytesRead(): number
  gzip(): boolean
  lines(): AsyncIterable<string>
}

export async function openLog(name: string): Promise<LogInput> {
  const size = name === '-' ? undefined : (await stat(name)).size
  const raw: Readable = name === '-' ? process.stdin : createReadStream(name, { highWaterMark: 1 << 20 })
  let consumed = 0
  let gzip = false
  // Peek at the first chunk, then hand the whole stream on (gunzipped if it starts 1f 8b).
  const counted = (async function* () {
    for await (const chunk of raw) {
      consumed += (chunk as Buffer).length
      yield chunk as Buffer
    }
  })()
  const first = await counted.next()
  const head: Buffer | undefined = first.done ? undefined : first.value
  gzip = head !== undefined && head.length >= 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1]
  const body = Readable.from(
    (async function* () {
      if (head) yield head
      yield* counted
    })(),
    { objectMode: false },
  )
  let text: Readable = body
  if (gzip) {
    // pipeline forwards an error (truncated or corrupt gzip) to the reader of the last stream.
    text = pipeline(body, createGunzip(), new PassThrough(), () => undefined)
  }
  return {
    name,
    size,
    bytesRead: () => consumed,
    gzip: () => gzip,
    lines: () => createInterface({ input: text, crlfDelay: Infinity }),
  }
}
