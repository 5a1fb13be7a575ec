// `sluice audit verify FILE…`: checks an audit trail's hash chain. Exit 0 intact, 1 broken, 2 usage
// (a keyed trail without its key).
import { Command, CommanderError } from 'commander'
import { orderAuditFiles, verifyAudit, type VerifyResult } from '../audit/index.js'

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
