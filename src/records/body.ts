// Bodies sluice must read before it decides: request bodies of `records: { body }` routes and
// login forms, and upstream responses of `records: { response }` routes. Read once into one
// buffer (preallocated when Content-Length is known), capped; decoded and parsed only to find ids
// (an answer's chunk by chunk as it arrives: `feed`, contentDecoder).
import { Readable } from 'node:stream'
import { promisify } from 'node:util'
import { unescape } from 'node:querystring'
import * as zlib from 'node:zlib'
import { BrokenBodyError, JsonTextError, UninspectableError } from '../errors.js'
import { jsonpPayload, strictFromLenient } from './json-lenient.js'
import { selectJsonText } from './json-text.js'
import { otherCharsets } from './answer/charset.js'
import { charsetPairs, formReadings } from './keys.js'
import { selectWith, type Selector } from './selector.js'

export type ReadResult =
  | { complete: true; body: Buffer }
  /**
   * Past the cap (or, `busy`, past the memory `take` allows; or, `problem`, `feed` refused a
   * chunk): what was read so far; `rest()` streams all of it (read and unread) on.
   */
  | { complete: false; busy?: true; problem?: string; head: Buffer[]; rest: () => Readable }

/**
 * A body delivered without a stream (the standalone proxy's upstream answers,
 * src/proxy/upstream-body.ts): read with readCapped's rules, or sent on as a stream.
 */
export abstract class PushedBody {
  /** readCapped of this body. */
  abstract readCapped(
    cap: number,
    expectedLength: number | undefined,
    take?: (bytes: number) => boolean,
    feed?: (chunk: Buffer) => void,
  ): Promise<ReadResult>
  /** The body (what is left of it) as a stream, to send on. */
  abstract stream(): Readable
  abstract destroy(): void
}

/**
 * readCapped's rules for one body, whoever delivers its chunks (a stream's 'data' events,
 * readCapped; or undici's onData, src/proxy/upstream-body.ts): the body is held in one buffer
 * (preallocated when its length is known and within the cap) or in chunks, `take(n)` accounts
 * for the memory held (InspectionBudget), `feed` sees each chunk as it is held.
 */
export class CappedRead {
  /** Known length within the cap: one buffer, filled in place (one copy of the body). */
  private readonly prealloc: Buffer | null = null
  private filled = 0
  /** A body that turns out longer than declared goes on in `chunks`. */
  private readonly chunks: Buffer[] = []
  private size = 0
  /** The budget refused the declared length up front: nothing may be read. */
  readonly busy: boolean = false

  constructor(
    private readonly cap: number,
    expectedLength: number | undefined,
    private readonly take?: (bytes: number) => boolean,
    private readonly feed?: (chunk: Buffer) => void,
  ) {
    if (expectedLength === undefined || expectedLength > cap) return
    if (take && !take(expectedLength)) this.busy = true
    else this.prealloc = Buffer.allocUnsafe(expectedLength)
  }

  /**
   * Hold a chunk: null to read on; else why reading stops, and what was held (this chunk
   * included, unless `feed` refused it: it is held all the same). Throws what `feed` throws but
   * an UninspectableError.
   */
  add(chunk: Buffer): { busy?: true; problem?: string; head: Buffer[] } | null {
    const prealloc = this.prealloc
    const inPlace = prealloc !== null && this.chunks.length === 0 && this.filled + chunk.length <= prealloc.length
    const busy = !inPlace && this.take !== undefined && this.size + chunk.length <= this.cap && !this.take(chunk.length)
    if (busy || this.size + chunk.length > this.cap) return { ...(busy ? { busy } : {}), head: [...this.held(), chunk] }
    if (inPlace) {
      chunk.copy(prealloc, this.filled)
      this.filled += chunk.length
    } else {
      this.chunks.push(chunk)
    }
    this.size += chunk.length
    if (!this.feed) return null
    try {
      // The held bytes themselves: whatever keeps them (a JSON reader) keeps no second copy.
      this.feed(inPlace ? prealloc.subarray(this.filled - chunk.length, this.filled) : chunk)
    } catch (err) {
      if (!(err instanceof UninspectableError)) throw err
      return { problem: err.message, head: this.held() }
    }
    return null
  }

  /** The whole body, once its last chunk was added. */
  body(): Buffer {
    const prealloc = this.prealloc
    if (prealloc && this.filled === prealloc.length && this.chunks.length === 0) return prealloc
    const parts = this.held()
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, this.size)
  }

  private held(): Buffer[] {
    return [...(this.prealloc && this.filled > 0 ? [this.prealloc.subarray(0, this.filled)] : []), ...this.chunks]
  }
}

