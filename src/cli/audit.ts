// `sluice audit verify FILE…`: checks an audit trail's hash chain. Exit 0 intact, 1 broken, 2 usage
// (a keyed trail without its key).
import { Command, CommanderError } from 'commander'
import { orderAuditFiles, verifyAudit, type VerifyResult } from '../audit/index.js'
import type { AuditKey } from '../audit/entry.js'
import { derivePseudonymKey, pseudonymise } from '../audit/pseudonym.js'
import { loadConfig } from '../config/index.js'
import { ConfigError } from '../errors.js'

/** Registers `audit verify`; `exit` receives the exit code (0 intact, 1 broken or unreadable). */
export function registerAudit(program: Command, exit: (code: number) => void): void {
  const audit = program.command('audit').description('work with the tamper-evident audit trail')

  audit
    .command('verify')
    .description(
      'check the hash chain of audit files (rotated ones too, in any order) and report the first broken or missing entry',
    )
    .argument('<files...>', 'audit files, e.g. /var/log/sluice/audit.jsonl*')
    .option('--key-env <name>', 'environment variable holding the audit HMAC key (audit.key in the config)')
    .option('--in-order', 'check the files in the order given instead of ordering them by their first seq')
    .option('--json', 'machine-readable output')
    .action(async (files: string[], opts: { keyEnv?: string; inOrder?: boolean; json?: boolean }) => {
      let key: string | undefined
      if (opts.keyEnv !== undefined) {
        key = process.env[opts.keyEnv]
        if (key === undefined || key === '')
          throw new CommanderError(
            2,
            'sluice.audit.key',
            `error: the environment variable ${opts.keyEnv} (--key-env) is not set`,
          )
      }
      const ordered = opts.inOrder ? files : await orderAuditFiles(files)
      const result = await verifyAudit(ordered, key)
      if (opts.json) console.log(JSON.stringify({ files: ordered, ...result }, null, 2))
      else console.log(formatVerify(ordered, result))
      // A keyed trail without its key is a usage problem, not a broken chain.
      exit(result.ok ? 0 : result.keyRequired ? 2 : 1)
    })
}

/**
 * `sluice pseudonym ID…`: the `~hex` the logs and the audit trail write for a record id, so an
 * investigator can search for one record. The key: privacy.key (or the one derived from audit.key)
 * of the config given with -c, or an environment variable (--key-env, --audit-key-env).
 */
export function registerPseudonym(program: Command, exit: (code: number) => void): void {
  program
    .command('pseudonym')
    .description('print the pseudonym (~hex) the logs and the audit trail use for record ids, to search for them')
    .argument('<ids...>', 'record ids, as the app has them (e.g. 4711)')
    .option('-c, --config <file>', 'the config of the sluice that wrote the trail (its privacy.key or audit.key)')
    .option('--key-env <name>', 'environment variable holding privacy.key')
    .option('--audit-key-env <name>', 'environment variable holding audit.key (when privacy.key is not set)')
    .action(async (ids: string[], opts: { config?: string; keyEnv?: string; auditKeyEnv?: string }) => {
      const key = await pseudonymKey(opts)
      for (const id of ids) console.log(`${id}\t~${pseudonymise(key, id)}`)
      exit(0)
    })
}

async function pseudonymKey(opts: { config?: string; keyEnv?: string; auditKeyEnv?: string }): Promise<AuditKey> {
  const fromEnv = (name: string, flag: string) => {
    const v = process.env[name]
    if (v === undefined || v === '')
      throw new CommanderError(
        2,
        'sluice.pseudonym.key',
        `error: the environment variable ${name} (${flag}) is not set`,
      )
    return v
  }
  if (opts.keyEnv !== undefined) return fromEnv(opts.keyEnv, '--key-env')
  if (opts.auditKeyEnv !== undefined) return derivePseudonymKey(fromEnv(opts.auditKeyEnv, '--audit-key-env'))
  if (opts.config === undefined)
    throw new CommanderError(
      2,
      'sluice.pseudonym.key',
      'error: name the key: -c sluice.yaml (its privacy.key or audit.key), --key-env NAME or --audit-key-env NAME',
    )
  let config
  try {
    config = await loadConfig(opts.config)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    throw new CommanderError(2, 'sluice.pseudonym.config', `${err.format()}\n${opts.config}: cannot read its key`)
  }
  if (config.privacy.key === undefined)
    throw new CommanderError(
      2,
      'sluice.pseudonym.key',
      `error: ${opts.config} sets neither privacy.key nor audit.key: its pseudonyms are random per process, and cannot be recomputed`,
    )
  return config.privacy.key
}

export function formatVerify(files: readonly string[], result: VerifyResult): string {
  const out: string[] = []
  const fileCount = `${files.length} file${files.length === 1 ? '' : 's'}`
  if (result.ok && result.last) {
    out.push(`OK: ${result.entries} entries in ${fileCount}, chain intact up to seq ${result.last.seq}`)
    out.push(`  last hash ${result.last.hash} (${result.last.file})`)
  } else if (result.keyRequired && result.firstProblem) {
    const p = result.firstProblem
    out.push(`KEYED: ${p.file} is an HMAC-keyed trail (audit.key in the config); it cannot be checked without the key`)
    out.push(
      '  pass it through an environment variable (not a flag: flags show in ps), e.g.',
      `  SLUICE_AUDIT_KEY=… sluice audit verify --key-env SLUICE_AUDIT_KEY ${files.join(' ')}`,
    )
  } else if (result.firstProblem) {
    const p = result.firstProblem
    out.push(`BROKEN: ${p.file}${p.line > 0 ? `:${p.line}` : ''} (seq ${p.seq}): ${p.reason}`)
    out.push(
      result.last
        ? `  ${result.entries} entries before it verified, up to seq ${result.last.seq} (hash ${result.last.hash}, ${result.last.file})`
        : '  no entry before it verified',
    )
  }
  if (result.continuesFrom) {
    out.push(
      `  note: the chain starts at seq ${result.continuesFrom.seq + 1}, continuing from ${result.continuesFrom.file ?? 'an earlier file'} (not given, not checked)`,
    )
  }
  for (const w of result.warnings) out.push(`  warning: ${w.file}:${w.line}: ${w.message}`)
  if (result.ok)
    out.push(
      '  lines removed from the end of the newest file cannot be detected here: compare the last hash with one recorded elsewhere',
    )
  return out.join('\n')
}
