// The text of an answer as a browser would decode it (the WHATWG Encoding Standard, which
// Node's TextDecoder implements with full ICU): a byte-order mark first, then the charset of
// the Content-Type, then — for HTML — a <meta charset> or <meta http-equiv="Content-Type"> in
// the first 1024 bytes, and for XML the encoding of its declaration; UTF-8 otherwise. Labels
// map as browsers map them: `iso-8859-1` and `us-ascii` are windows-1252, where 0x80–0x9F are
// printable characters (€, „, …), not C1 controls; `big5` is Big5-HKSCS.
//
// Streamed: the first bytes are held only until the charset is known (3 bytes for a BOM when
// the Content-Type names a charset; for HTML without one, 1024 bytes, where a browser's
// prescan looks; for XML, its declaration), then each chunk is decoded as it comes
// (TextDecoder with `stream: true` keeps a character split across chunks; windows-1252 is a
// per-byte table).
import { UninspectableError } from '../../errors.js'

export type MarkupKind = 'html' | 'xml' | 'text'

export interface TextStream {
  write(chunk: Buffer): void
  end(): void
}

/** Bytes in, text out (to `out`) as soon as the charset is known. Unknown charset: UninspectableError. */
export function textStream(contentType: string | undefined, kind: MarkupKind, out: (text: string) => void): TextStream {
  const declared = charsetParam(contentType)
  let decode: ((chunk: Buffer, last: boolean) => string) | null = null
  let head: Buffer | null = null
  const decide = (last: boolean) => {
    const body = head ?? EMPTY
    head = null
    const bom = fromBom(body)
    const label = bom?.label ?? declared ?? sniff(body, kind) ?? 'utf-8'
    decode = decoderFor(label)
    const text = decode(bom ? body.subarray(bom.length) : body, last)
    if (text !== '') out(text)
  }
  return {
    write(chunk) {
      if (decode) {
        const text = decode(chunk, false)
        if (text !== '') out(text)
        return
      }
      head = head ? Buffer.concat([head, chunk]) : chunk
      if (decidable(head, kind, declared !== undefined)) decide(false)
    },
    end() {
      if (!decode) return decide(true)
      const text = decode(EMPTY, true)
      if (text !== '') out(text)
    },
  }
}

const EMPTY = Buffer.alloc(0)

/** Enough bytes to know the charset: a BOM's 3, then what the markup may declare. */
function decidable(head: Buffer, kind: MarkupKind, declared: boolean): boolean {
  if (head.length < 3) return false
  if (declared || kind === 'text' || fromBom(head)) return true
  if (head.length >= 1024) return true
  if (kind === 'html') return false
  // XML: a declaration, if any, is the very first thing.
  if (head.length >= 5 && head.toString('latin1', 0, 5) !== '<?xml') return true
  return head.includes('?>')
}

function decoderFor(label: string): (chunk: Buffer, last: boolean) => string {
  // Node (20 at least) decodes these labels as ISO-8859-1, C1 controls and all; browsers as windows-1252.
  if (WINDOWS_1252.has(label)) return windows1252
  let decoder: TextDecoder
  try {
    decoder = new TextDecoder(label)
  } catch {
    throw new UninspectableError(`unknown charset "${label}"`)
  }
  if (decoder.encoding === 'utf-8') return utf8(decoder)
  const streaming = { stream: true }
  return (chunk, last) => (last ? decoder.decode(chunk) : decoder.decode(chunk, streaming))
}

/**
 * UTF-8 in pieces, each decoded whole up to the start of a character it cuts (that start and
 * what follows wait for the next piece): exact, as a decoder is between characters before any
 * lead byte, and several times cheaper than `stream: true`.
 */
function utf8(decoder: TextDecoder): (chunk: Buffer, last: boolean) => string {
  let carry: Buffer | null = null
  return (chunk, last) => {
    const bytes: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk
    carry = null
    if (last) return decoder.decode(bytes)
    const n = bytes.length
    let cut = n
    for (let i = n - 1; i >= 0 && i >= n - 3; i--) {
      const b = bytes[i] as number
      if (b < 0x80) break
      if (b >= 0xc0) {
        if (n - i < (b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2)) cut = i
        break
      }
    }
    if (cut < n) carry = Buffer.from(bytes.subarray(cut))
    return cut === 0 ? '' : decoder.decode(cut === n ? bytes : bytes.subarray(0, cut))
  }
}