/**
 * `take(n)` accounts for the memory held (InspectionBudget): a preallocated body up front, any
 * other chunk as it arrives; false stops reading, `busy`. `feed` sees each chunk as it is
 * held; an UninspectableError from it stops reading (`problem`). An error of the stream itself
 * (or its end before the last byte) is thrown as BrokenBodyError.
 *
 * A stream is read with 'data' listeners and one promise a body, not an async iterator: the iterator's
 * generator, end-of-stream watcher and promise per chunk cost more than the rest of reading a
 * small answer. A body left unread (past the cap) is paused, and `rest()` reads it on.
 */
export function readCapped(
  stream: Readable | PushedBody,
  cap: number,
  expectedLength?: number,
  take?: (bytes: number) => boolean,
  feed?: (chunk: Buffer) => void,
): Promise<ReadResult> {
  // A pushed body reads itself by the same rules (CappedRead), without 'data' events.
  if (stream instanceof PushedBody) return stream.readCapped(cap, expectedLength, take, feed)
  const read = new CappedRead(cap, expectedLength, take, feed)
  if (read.busy) return Promise.resolve({ complete: false, busy: true, head: [], rest: () => continued([], stream) })
  // (A body someone has read to its end already gives no more events: it is empty here.)
  if (stream.readableEnded) return Promise.resolve({ complete: true, body: Buffer.alloc(0) })
  if (stream.errored || stream.destroyed)
    return Promise.reject(new BrokenBodyError(stream.errored ?? new Error('body stream destroyed before it was read')))
  return new Promise<ReadResult>((resolve, reject) => {
    const done = () => {
      stream.off('data', onData)
      stream.off('end', onEnd)
      stream.off('error', onError)
      stream.off('close', onClose)
    }
    const onData = (value: Buffer | string) => {
      let stop
      try {
        stop = read.add(typeof value === 'string' ? Buffer.from(value) : value)
      } catch (err) {
        done()
        stream.pause()
        return reject(err as Error)
      }
      if (stop === null) return
      // Stop pulling: the caller forwards the whole body (rest) or destroys the stream.
      done()
      stream.pause()
      resolve({ complete: false, ...stop, rest: () => continued(stop.head, stream) })
    }
    const onEnd = () => {
      done()
      resolve({ complete: true, body: read.body() })
    }
    const onError = (err: Error) => {
      done()
      reject(new BrokenBodyError(err))
    }
    // Destroyed (the connection went away) without an error: the body is not whole either.
    const onClose = () => {
      if (stream.readableEnded) return
      done()
      reject(new BrokenBodyError(stream.errored ?? new Error('body stream closed before its end')))
    }
    stream.on('data', onData)
    stream.on('end', onEnd)
    stream.on('error', onError)
    stream.on('close', onClose)
  })
}

/** What was held, then the rest of the (paused) stream, as one stream. */
function continued(head: Buffer[], stream: Readable): Readable {
  return Readable.from(resume(head, stream[Symbol.asyncIterator]()))
}

async function* resume(head: Buffer[], iterator: AsyncIterator<Buffer | string>): AsyncGenerator<Buffer> {
  yield* head
  for (;;) {
    const { value, done } = (await iterator.next()) as IteratorResult<Buffer | string>
    if (done) return
    yield typeof value === 'string' ? Buffer.from(value) : value
  }
}

export { UninspectableError }

export interface ContentDecoder {
  /** A chunk as the upstream sent it; throws UninspectableError once decoding has failed. */
  write(chunk: Buffer): void
  /** All written: resolves when every decoded byte has gone to `out` (or rejects, UninspectableError). */
  end(): Promise<void>
  /** Stop (the answer is not read to its end). */
  destroy(): void
}

/** The content codings sluice undoes: streamed (answers, contentDecoder) or whole (request bodies). */
const CODINGS = new Map<
  string,
  {
    stream: () => zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress
    whole: (b: Buffer, o: { maxOutputLength: number }) => Promise<Buffer>
  }
>([
  ['gzip', { stream: () => zlib.createGunzip(), whole: promisify(zlib.gunzip) }],
  ['x-gzip', { stream: () => zlib.createGunzip(), whole: promisify(zlib.gunzip) }],
  ['deflate', { stream: () => zlib.createInflate(), whole: promisify(zlib.inflate) }],
  ['br', { stream: () => zlib.createBrotliDecompress(), whole: promisify(zlib.brotliDecompress) }],
])

