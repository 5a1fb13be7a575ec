// `sluice replay` and `sluice suggest`: access logs through the real engine.
//
// Exit codes: 0 done; 1 a log could not be read (to its end): what was read is still
// reported, and stderr says which file and why; 2 bad config or usage.
// stdout carries the answer (text, YAML or JSON); progress, warnings and errors go to stderr.
import { access, constants, stat, writeFile } from 'node:fs/promises'
import { Command, CommanderError, Option } from 'commander'
import { loadConfig, type CompiledConfig } from '../config/index.js'
import { ConfigError, SluiceError } from '../errors.js'
import type { JsonFields } from '../replay/formats.js'
import { printable } from '../replay/escape.js'
import { progressBar } from '../replay/progress.js'
import { describeFileError, replayLogs, type ReplayOptions, type ReplayResult } from '../replay/replay.js'
import { renderReport } from '../replay/report.js'
import { formatSuggestionYaml, suggestLimits, type SuggestOptions } from '../replay/suggest.js'
import { formatReplayText, replayToJson } from '../replay/summary.js'

interface InputOptions {
  config: string
  format: 'auto' | 'combined' | 'json' | 'sluice'
  account?: string
  fields?: Partial<Record<keyof JsonFields, string>>
  maxAccounts?: number
  measureCap?: number
  threads: number | 'auto'
  json?: boolean
  report?: string
  top: number
}

/** Registers both commands; `exit` receives the exit code. */
export function registerReplay(program: Command, exit: (code: number) => void): void {
  withInputOptions(
    program
      .command('replay')
      .description(
        'run access logs through the config as if sluice had enforced it: who would have been blocked, when, why',
      ),
  )
    .option('--blocked <n>', 'blocked requests listed (all are counted)', count, 20)
    .action(async (logs: string[], opts: InputOptions & { blocked: number }) => {
      const run = await runReplay(logs, opts, { keepBlocked: Math.max(opts.blocked, 50) })
      if (!run) return exit(2)
      const suggestion = suggestLimits(run.result)
      if (opts.json)
        await print(`${JSON.stringify(replayToJson(run.result, suggestion, { top: opts.top }), null, 2)}\n`)
      else await print(formatReplayText(run.result, { top: opts.top, blocked: opts.blocked }))
      await writeReport(run.result, suggestion, opts)
      exit(finish(run.result))
    })

  withInputOptions(
    program
      .command('suggest')
      .description('propose per-route limits from the counts accounts reached in the logs (prints YAML)'),
  )
    .option('--percentile <p>', "percentile of honest accounts' per-window maxima", percent, 99.9)
    .option('--margin <x>', 'multiplier on the percentile', positive, 2)
    .option('--floor <n>', 'no threshold below this', count, 10)
    .action(
      async (
        logs: string[],
        opts: InputOptions & Required<Pick<SuggestOptions, 'percentile' | 'margin' | 'floor'>>,
      ) => {
        const run = await runReplay(logs, opts, { keepBlocked: 50, warnOnStderr: true })
        if (!run) return exit(2)
        const suggestion = suggestLimits(run.result, {
          percentile: opts.percentile,
          margin: opts.margin,
          floor: opts.floor,
        })
        if (opts.json)
          await print(`${JSON.stringify(replayToJson(run.result, suggestion, { top: opts.top }), null, 2)}\n`)
        else await print(formatSuggestionYaml(suggestion, run.result))
        await writeReport(run.result, suggestion, opts)
        exit(finish(run.result))
      },
    )
}

function withInputOptions(cmd: Command): Command {
  return cmd
    .requiredOption('-c, --config <file>', 'YAML configuration file (its routes and limits)')
    .argument('<logs...>', 'log files, oldest first (gzip is detected; - reads stdin)')
    .addOption(
      new Option('--format <format>', 'log format').choices(['auto', 'combined', 'json', 'sluice']).default('auto'),
    )
    .option(
      '--account <field>',
      'where the account is: combined: user (%u, default), none, N (the N-th field after the combined ones) or NAME (an appended NAME=value field); json: a field name, or none',
    )
    .option(
      '--fields <list>',
      'json field names, e.g. time=ts,method=verb,url=request_uri,client=remote_addr (also query, request)',
      fieldList,
    )
    .option('--json', 'machine-readable output')
    .option('--report <file.html>', 'also write a self-contained HTML report with charts')
    .option('--top <n>', 'accounts listed per route', count, 10)
    .option('--max-accounts <n>', "accounts the replay store holds (default: the config's store.maxAccounts)", count)
    .option(
      '--measure-cap <n>',
      "highest per-window count measured exactly (default: max(1000, 10 × the route's largest limit))",
      count,
    )
    .option(
      '--threads <n>',
      'threads that read the logs: auto (1, measured fastest: the limits, run in log order, are the bottleneck), 1, or N (N - 1 workers parse and classify lines while one runs the limits in log order: the same result)',
      threads,
      'auto' as const,
    )
}

