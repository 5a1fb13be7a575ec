// `sluice accounts disable|enable`: the manual controls, clients of POST
// /accounts/:account/disable and /enable (docs/admin.md). Exit codes as the other admin commands.
import { Command, CommanderError } from 'commander'
import type { DisableJson, EnableJson } from '../admin/controls.js'
import { parseDuration } from '../config/duration.js'
import { printable } from '../replay/escape.js'
import { client, formatDisabled, print, request, type ClientOptions } from './accounts.js'

/** Adds `disable` and `enable` to the `accounts` command (registered before by registerAccounts). */
export function registerControls(program: Command, exit: (code: number) => void): void {
  const accounts = program.commands.find((c) => c.name() === 'accounts')
  if (!accounts) throw new Error('registerControls: register the accounts command first')

  client(
    accounts
      .command('disable')
      .description('disable an account (or net:<cidr>, route:<name>) on every route, for a time or until enabled'),
  )
    .argument('<account>', 'account id as sluice logs it, e.g. header:alice, user:alice, net:203.0.113.0/24')
    .option('--for <duration>', 'how long: 30m, 24h, 7d', duration)
    .option('--forever', 'until `sluice accounts enable`')
    .option('--reason <text>', 'why (kept in the audit trail)')
    .action(async (account: string, opts: ClientOptions & { for?: number; forever?: boolean; reason?: string }) => {
      if ((opts.for === undefined) === (opts.forever !== true))
        throw new CommanderError(2, 'sluice.disable.for', 'error: say how long: --for <duration> (24h) or --forever')
      const query = new URLSearchParams({
        ...(opts.forever ? { forever: 'true' } : { for: `${opts.for}ms` }),
        ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
      })
      const path = `/accounts/${encodeURIComponent(account)}/disable?${query}`
      const result = await request<DisableJson>(opts, 'POST', path)
      if (result === undefined) return exit(1)
      print(opts, result, (r) => {
        const until = r.until === 'forever' ? 'until enabled' : `until ${r.until}`
        const was = r.replaced.length > 0 ? ` (was: ${r.replaced.map(formatDisabled).join('; ')})` : ''
        return `disabled ${printable(r.account)} ${until}${r.reason !== null ? `: ${printable(r.reason)}` : ''}${was}`
      })
      exit(0)
    })

  client(accounts.command('enable').description('lift a disable, manual or by a limit (= unlock)'))
    .argument('<account>', 'account id')
    .action(async (account: string, opts: ClientOptions) => {
      const result = await request<EnableJson>(opts, 'POST', `/accounts/${encodeURIComponent(account)}/enable`)
      if (result === undefined) return exit(1)
      print(opts, result, (r) =>
        r.enabled
          ? `enabled ${printable(r.account)} (was disabled: ${r.lifted.map(formatDisabled).join('; ')})`
          : `${printable(r.account)} was not disabled; nothing changed`,
      )
      exit(0)
    })
}

function duration(text: string): number {
  const ms = parseDuration(text)
  if (ms === undefined || !(ms > 0))
    throw new CommanderError(2, 'sluice.duration', `error: "${text}" is not a duration (30m, 24h, 7d)`)
  return ms
}