/** What a request on an inspected route may ask for (Accept-Encoding): identity and CODINGS. */
export const DECODABLE_CODINGS: ReadonlySet<string> = new Set(['identity', ...CODINGS.keys()])

/**
 * A request body with its Content-Encoding undone (codings applied in order are undone in
 * reverse), for the servers that inflate request bodies; null when it has none, or is not
 * what it says (then no server can read it decoded either). An unknown coding, or more than
 * `cap` bytes once decoded: UninspectableError.
 */
export async function decodedRequestBody(
  body: Buffer,
  encoding: string | undefined,
  cap: number,
): Promise<Buffer | null> {
  const codings = (encoding ?? '')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity')
  if (codings.length === 0) return null
  let bytes = body
  for (const coding of codings.reverse()) {
    const undo = CODINGS.get(coding)
    if (undo === undefined) throw new UninspectableError(`content-encoding "${coding}" is not supported for inspection`)
    try {
      bytes = await undo.whole(bytes, { maxOutputLength: cap })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
        throw new UninspectableError(`body larger than maxInspectBytes (${cap} bytes) once decoded`)
      return null
    }
  }
  return bytes
}

/**
 * Content-Encoding undone as the chunks come, each decoded piece passed to `out` (which may
 * throw UninspectableError to stop); the decoded size is capped (no zip bombs): past `cap`,
 * UninspectableError. Identity is passed through as it is; gzip, deflate and br stream
 * through zlib. An unsupported coding throws UninspectableError at once.
 */
export function contentDecoder(
  encoding: string | undefined,
  cap: number,
  out: (chunk: Buffer) => void,
): ContentDecoder {
  const coding = (encoding ?? '').trim().toLowerCase()
  let size = 0
  const counted = (chunk: Buffer) => {
    size += chunk.length
    if (size > cap) throw new UninspectableError(`response larger than maxInspectBytes (${cap} bytes) once decoded`)
    out(chunk)
  }
  if (coding === '' || coding === 'identity')
    return { write: counted, end: () => Promise.resolve(), destroy: () => undefined }
  const z = CODINGS.get(coding)?.stream()
  if (!z) throw new UninspectableError(`content-encoding "${coding}" is not supported for inspection`)
  let failure: Error | null = null
  let settle: (err: Error | null) => void = () => undefined
  const finished = new Promise<void>((resolve, reject) => {
    settle = (err) => (err ? reject(err) : resolve())
  })
  finished.catch(() => undefined) // seen by end(), or by write() as `failure`
  const stop = (err: Error) => {
    if (failure) return
    failure = err
    z.destroy()
    settle(err)
  }
  z.on('data', (chunk: Buffer) => {
    if (failure) return
    try {
      counted(chunk)
    } catch (err) {
      stop(err as Error)
    }
  })
  z.on('error', (err) => stop(new UninspectableError(`cannot decode ${coding} body: ${err.message}`)))
  z.on('end', () => settle(null))
  return {
    write(chunk) {
      if (failure) throw failure
      z.write(chunk)
    },
    end() {
      if (failure) return Promise.reject(failure)
      z.end()
      return finished
    },
    destroy: () => {
      if (!failure) stop(new UninspectableError('not read to its end'))
    },
  }
}

/**
 * The ids a selector finds in a body, read every way the upstream might read it, and their
 * union: over-counting is safe, under-counting is a bypass.
 *   JSON   whatever the Content-Type says (legacy apps label JSON carelessly, and PHP's
 *          `json_decode(file_get_contents('php://input'))` ignores the type), read from the
 *          source text (json-text.ts: ids past 2^53 keep their digits, duplicate keys are
 *          all followed)
 *   form   `application/x-www-form-urlencoded`, or any body that is not JSON (a PHP app may
 *          `parse_str` it): bracket keys as qs and PHP read them, keys in any case (keys.ts)
 *   multipart  its fields (not its files), as a form: any multipart/* type (commons-fileupload,
 *          and so Spring and Struts 1, take them all), or any type that merely contains
 *          `multipart/form-data` (Struts 2's test), besides the type's own readings
 * A body none of these can read (not JSON, and no form field the selector names) throws
 * UninspectableError: the route's `uninspectable` policy decides.
 */
