// Block responses are RFC 9457 problem+json for API clients and a short page for browsers.

/** True when the Accept header ranks text/html above JSON (browsers do; curl and fetch do not). */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept || !accept.includes('html')) return false
  let html = 0
  let json = 0
  for (const range of accept.split(',')) {
    const [type = '', ...params] = range.trim().toLowerCase().split(';')
    const qParam = params.find((p) => p.trim().startsWith('q='))
    const q = qParam ? Number(qParam.trim().slice(2)) : 1
    if (!Number.isFinite(q)) continue
    if (type === 'text/html' || type === 'application/xhtml+xml') html = Math.max(html, q)
    else if (
      type === 'application/json' ||
      type === 'application/problem+json' ||
      type === '*/*' ||
      type === 'application/*'
    )
      json = Math.max(json, q)
  }
  return html > json
}
