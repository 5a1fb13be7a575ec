// Run one `sluice` subcommand in-process, the way main() builds it, capturing what it prints
// and the exit code it asks for (usage errors exit 2, as main() maps them).
import { Command, CommanderError } from 'commander'
import { vi } from 'vitest'

export interface CliRun {
  code: number | undefined
  stdout: string
  stderr: string
}

export async function runCommand(
  register: (program: Command, exit: (code: number) => void) => void,
  args: string[],
): Promise<CliRun> {
  let code: number | undefined
  const out: string[] = []
  const err: string[] = []
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')))
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')))
  const program = new Command('sluice')
    .exitOverride()
    .configureOutput({ writeErr: (s) => void err.push(s), writeOut: (s) => void out.push(s) })
  register(program, (c) => void (code = c))
  try {
    await program.parseAsync(args, { from: 'user' })
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e
    code = e.exitCode === 0 ? 0 : 2
    err.push(e.message)
  }
  vi.restoreAllMocks()
  return { code, stdout: out.join('\n'), stderr: err.join('\n') }
}
