// Every page is built with `html`: each interpolated value is escaped unless it is itself an
// `html` fragment. Account ids, paths, user agents and reasons come from traffic; escaping by
// default means a forgotten call cannot turn them into markup.
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Markup built by `html`: interpolated as is. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text
  }
}

export type Interpolation = Html | string | number | boolean | null | undefined | readonly Interpolation[]

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] as string)
}

function render(value: Interpolation): string {
  if (value instanceof Html) return value.text
  if (Array.isArray(value)) return value.map(render).join('')
  if (value === null || value === undefined || value === false) return ''
  return escapeHtml(String(value))
}

/**
 * A template whose interpolations are text (escaped), fragments (kept), lists (joined) or
 * nothing (null, undefined, false).
 */
export function html(strings: TemplateStringsArray, ...values: Interpolation[]): Html {
  let out = strings[0] as string
  for (let i = 0; i < values.length; i++) out += render(values[i] as Interpolation) + (strings[i + 1] as string)
  return new Html(out)
}
