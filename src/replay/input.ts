// Log files as a stream of byte chunks: gzip detected by its magic bytes (not the file name, so
// `access.log.1` compressed by hand or a `.gz` that is not are both read right), read in large
// chunks so memory does not grow with the file (lines.ts cuts them into lines).
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { PassThrough, pipeline, Readable } from 'node:stream'
import { createGunzip } from 'node:zlib'

const GZIP_MAGIC = [0x1f, 0x8b] as const
/** Bytes read from the file, and inflated from gzip, at a time. */
const CHUNK = 1 << 18

export interface LogInput {
  /** As given; `-` is stdin. */
  name: string
  /** Size on disk (compressed bytes for gzip); undefined for stdin. */
  size: number | undefined
  /** Bytes consumed so far from the file (compressed), for progress. */
  bytesRead(): number
  gzip(): boolean
  /** The (inflated) bytes, in order; an error (a truncated or corrupt gzip) ends it. */
  chunks(): AsyncIterable<Buffer>
}

export async function openLog(name: string): Promise<LogInput> {
  const size = name === '-' ? undefined : (await stat(name)).size
  const raw: Readable = name === '-' ? process.stdin : createReadStream(name, { highWaterMark: CHUNK })
  let consumed = 0
  let gzip = false
  const source = raw[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  // Peek at the first chunk: gzip if it starts 1f 8b.
  const first = await source.next()
  const head: Buffer | undefined = first.done ? undefined : first.value
  if (head) consumed += head.length
  gzip = head !== undefined && head.length >= 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1]
  async function* file(): AsyncGenerator<Buffer> {
    if (head) yield head
    for (let next = await source.next(); !next.done; next = await source.next()) {
      consumed += next.value.length
      yield next.value
    }
  }
  async function* chunks(): AsyncGenerator<Buffer> {
    if (!gzip) return yield* file()
    // pipeline forwards an error (truncated or corrupt gzip, an unreadable file) to the reader of the last stream.
    const text = pipeline(Readable.from(file()), createGunzip({ chunkSize: CHUNK }), new PassThrough(), () => undefined)
    yield* text as AsyncIterable<Buffer>
  }
  return {
    name,
    size,
    bytesRead: () => consumed,
    gzip: () => gzip,
    chunks,
  }
}