export function selectBody(
  body: Buffer,
  contentType: string | undefined,
  selector: Selector,
  inflated: Buffer | null = null,
): string[] {
  if (body.length === 0) return []
  const type = mediaType(contentType)
  // Every reading the upstream might make, and the ids of each that works (none works: the
  // first one's error): the bytes as sent and, compressed, inflated (servers that inflate
  // request bodies: Jetty's GzipHandler, ASP.NET Core's request decompression, Apache's
  // DEFLATE input filter); each as UTF-8 (PHP, Express) and, when the body says it is in
  // another charset, as the servers that honour it read it (servlet containers, ASP.NET,
  // Spring's JSON).
  const readings: [string, Form[]][] = []
  for (const bytes of inflated === null ? [body] : [body, inflated]) {
    const text = utf8Text(bytes)
    readings.push([text, [text]])
    for (const decode of otherCharsets(contentType, bytes)) {
      // A form in a charset: decoded whole, then split and percent-decoded as UTF-8 (ASP.NET
      // Core), or split at its bytes, percent-decoded, then decoded (servlet containers).
      const decoded = decode(bytes)
      readings.push([decoded, [decoded, charsetPairs(bytes.toString('latin1'), decode)]])
    }
  }
  const [only] = readings
  if (readings.length === 1 && only) return selectText(only[0], only[1], type, contentType, selector)
  let first: unknown = null
  // (concat: a body may name hundreds of thousands of ids, too many for push(...spread).)
  let ids: string[] = []
  let read = 0
  for (const [whole, forms] of readings) {
    try {
      ids = ids.concat(selectText(whole, forms, type, contentType, selector))
      read++
    } catch (err) {
      if (!(err instanceof UninspectableError)) throw err
      first ??= err
    }
  }
  if (read === 0) throw first as UninspectableError
  return ids
}

/** A form's text, or its pairs read already. */
type Form = string | [string, string][]

/** One reading of a request body: its text, and the readings of it as a form. */
function selectText(
  text: string,
  forms: Form[],
  type: string,
  contentType: string | undefined,
  selector: Selector,
): string[] {
  if (type.startsWith('multipart/')) return selectForm(multipartFields(text, contentType ?? ''), selector)
  if (contentType !== undefined && MULTIPART_INSIDE.test(contentType)) {
    const parts = selectForm(multipartFields(text, contentType), selector)
    try {
      return [...parts, ...selectText(text, forms, type, undefined, selector)]
    } catch (err) {
      if (!(err instanceof UninspectableError)) throw err
      return parts
    }
  }
  let ids: string[] | null = null
  let jsonError: JsonTextError | null = null
  try {
    // Keys in any case: some upstreams bind JSON properties case-insensitively (ASP.NET Core).
    ids = selectJsonText(text, selector.lowerSteps, true)
  } catch (err) {
    if (!(err instanceof JsonTextError)) throw err
    jsonError = err
    // Not JSON to a strict reader: perhaps to a lenient one (Gson, Json.NET), whatever the type.
    const strict = strictFromLenient(text)
    try {
      if (strict !== null) ids = selectJsonText(strict, selector.lowerSteps, true)
    } catch (e) {
      if (!(e instanceof JsonTextError)) throw e
    }
  }
  const fields = type === FORM || jsonError !== null ? forms.flatMap((form) => selectForm(form, selector)) : []
  if (ids === null) {
    if (fields.length > 0 || type === FORM) return fields
    const labelled = type === '' || type === 'application/json' || type.endsWith('+json')
    throw new UninspectableError(
      labelled
        ? `body is not valid JSON: ${(jsonError as JsonTextError).message}`
        : `content-type "${type}" and the body is neither JSON nor a form with the selected field`,
    )
  }
  return fields.length === 0 ? ids : [...ids, ...fields]
}

const FORM = 'application/x-www-form-urlencoded'

/** Bytes as UTF-8 text, without a UTF-8 BOM (as every JSON and form reader skips it). */
function utf8Text(bytes: Buffer): string {
  return bytes.toString('utf8', bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0)
}

/** The ids in a JSON answer (clients read answers as JSON: no form reading); not JSON → UninspectableError. */
export function selectJsonBody(body: Buffer, contentType: string | undefined, selector: Selector): string[] {
  if (body.length === 0) return []
  const text = utf8Text(body)
  try {
    return selectJsonText(text, selector.steps)
  } catch (err) {
    if (!(err instanceof JsonTextError)) throw err
    // What a legacy page's script reads all the same: JSONP, an XSSI guard, lenient JSON.
    const strict = strictFromLenient(jsonpPayload(text) ?? text)
    if (strict !== null) return selectJsonText(strict, selector.steps)
    const type = mediaType(contentType)
    const labelled = type === '' || type === 'application/json' || type.endsWith('+json')
    throw new UninspectableError(
      labelled
        ? `body is not valid JSON: ${err.message}`
        : `content-type "${type}" and the body is not JSON (JSON bodies only)`,
    )
  }
}

