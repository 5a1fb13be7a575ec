// Every ```yaml block in README.md and docs/*.md is checked, so the docs cannot drift from the
// loader: a block with `version: 1` is a whole config and must load as `sluice check` loads it; a
// block of top-level keys is checked against the schema inside a minimal config; a block marked
// `# fragment` (a piece of a larger mapping, e.g. one route or one limit) is checked as YAML only.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseDocument, stringify } from 'yaml'
import { compileConfigText } from '../../src/config/index.js'
import { parseConfigText } from '../../src/config/load.js'
import { jsonSchema } from '../../src/config/schema.js'
import { ConfigError } from '../../src/errors.js'

const ROOT = join(import.meta.dirname, '../..')
const FILES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]
const TOP_KEYS = Object.keys((jsonSchema() as { properties: object }).properties)
const BASE = { version: 1, upstream: { url: 'http://127.0.0.1:3000' }, routes: [] }

/** ${VAR} in the docs: a port where a port goes, else a long enough secret. */
const ENV = new Proxy({} as Record<string, string>, {
  get: (_t, name) => (typeof name === 'string' && /PORT/.test(name) ? '8080' : 'doc-placeholder-secret-0123456789abcdef'),
})

interface Block {
  file: string
  line: number
  text: string
}

function blocks(file: string): Block[] {
  const out: Block[] = []
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n')
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```ya?ml\s*$/.exec(lines[i] as string)
    if (!open) continue
    const indent = (open[1] as string).length
    const body: string[] = []
    let j = i + 1
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j] as string); j++) body.push((lines[j] as string).slice(indent))
    out.push({ file, line: i + 1, text: body.join('\n') })
    i = j
  }
  return out
}

const all = FILES.flatMap(blocks)

function check(block: Block): void {
  const doc = parseDocument(block.text, { uniqueKeys: true })
  expect(doc.errors.map((e) => e.message), 'YAML').toEqual([])
  if (/^\s*#\s*fragment\b/m.test(block.text)) return
  const value = doc.toJS() as unknown
  // Only comments (an editor's schema line): nothing to load.
  if (value === null && doc.contents === null) return
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new Error('not a mapping: mark a piece of a larger mapping with "# fragment"')
  const keys = Object.keys(value)
  const unknown = keys.filter((k) => !TOP_KEYS.includes(k))
  if (unknown.length > 0)
    throw new Error(`top-level keys ${unknown.join(', ')} are not config keys: mark a piece with "# fragment"`)
  const where = `${block.file}:${block.line}`
  try {
    if (keys.includes('version')) {
      // A whole config: loaded as `sluice check` loads it.
      compileConfigText(block.text, where, { env: ENV })
    } else {
      // Top-level keys shown alone: their schema, inside a minimal config (what they refer to,
      // e.g. the identity a sessions block needs, is elsewhere in the reader's file).
      parseConfigText(stringify({ ...BASE, ...value }), where, { env: ENV })
    }
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    // A file the example names (caFile: /etc/ssl/…) is on the reader's machine, not this one.
    const issues = err.issues.filter((i) => !/^cannot read \//.test(i.message))
    if (issues.length > 0) throw new Error(new ConfigError(issues, where).format(), { cause: err })
  }
}

describe('YAML blocks in the docs', () => {
  it('finds them', () => expect(all.length).toBeGreaterThan(10))
  it.each(all.map((b) => [`${b.file}:${b.line}`, b] as const))('%s', (_where, block) => check(block))
})
