// The first half of a replay, line by line: parse, classify (the proxy's own function), name the
// account. Everything here depends on the line alone, so it can run anywhere (the main thread,
// or workers reading parts of a file at once); what it finds goes to a Sink in line order. The
// second half (replay.ts: the engine's windows, which depend on the order) is the Sink.
import type { CompiledRoute } from '../config/compile.js'
import { classify, type ClassifyContext, type RequestLine } from '../exchange/classify.js'
import { ipAccount, networkOf } from '../identity/ip.js'
import {
  combinedParser,
  combinedScanner,
  DEFAULT_JSON_FIELDS,
  detectFormat,
  IGNORED,
  jsonParser,
  sluiceParser,
  type CombinedScanner,
  type FormatName,
  type JsonFields,
  type LineParser,
  type LogEntry,
  type ParseResult,
} from './formats.js'
import { blank, eachLineOf, type LineHandler } from './lines.js'

/** How lines are read: the options of ReplayOptions that the first half needs. */
export interface ReadOptions {
  format?: FormatName | 'auto'
  account?: string
  fields?: Partial<Record<keyof JsonFields, string>>
}

/** What the lines were, in line order. `line` numbers count from 1 at the start of a reader's text. */
export interface Sink {
  /** A blank line, or one that carries no request (other sluice log events). */
  ignored(): void
  bad(line: number, reason: string): void
  /** A request (counted, its time spans the log); one of the next three follows. */
  request(time: number): void
  /** A path the proxy would refuse (400). */
  rejected(reason: string): void
  /** To no sensitive route. */
  unrouted(): void
  /** Routed, but with neither an account nor a client address: a bad line, not a request. */
  unaccounted(line: number): void
  /** `account`: the log's, else `ip:<client>`. */
  routed(line: number, entry: LogEntry, account: string, route: number, records: readonly string[]): void
}

/** Access logs carry no request headers (so no method override either). */
const NO_HEADERS: Readonly<Record<string, string>> = {}
/** Entries kept by the small caches of pure functions of a client address. */
const CACHE_MAX = 50_000
const NO_RECORDS: readonly string[] = []

export class LineReader implements LineHandler {
  /** Lines read so far. */
  lineNo = 0
  private parser: LineParser | undefined
  private scanner: CombinedScanner | undefined
  private readonly request: RequestLine = { method: '', url: '', headers: NO_HEADERS }
  private readonly routeIndex = new Map<CompiledRoute, number>()
  private readonly ipAccounts = new Map<string, string>()

  constructor(
    private readonly context: ClassifyContext,
    private readonly options: ReadOptions,
    private readonly sink: Sink,
  ) {
    context.routes.forEach((r, i) => this.routeIndex.set(r, i))
  }

  /** The format of the file the next lines come from. */
  start(format: FormatName): void {
    this.lineNo = 0
    this.parser = undefined
    this.scanner = undefined
    if (format === 'combined') this.scanner = combinedScanner(this.options.account ?? 'user')
    else this.parser = makeParser(format, this.options)
  }

  line(text: string, start: number, end: number): void {
    const n = ++this.lineNo
    const sink = this.sink
    if (blank(text, start, end)) return sink.ignored()
    const parsed: ParseResult = this.scanner
      ? this.scanner(text, start, end)
      : (this.parser as LineParser)(text.slice(start, end))
    if (parsed === IGNORED) return sink.ignored()
    if (typeof parsed === 'string') return sink.bad(n, parsed)
    sink.request(parsed.time)
    // The proxy's own classification: canonical path, route, clamped query, records.
    const req = this.request
    req.method = parsed.method
    req.url = parsed.target
    const c = classify(req, this.context)
    if (c.kind === 'rejected') return sink.rejected(c.reason)
    if (c.kind === 'unrouted') return sink.unrouted()
    // A log's user name stays as the log spells it (what an operator searches the log for);
    // the proxy names the same account with its extractor's namespace (header:alice).
    const account = parsed.account ?? (parsed.client !== undefined ? this.ipAccount(parsed.client) : undefined)
    if (account === undefined) return sink.unaccounted(n)
    // Body records are not in an access log: the request is counted without them.
    sink.routed(n, parsed, account, this.routeIndex.get(c.route) as number, c.records ?? NO_RECORDS)
  }

  private ipAccount(client: string): string {
    let a = this.ipAccounts.get(client)
    if (a === undefined) {
      if (this.ipAccounts.size >= CACHE_MAX) this.ipAccounts.clear()
      this.ipAccounts.set(client, (a = ipAccount(client)))
    }
    return a
  }
}

/** networkOf, remembered per client address (a log holds few). */
export class Networks {
  private readonly known = new Map<string, string>()
  constructor(
    private readonly ipv4?: number,
    private readonly ipv6?: number,
  ) {}

  of(client: string): string {
    let n = this.known.get(client)
    if (n === undefined) {
      if (this.known.size >= CACHE_MAX) this.known.clear()
      this.known.set(client, (n = networkOf(client, this.ipv4, this.ipv6)))
    }
    return n
  }
}

/** JSON lines looked at before deciding a file is not sluice's log. */
const SNIFF_LINES = 50

/**
 * Which format a file is in, from its first non-blank lines: combined if the first is not JSON;
 * sluice's log if any of the first SNIFF_LINES is a sluice event (its first line is usually
 * Fastify's "Server listening"); else JSON lines. A file with no non-blank line is `combined`
 * (nothing is parsed). `format` other than auto is taken at the first non-blank line.
 */
export class Sniffer implements LineHandler {
  format: FormatName | undefined
  private seen = 0

  constructor(private readonly fixed: FormatName | undefined) {}

  /** Whole lines (`last`: the file's unended last line). */
  feed(bytes: Buffer, last: boolean): void {
    if (this.format === undefined) eachLineOf(bytes, last, this)
  }

  /** At the end of the file. */
  end(): FormatName {
    return (this.format ??= this.seen > 0 ? 'json' : 'combined')
  }

  line(text: string, start: number, end: number): void {
    if (this.format !== undefined || blank(text, start, end)) return
    this.seen++
    if (this.fixed) {
      this.format = this.fixed
      return
    }
    const sniffed = detectFormat(text.slice(start, end))
    if (this.seen === 1 && sniffed === 'combined') this.format = 'combined'
    else if (sniffed === 'sluice') this.format = 'sluice'
    else if (this.seen >= SNIFF_LINES) this.format = 'json'
  }
}

/** Counts lines, and blank ones (a file cut short before its format was known). */
export class LineCounter implements LineHandler {
  lines = 0
  blank = 0
  line(text: string, start: number, end: number): void {
    this.lines++
    if (blank(text, start, end)) this.blank++
  }
}

export function makeParser(format: FormatName, options: ReadOptions): LineParser {
  switch (format) {
    case 'combined':
      return combinedParser(options.account ?? 'user')
    case 'sluice':
      return sluiceParser()
    case 'json': {
      const fields: JsonFields = { ...DEFAULT_JSON_FIELDS }
      for (const [k, v] of Object.entries(options.fields ?? {})) if (v) fields[k as keyof JsonFields] = [v]
      if (options.account !== undefined) fields.account = options.account === 'none' ? [] : [options.account]
      return jsonParser(fields)
    }
  }
}