/** Struts 2 reads a body as multipart when its Content-Type merely contains this. */
const MULTIPART_INSIDE = /multipart\/form-data/i

/** The media types of formLike's bodies besides multipart ones. */
const FORM_TYPES: ReadonlySet<string> = new Set(['', 'application/x-www-form-urlencoded', 'text/plain'])

/**
 * Is this a body servers read form parameters from, or may? A form, plain text or no type (a
 * servlet's getParameter, PHP, WebForms), any multipart/* (commons-fileupload takes them all)
 * and a type that contains `multipart/form-data` anywhere (Struts 2).
 */
export function formLike(contentType: string | undefined): boolean {
  const type = mediaType(contentType)
  return (
    FORM_TYPES.has(type) ||
    type.startsWith('multipart/') ||
    (contentType !== undefined && MULTIPART_INSIDE.test(contentType))
  )
}

/** The media type of a Content-Type, lower-cased, without parameters ('' for none). */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
}

/** The selector over both readings of a form (nested and flat), keys in any case. */
function selectForm(form: Form, selector: Selector): string[] {
  const first = selector.lowerSteps[0]
  const { nested, flat } = formReadings(form, first?.kind === 'key' ? first.key : undefined)
  return [...selectWith(nested, selector.lowerSteps), ...selectWith(flat, selector.lowerSteps)]
}

/**
 * The fields of a multipart body (parts without a filename), re-encoded as a form, as every
 * server may read them: with each boundary the Content-Type may be taken to name (a parameter
 * map keeps the last `boundary=`, PHP finds the first "boundary" anywhere, even in
 * `xboundary=`, and reads it up to `;` or `,`), headers ending at CRLF CRLF or a bare LF LF,
 * and every name the Content-Disposition gives (quoted, unquoted as busboy and commons-fileupload
 * take it, or RFC 2231's `name*=`).
 */
function multipartFields(text: string, contentType: string): string {
  // Servers take the first `boundary=` or the last, never another: only those two are read (each
  // reading is a pass over the body, and a header can name a thousand). Of each, the quoted
  // value, or the value up to `;` or `,` (PHP, blanks inside kept) and its first word.
  const found = [...contentType.matchAll(BOUNDARY)]
  const boundaries = new Set<string>()
  for (const m of found.length > 2 ? [found[0], found[found.length - 1]] : found) {
    const [, quoted, bare = ''] = m as RegExpExecArray
    const value = bare.trim()
    for (const b of quoted !== undefined ? [quoted] : [value, value.split(/\s/)[0] as string])
      if (b !== '') boundaries.add(b)
  }
  if (boundaries.size === 0) throw new UninspectableError('multipart body without a boundary')
  const fields = new URLSearchParams()
  for (const boundary of boundaries)
    for (const part of text.split(`--${boundary}`).slice(1)) {
      const crlf = part.indexOf('\r\n\r\n')
      const lf = part.indexOf('\n\n')
      const [end, gap] = lf >= 0 && (crlf < 0 || lf < crlf) ? [lf, 2] : [crlf, 4]
      if (end < 0) continue
      const disposition = /content-disposition[ \t]*:([^\r\n]*)/i.exec(part.slice(0, end))?.[1]
      if (disposition === undefined || /(?:^|[;\s])filename\*?\s*=/i.test(disposition)) continue
      const value = part.slice(end + gap).replace(/\r?\n$/, '')
      for (const name of dispositionNames(disposition)) fields.append(name, value)
    }
  return fields.toString()
}

/** `boundary=` anywhere (PHP finds it even in `xboundary=`): its value quoted, or up to `;` or `,`. */
const BOUNDARY = /boundary\s*=\s*(?:"([^"]*)"|([^;,]*))/gi
/** A Content-Disposition's `name` parameters: quoted (backslash escapes), bare, and `name*`. */
const DISPOSITION_NAME = /(?:^|[;\s])name(\*?)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/gi

function dispositionNames(disposition: string): string[] {
  const names: string[] = []
  for (const m of disposition.matchAll(DISPOSITION_NAME)) {
    const quoted = m[2]
    let name = quoted === undefined ? (m[3] as string) : quoted.replace(/\\(.)/g, '$1')
    if (m[1] === '*') {
      // RFC 2231: charset'language'percent-encoded.
      const parts = name.split("'")
      name = parts.length === 3 ? unescape(parts[2] as string) : name
    }
    if (quoted !== undefined && quoted !== name) names.push(quoted)
    names.push(name)
  }
  return names
}