/**
 * How to read a request body (whole) in the charset it declares (or its UTF-16 byte-order mark
 * says), beside UTF-8: none when that is UTF-8 or nothing is declared; both byte orders for a
 * bare `utf-16` (browsers read it little-endian, Java big-endian). A charset no reader here
 * knows (UTF-32, EBCDIC): UninspectableError, as the upstream may well know it.
 */
export function otherCharsets(contentType: string | undefined, body: Buffer): ((bytes: Buffer) => string)[] {
  const bom = fromBom(body)
  const declared = bom !== null && bom.label !== 'utf-8' ? bom.label : charsetParam(contentType)
  if (declared === undefined) return []
  // (Java's own names spell `-` as `_`: ISO8859_1, UTF_16LE.)
  const label = encodingOf(declared) !== null ? declared : declared.replace(/_/g, '-')
  const encoding = encodingOf(label)
  if (encoding === null) throw new UninspectableError(`unknown charset "${declared}"`, true)
  if (encoding === 'utf-8') return []
  const labels = encoding === 'utf-16le' && bom === null && label !== 'utf-16le' ? [label, 'utf-16be'] : [label]
  return labels.map((l) => {
    const decode = decoderFor(l)
    return (bytes: Buffer) => decode(bytes, true)
  })
}

/** The WHATWG encoding a label names (null: none). */
function encodingOf(label: string): string | null {
  if (WINDOWS_1252.has(label)) return 'windows-1252'
  try {
    return new TextDecoder(label).encoding
  } catch {
    return null
  }
}

function fromBom(b: Buffer): { label: string; length: number } | null {
  if (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) return { label: 'utf-8', length: 3 }
  if (b[0] === 0xfe && b[1] === 0xff) return { label: 'utf-16be', length: 2 }
  if (b[0] === 0xff && b[1] === 0xfe) return { label: 'utf-16le', length: 2 }
  return null
}

function charsetParam(contentType: string | undefined): string | undefined {
  const m = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? '')
  return m?.[1]?.toLowerCase()
}

/** A charset declared in the markup itself: what a browser's prescan finds in the first 1024 bytes. */
function sniff(body: Buffer, kind: MarkupKind): string | undefined {
  if (kind === 'text') return undefined
  const head = body.subarray(0, 1024).toString('latin1')
  if (kind === 'xml') return /^<\?xml[^>]*\bencoding\s*=\s*["']([^"']+)["']/i.exec(head)?.[1]?.toLowerCase()
  for (const meta of head.match(/<meta\b[^>]*>/gi) ?? []) {
    const direct = /\bcharset\s*=\s*["']?([^"'\s/>;]+)/i.exec(meta)
    if (direct?.[1]) return direct[1].toLowerCase()
  }
  return undefined
}

/** Every label the WHATWG Encoding Standard maps to windows-1252. */
const WINDOWS_1252 = new Set([
  'ansi_x3.4-1968',
  'ascii',
  'cp1252',
  'cp819',
  'csisolatin1',
  'ibm819',
  'iso-8859-1',
  'iso-ir-100',
  'iso8859-1',
  'iso88591',
  'iso_8859-1',
  'iso_8859-1:1987',
  'l1',
  'latin1',
  'us-ascii',
  'windows-1252',
  'x-cp1252',
])

/** 0x80–0x9F of windows-1252 (the five unassigned bytes stay as the C1 code points, as in the standard). */
const HIGH = '€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008dŽ\u008f\u0090‘’“”•–—˜™š›œ\u009džŸ'

function windows1252(body: Buffer): string {
  if (body.length === 0) return ''
  const text = body.toString('latin1')
  return /[\u0080-\u009f]/.test(text)
    ? text.replace(/[\u0080-\u009f]/g, (c) => HIGH[c.charCodeAt(0) - 0x80] as string)
    : text
}
