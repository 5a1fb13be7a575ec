// Route patterns: literal segments, `:name` for one segment, `*` for the rest.
// Deliberately no regex constraints such as `:id(\d+)`: a constraint narrows the match, and a
// request the pattern does not match goes upstream uncounted (`/contacts/5.0` may well be
// record 5 to a legacy parser). Over-matching is harmless; under-matching is a bypass.
import { PatternError } from '../errors.js'

export { PatternError }

export interface PathPattern {
  source: string
  regex: RegExp
  params: string[]
}

const PARAM = /^:([A-Za-z_][A-Za-z0-9_]*)$/
// RFC 3986 pchar minus `%` (patterns are written decoded) and `:` (reserved for params here).
const LITERAL = /^[A-Za-z0-9\-._~!$&'()*+,;=@]+$/

/** Compile a pattern; throws a PatternError whose message says what is wrong and how to fix it. */
export function compilePattern(source: string, caseSensitive: boolean): PathPattern {
  if (!source.startsWith('/')) throw new PatternError(`a path pattern must start with "/"`)
  const segments = source.split('/').slice(1)
  if (segments.length > 0 && segments[segments.length - 1] === '') segments.pop() // trailing slash
  const params: string[] = []
  let regex = '^'
  segments.forEach((segment, i) => {
    if (segment === '') throw new PatternError(`empty segment ("//") in "${source}"`)
    if (segment === '.' || segment === '..') throw new PatternError(`dot segment "${segment}" in "${source}"`)
    if (segment === '*') {
      if (i !== segments.length - 1) throw new PatternError(`"*" must be the last segment of "${source}"`)
      regex += '(?:/.*)?'
      return
    }
    const param = PARAM.exec(segment)
    if (param) {
      const name = param[1] as string
      if (params.includes(name)) throw new PatternError(`parameter ":${name}" appears twice in "${source}"`)
      params.push(name)
      regex += '/([^/]+)'
      return
    }
    if (segment.includes(':'))
      throw new PatternError(`"${segment}": a parameter must be a whole segment, like /contacts/:id`)
    if (!LITERAL.test(segment))
      throw new PatternError(`"${segment}" has characters a path segment cannot hold unencoded`)
    regex += '/' + segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  })
  if (segments.length === 0) regex += '/'
  regex += '$'
  return { source, regex: new RegExp(regex, caseSensitive ? '' : 'i'), params }
}
