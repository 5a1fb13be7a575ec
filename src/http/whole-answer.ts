// An answer sluice counts records in must reach it whole and in a coding it can undo. The client
// chooses both: `Range: bytes=…` asks a server that honours it (a static CSV export, a file
// servlet, @fastify/static, Express's sendFile) for a slice, and a slice cut inside an id is
// counted by no reader while the client joins the slices back together; `Accept-Encoding: zstd`
// (Chromium sends it) lets a modern server answer in a coding sluice cannot read, which the
// `uninspectable` policy then withholds from an honest browser or lets out uncounted. So on a
// route whose answer is inspected the request asks for the whole answer (a server may always
// ignore Range, RFC 9110 §14.2) in the codings contentDecoder undoes.
import type { IncomingHttpHeaders } from 'node:http'
import { DECODABLE_CODINGS } from '../records/body.js'

/** Narrow the request's headers, in place, to what yields an answer sluice can read whole. */
export function askForWholeAnswer(headers: IncomingHttpHeaders): void {
  // (Deleted only when there: a delete turns the headers object into a slower dictionary.)
  if (headers.range !== undefined) delete headers.range
  if (headers['if-range'] !== undefined) delete headers['if-range']
  const accepted = headers['accept-encoding']
  if (accepted !== undefined) {
    const narrowed = decodableOnly(accepted)
    if (narrowed !== accepted) headers['accept-encoding'] = narrowed
  }
}

/**
 * The codings of an Accept-Encoding value that sluice can undo, in their order with their
 * weights; `*` (any other coding) is dropped. Nothing left: `identity`.
 */
export function decodableOnly(value: string): string {
  const items = value.split(',')
  const kept: string[] = []
  for (const item of items) {
    const semicolon = item.indexOf(';')
    const coding = (semicolon < 0 ? item : item.slice(0, semicolon)).trim().toLowerCase()
    if (DECODABLE_CODINGS.has(coding)) kept.push(item.trim())
  }
  if (kept.length === items.length) return value
  return kept.length > 0 ? kept.join(', ') : 'identity'
}
