// Everything a log line carries (accounts, paths, user agents) is chosen by whoever sent the
// request, and the log formats' own unescaping (`\x1b`, `\n`, `\"`) turns it back into raw
// bytes. Whatever replay prints goes through one of these, by where it lands:
//  - a terminal or a YAML comment: `printable` (an ESC would drive the terminal, a newline
//    would end the comment and let the rest of the line become YAML the operator pastes);
//  - a YAML value: `yamlString`;
//  - HTML: `html`.

// C0 controls, DEL, C1 controls, and the Unicode bidi/line controls that reorder or break a
// line as displayed (U+2028/9, U+200E/F, U+202A–E, U+2066–9).
// eslint-disable-next-line no-control-regex -- escaping these is the point
const UNPRINTABLE = /[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

/** Control and layout characters as `\xHH` / `\u{HHHH}` (nginx writes `\xHH` too). */
export function printable(s: string): string {
  return s.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0)
    return code <= 0xff
      ? `\\x${code.toString(16).toUpperCase().padStart(2, '0')}`
      : `\\u{${code.toString(16).toUpperCase()}}`
  })
}

/**
 * Shortened to `n` characters, every non-ASCII character as `\xHH`: for quoting a bad line,
 * whose bytes the log format unescaped one by one (nginx's `\xF1` is a byte, not an ñ).
 */
export function clip(s: string, n = 60): string {
  const short = s.length > n ? `${s.slice(0, n)}…` : s
  return short.replace(/[^\x20-\x7e…]/g, (c) => `\\x${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`)
}

/** A YAML scalar: plain when that is unambiguous, else double-quoted (JSON's escapes are YAML's). */
export function yamlString(s: string): string {
  return /^[A-Za-z0-9_][A-Za-z0-9_./-]*$/.test(s) &&
    !/^(true|false|yes|no|on|off|null|~|y|n)$/i.test(s) &&
    !/^[0-9.]+$/.test(s)
    ? s
    : JSON.stringify(s)
}

const HTML: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Text and attribute values alike (quotes are escaped too); controls shown as in `printable`. */
export function html(s: string): string {
  return printable(s).replace(/[&<>"']/g, (c) => HTML[c] as string)
}