async function runReplay(
  logs: string[],
  opts: InputOptions,
  extra: Partial<ReplayOptions> & { warnOnStderr?: boolean },
): Promise<{ config: CompiledConfig; result: ReplayResult } | undefined> {
  const { warnOnStderr, ...replayOptions } = extra
  let config: CompiledConfig
  try {
    config = await loadConfig(opts.config)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    console.error(`${err.format()}\n${opts.config}: ${err.issues.length} problem${err.issues.length === 1 ? '' : 's'}`)
    return undefined
  }
  const sizes = new Map<string, number | undefined>()
  for (const file of logs) {
    if (file === '-') {
      sizes.set(file, undefined)
      continue
    }
    // Every file is checked before the first is read: a typo in the last of twenty names
    // should not cost a replay of the other nineteen.
    let info
    try {
      info = await stat(file)
      if (!info.isDirectory()) await access(file, constants.R_OK)
    } catch (err) {
      throw unreadableLog(file, err)
    }
    if (info.isDirectory()) throw unreadableLog(file, { code: 'EISDIR' })
    sizes.set(file, info.size)
  }
  const progress = progressBar(process.stderr, sizes)
  try {
    const result = await replayLogs(config, logs, {
      format: opts.format,
      ...(opts.account !== undefined ? { account: opts.account } : {}),
      ...(opts.fields ? { fields: opts.fields } : {}),
      ...(opts.maxAccounts !== undefined ? { maxAccounts: opts.maxAccounts } : {}),
      ...(opts.measureCap !== undefined ? { measureCap: opts.measureCap } : {}),
      threads: opts.threads,
      top: opts.top,
      onProgress: progress.update,
      ...replayOptions,
    })
    // Said once each on stderr, unless the text summary (which lists them) is the output.
    if (opts.json || warnOnStderr) for (const w of result.warnings) console.error(`sluice: warning: ${printable(w)}`)
    return { config, result }
  } finally {
    progress.done()
  }
}

/** The exit code, after saying on stderr which files could not be read to their end. */
function finish(result: ReplayResult): number {
  const failed = result.files.filter((f) => f.error !== undefined)
  for (const f of failed) {
    console.error(
      `sluice: ${printable(f.name)}: ${f.error}${f.lines > 0 ? ` (after line ${f.lines}; the lines before it are counted above)` : ''} (SLUICE_ERR_REPLAY_INPUT)`,
    )
  }
  return failed.length > 0 ? 1 : 0
}

/** stdout, waiting for the pipe to drain; a reader that went away (`| head`) is not an error. */
function print(text: string): Promise<void> {
  return new Promise((resolve) => {
    process.stdout.once('error', () => resolve())
    process.stdout.write(text, () => resolve())
  })
}

async function writeReport(
  result: ReplayResult,
  suggestion: ReturnType<typeof suggestLimits>,
  opts: InputOptions,
): Promise<void> {
  if (!opts.report) return
  try {
    await writeFile(opts.report, renderReport(result, suggestion, { config: opts.config, top: Math.max(opts.top, 20) }))
  } catch (err) {
    throw new SluiceError(
      'SLUICE_ERR_REPLAY_REPORT',
      `cannot write the report ${printable(opts.report)}: ${describeFileError(err)}`,
    )
  }
  console.error(`report written to ${opts.report}`)
}

function unreadableLog(file: string, err: unknown): SluiceError {
  return new SluiceError('SLUICE_ERR_REPLAY_INPUT', `cannot read ${printable(file)}: ${describeFileError(err)}`)
}

function count(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0)
    throw new CommanderError(2, 'sluice.number', `error: "${value}" is not a whole number`)
  return n
}

function threads(value: string): number | 'auto' {
  if (value === 'auto') return 'auto'
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1 || n > 64)
    throw new CommanderError(2, 'sluice.number', `error: "${value}" is not auto or a number of threads (1 to 64)`)
  return n
}

function positive(value: string): number {
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0)
    throw new CommanderError(2, 'sluice.number', `error: "${value}" is not a positive number`)
  return n
}

function percent(value: string): number {
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0 || n > 100)
    throw new CommanderError(2, 'sluice.number', `error: "${value}" is not a percentile (0 < p ≤ 100)`)
  return n
}

const FIELD_KEYS = ['time', 'method', 'url', 'query', 'account', 'client', 'request'] as const

function fieldList(value: string): Partial<Record<keyof JsonFields, string>> {
  const out: Partial<Record<keyof JsonFields, string>> = {}
  for (const pair of value.split(',')) {
    const [key, name] = pair.split('=').map((s) => s.trim())
    if (!key || !name || !(FIELD_KEYS as readonly string[]).includes(key)) {
      throw new CommanderError(
        2,
        'sluice.fields',
        `error: "${pair}" is not KEY=FIELD with KEY one of ${FIELD_KEYS.join(', ')}`,
      )
    }
    out[key as keyof JsonFields] = name
  }
  return out
}
